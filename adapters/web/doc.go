// Package web is the web pages of an INVICTUS node: today the public pages
// for victims and anyone looking for help (find support, the map, your
// rights, browsing safely), and the foundation that the organisations'
// console builds on. `invictus serve` mounts [Server] at / on the same
// listener as the HTTP API, which keeps /v1, /schemas and the probes.
//
// # Foundation
//
// After miniflux: templates embedded with go:embed in three folders,
// templates/common (the layout and shared parts), templates/views (one
// file per page, drawn inside the layout) and templates/standalone (pages
// without the layout, such as the printable list), parsed once at start,
// once per language, so that the translation functions t and tn of each
// set are bound to its language and a request simply picks its set.
// translations/<lang>.json holds one [Catalog] per language of
// [Languages] (those of the taxonomy); catalog_test.go fails when a key is
// missing from a language, a plural has the wrong number of forms or a
// translation's fmt verbs differ from English's. Languages other than
// English are drafts until a native speaker reviews them, and every page
// in them says so.
//
// The language is chosen from Accept-Language at / ([Negotiate]),
// switched by a link, and remembered by the address (/pt/find): the
// public pages set no cookie.
//
// Every response carries a Content-Security-Policy header ([CSP]):
// default-src 'none', scripts only from this node's static files named
// with a per-request nonce, the node's own style sheet, no inline style,
// no third party, no framing; and nosniff, no-referrer, DENY framing,
// a Permissions-Policy that allows geolocation only to this origin, and
// Cache-Control: no-store on pages. Static files (static/) are embedded,
// served gzip-compressed under versioned addresses and cached for a year.
//
// # Safety of a visitor
//
// A quick-exit button on every page leaves at once for a neutral site
// ([Config.ExitURL]) and replaces the history entry (static/exit.js; the
// button is a plain link without JavaScript). The helplines 112, 116 006,
// 116 016 and 116 111 are tel: links at the top of every page. Searches
// are posted, so that what a person looked for stays out of the address
// bar, the history and any access log; a GET with the same fields works
// too, for links. "Near me" (static/near.js) rounds the browser's position
// to 0.01 degree and sends it with the form to this node only. The
// server keeps nothing about a visitor: no cookie, no session, no log line
// per request, no metric labelled by anything a visitor chose.
//
// # Pages
//
//	/                     redirects to /<lang>/ by Accept-Language
//	/<lang>/              start: the search form, helplines, ways in
//	/<lang>/find          the search and its results (GET or POST)
//	/<lang>/map           the map, with the same filters (GET or POST)
//	/<lang>/rights        the rights of Directive 2012/29/EU
//	/<lang>/rights/<slug> one right in plain words, citing its article
//	/<lang>/safety        browsing safely
//	/<lang>/ask?service=  ask a service to contact you (self-referral)
//	/<lang>/open          organisations open a sealed case file in the browser
//	/static/<file>        style sheet and scripts (age.js: age-encryption)
//
// The search reads the directory index through the same port as the API
// ([Directory], satisfied by *directory.View): a point (a city of the
// embedded GeoNames list, or "near me") asks [directory.Index.Candidates];
// a country or NUTS-2 region takes the shortest posting list of the need,
// language or channel asked for. An unknown code, region, city or
// language is shown next to its field with the valid choices.
//
// The map is an SVG drawn on the server from the country outlines in
// geo/europe.geojson (Natural Earth, public domain, simplified; see
// geo/README.md): no tiles, no third-party service, no script. Points
// falling in the same cell merge into a numbered cluster; a country with
// services is a link that zooms to it (?country=pt); a text list under
// the map says the same for screen readers, and each marker links to its
// entry.
//
// # Sealing in the browser
//
// static/age.js is the age-encryption package (typage), bundled once by
// scripts/build-agejs.sh and committed. static/seal.js seals the text of
// a textarea without a name attribute into a hidden "envelope" field
// before a form with data-seal-to is posted, so that only ciphertext
// leaves the page; the self-referral page uses it and hands the request
// to [Intake] as a [SelfReferral]. static/open.js unlocks an
// organisation's passphrase-wrapped identity (GET /v1/keys/identity of
// the HTTP API, or this device's copy) and opens envelopes on the page.
// docs/keys.md gives the reasons. Searches and requests to be contacted
// are rate limited per client address, which is kept only as a keyed
// hash for ten minutes ([SearchRateDefault], [AskRateDefault]).
//
// # Proof of work
//
// A request to be contacted also carries a small proof of work ([Work]):
// the page's form holds a challenge the node signed for that service's
// form (stateless; it expires after [WorkTTLDefault]), static/pow.js
// (loaded by seal.js only for such a form) finds with SubtleCrypto a
// counter whose SHA-256 with it begins with [Config.WorkBits] zero bits,
// and the node checks it before anything else, refusing a missing,
// forged, wrong, expired or reused one with a [WorkError] whose code is
// sent as the Invictus-Error header and changing nothing. What the node
// holds for it: in memory only, the random nonce of each challenge used
// (not who used it) until it expires, at most [Config.WorkMemory].
//
// The rights texts are plain files, rights/<lang>.txt, one per language,
// so that organisations can correct them by pull request.
package web
