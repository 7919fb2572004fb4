package natsjs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
)

// Security of the embedded server (DESIGN.md section 8).
//
// Every connection authenticates with an nkey: one user per organisation,
// one for the routing service and one for the administrator. The server
// holds public keys only ([Auth]); the seeds live in a [KeyStore] in the
// data directory, from which `invictus creds` hands an organisation its
// own.
//
// An organisation's user may publish its commands on in.<cc>.<org>, pull
// from and acknowledge its own durable DELIVERY consumer
// ([OrgConsumerName], created on its first use), open short-lived readers of its own delivery
// subjects ([OrgReaderNames]) to list its inbox and the timeline of a
// referral, and read the directory bucket. It may subscribe only below its
// own inbox prefix ([OrgInboxPrefix]), so replies to anyone else (and
// every message on any other subject) are out of its reach. Everything
// else is denied, `>` and `_INBOX.>` included.
//
// Readers have fixed names rather than any name: JetStream lets a create
// request with an existing name update that consumer, so "any name"
// would let an organisation re-point another's durable consumer at its
// own subjects. Subject permissions do not check reply subjects, and
// JetStream answers to any: that is why each organisation also lives in
// an account of its own (accounts.go), where the replies it asks for can
// land only in its own account. These permissions are the second wall.

// Names of the service users and of the keys directory.
const (
	// UserAdmin names the administrator's key: every permission. The
	// binary's own in-process connections (directory writes, the HTTP
	// API's command sink, provisioning) use it.
	UserAdmin = "admin"
	// UserRouting names the routing service's key.
	UserRouting = "routing"
	// UserSys names the operators' key in the system account of an
	// external server or cluster (deploy/nats): `nats server info` and
	// the JetStream reports. The embedded server does not use it.
	UserSys = "sys"
	// KeysDir is the directory, under the data directory, that holds the
	// seeds, one file <name>.nk per user, mode 0600.
	KeysDir = "keys"
	// SeedFileExt is the extension of a seed file.
	SeedFileExt = ".nk"
)

// Consumers of an organisation on DELIVERY.
const (
	// OrgReaderSlots is how many readers an organisation may open at once
	// on its own delivery subjects (inbox listings, timelines, follows):
	// each has a fixed name ([OrgReaderNames]), so that the permissions
	// can name them.
	OrgReaderSlots = wire.ReaderSlots
	// OrgAckWaitDefault is the AckWait of an organisation's durable
	// consumer: how long a delivery may stay unacknowledged before it is
	// delivered again.
	OrgAckWaitDefault = 30 * time.Second
	// OrgMaxAckPendingDefault bounds an organisation's unacknowledged
	// deliveries.
	OrgMaxAckPendingDefault = 1024
	// OrgConsumerInactive is how long the embedded server keeps an
	// organisation's durable consumer that nobody pulls from: the gate
	// creates it on the organisation's first use ([OrgConsumerOnDemand])
	// and JetStream removes it after this long unread, so an organisation
	// that reads over HTTP or e-mail, or never connects, costs the
	// server no consumer. One that comes back after longer gets its
	// consumer again from the first delivery still stored: deliveries are
	// at least once, and receivers deduplicate by event id.
	OrgConsumerInactive = 7 * 24 * time.Hour
	// orgConsumerPrefix starts every organisation consumer name.
	orgConsumerPrefix = wire.OrgConsumerPrefix
	// kvStream is the stream behind the directory bucket.
	kvStream = "KV_" + BucketDirectory
)

// ErrAuth is the class of the errors of this file: invalid keys, users or
// organisation ids, and key files that cannot be read or written.
var ErrAuth = errors.New("natsjs: auth")

// orgTokens returns the country and slug of org, or an error when org is
// not an organisation id (which could otherwise smuggle wildcards into a
// permission).
func orgTokens(org string) (cc, slug string, err error) {
	if !events.IsOrgID(org) {
		return "", "", fmt.Errorf("%w: %q is not an organisation id", ErrAuth, org)
	}
	cc, slug, _ = strings.Cut(org, ".")
	return cc, slug, nil
}

// OrgConsumerName returns the name of organisation org's durable consumer
// on DELIVERY: org_<cc>_<slug> ("pt.apav" gives "org_pt_apav"). Slugs hold
// no underscore, so names of different organisations never collide. It
// returns "" for an invalid organisation id.
func OrgConsumerName(org string) string { return wire.ConsumerName(org) }

// OrgReaderNames returns the names of the [OrgReaderSlots] reader
// consumers organisation org may create on its own delivery subjects:
// org_<cc>_<slug>_r1 ... _r8. It returns nil for an invalid id.
func OrgReaderNames(org string) []string { return wire.ReaderNames(org) }

// OrgInboxPrefix returns organisation org's inbox prefix, _INBOX_<cc>_<slug>
// ("pt.apav" gives "_INBOX_pt_apav"): its connections must use it
// (nats.CustomInboxPrefix), as they may subscribe to nothing else. It
// returns "" for an invalid id.
func OrgInboxPrefix(org string) string { return wire.InboxPrefix(org) }

// OrgPermissions returns the permissions of organisation org's user:
//
//   - publish its commands on in.<cc>.<org>, and nothing else outside
//     the JetStream API;
//   - its durable consumer: info, pull ($JS.API.CONSUMER.MSG.NEXT) and
//     acknowledgements ($JS.ACK.DELIVERY.<consumer>.>);
//   - its reader consumers: create (only with a filter inside
//     out.<cc>.<org>.>, which JetStream checks against the subject of the
//     request), info, pull and delete;
//   - the directory bucket: stream info, direct and stream message get,
//     and watchers filtered to the bucket's own subjects (create, info,
//     delete; the bucket is readable by every organisation anyway);
//   - subscribe to _INBOX_<cc>_<org>.> only.
//
// It returns an error wrapping [ErrAuth] for an invalid organisation id.
func OrgPermissions(org string) (*server.Permissions, error) {
	if _, _, err := orgTokens(org); err != nil {
		return nil, err
	}
	inbound, err := events.InboundSubject(org)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	durable := OrgConsumerName(org)
	filter := events.DeliveryFilter(org)
	pub := []string{
		inbound,
		"$JS.API.CONSUMER.INFO." + StreamDelivery + "." + durable,
		"$JS.API.CONSUMER.MSG.NEXT." + StreamDelivery + "." + durable,
		"$JS.ACK." + StreamDelivery + "." + durable + ".>",
		// What standard clients ask first (the gate answers without
		// other organisations' figures).
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + StreamInbound,
		"$JS.API.STREAM.INFO." + StreamDelivery,
	}
	for _, r := range OrgReaderNames(org) {
		pub = append(pub,
			"$JS.API.CONSUMER.CREATE."+StreamDelivery+"."+r+"."+filter,
			"$JS.API.CONSUMER.INFO."+StreamDelivery+"."+r,
			"$JS.API.CONSUMER.MSG.NEXT."+StreamDelivery+"."+r,
			"$JS.API.CONSUMER.DELETE."+StreamDelivery+"."+r,
		)
	}
	kvSubjects := "$KV." + BucketDirectory + ".>"
	pub = append(pub,
		"$JS.API.STREAM.INFO."+kvStream,
		"$JS.API.STREAM.MSG.GET."+kvStream,
		"$JS.API.DIRECT.GET."+kvStream,
		"$JS.API.DIRECT.GET."+kvStream+".>",
		"$JS.API.CONSUMER.CREATE."+kvStream+".*."+kvSubjects,
		"$JS.API.CONSUMER.INFO."+kvStream+".*",
		"$JS.API.CONSUMER.DELETE."+kvStream+".*",
		"$JS.FC."+kvStream+".>",
	)
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{OrgInboxPrefix(org) + ".>"}},
	}, nil
}

// RoutingPermissions returns the permissions of the routing service's
// user: the JetStream API, the subjects of the streams it writes
// (REFERRALS, DELIVERY, TIMERS, DLQ), directory change notifications, and
// its own replies. It may not publish on in.> (it never sends commands) or
// on another organisation's inbox, nor write the directory bucket.
func RoutingPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{"$JS.>", SubjectsReferrals, SubjectsDelivery, SubjectsTimers, SubjectsDLQ},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{"_INBOX.>", SubjectDirectoryEvents},
		},
	}
}

// Auth is the authentication of the embedded server: the public nkeys of
// the administrator, the routing service and each organisation. Set it as
// [ServerConfig.Auth] to turn authentication on; change it on a running
// server with [Server.ReloadAuth]. Build it with [NewAuth] from a
// [KeyStore].
type Auth struct {
	// Admin is the administrator's public user nkey (U...): every
	// permission. Required.
	Admin string
	// Routing is the routing service's public user nkey. Required.
	Routing string
	// Orgs maps organisation ids to their users' public nkeys.
	Orgs map[string]string
	// Limits of every organisation's account (accounts.go); the zero
	// value means the defaults.
	Limits OrgLimits
}

// Validate reports the first invalid key or organisation id, naming it,
// and any public key used twice (each user must be told apart).
func (a *Auth) Validate() error {
	seen := map[string]string{}
	check := func(who, key string) error {
		if !nkeys.IsValidPublicUserKey(key) {
			return fmt.Errorf("%w: Auth.%s: %q is not a public user nkey", ErrAuth, who, key)
		}
		if other, dup := seen[key]; dup {
			return fmt.Errorf("%w: Auth.%s has the same key as %s", ErrAuth, who, other)
		}
		seen[key] = who
		return nil
	}
	if err := check("Admin", a.Admin); err != nil {
		return err
	}
	if err := check("Routing", a.Routing); err != nil {
		return err
	}
	for _, org := range slices.Sorted(maps.Keys(a.Orgs)) {
		if _, _, err := orgTokens(org); err != nil {
			return fmt.Errorf("Auth.Orgs: %w", err)
		}
		if err := check("Orgs["+org+"]", a.Orgs[org]); err != nil {
			return err
		}
	}
	return nil
}

// apply turns authentication on in opts: every connection is checked by
// the returned authenticator (accounts.go), which needs the server once
// it exists ([authenticator.ns]).
func (a *Auth) apply(opts *server.Options) (*authenticator, error) {
	au, err := newAuthenticator(a)
	if err != nil {
		return nil, err
	}
	opts.CustomClientAuthentication = au
	opts.AlwaysEnableNonce = true // nkey users sign the nonce
	opts.Nkeys, opts.Users, opts.NoAuthUser = nil, nil, ""
	return au, nil
}

// bind gives au the server, before it starts, and sets up the exports of
// the streams' account.
func (au *authenticator) bind(ns *server.Server) error {
	au.ns = ns
	return exportStreams(ns.GlobalAccount())
}

// startAuth starts the gate once the server runs, on an in-process
// connection of its own.
func (s *Server) startAuth(ctx context.Context, au *authenticator) error {
	nc, err := s.Connect(ctx, nats.Token(au.gateToken), nats.Name("invictus gate"))
	if err != nil {
		return fmt.Errorf("natsjs: gate: %w", err)
	}
	g, err := startGate(nc)
	if err != nil {
		nc.Close()
		return err
	}
	s.authn, s.gate = au, g
	return nil
}

// ReloadAuth replaces the users of a server started with
// [ServerConfig.Auth], for example after an organisation was added to the
// directory; it takes effect at once, without a configuration reload.
// Connections of removed users (or of keys that now belong to someone
// else) are closed. An organisation's account is created at its first
// connection; a.Limits apply to accounts created after the call. It
// returns an error wrapping [ErrAuth] for an invalid a, or when the
// server was started without authentication (turning it on live would
// disconnect every client).
func (s *Server) ReloadAuth(a *Auth) error {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.authn == nil {
		return fmt.Errorf("%w: the server was started without authentication", ErrAuth)
	}
	limits := a.Limits.WithDefaults()
	if err := limits.Validate(); err != nil {
		return err
	}
	gone, err := s.authn.set(a)
	if err != nil {
		return err
	}
	s.authn.accMu.Lock()
	s.authn.limits = limits
	s.authn.accMu.Unlock()
	for _, key := range gone {
		cz, err := s.ns.Connz(&server.ConnzOptions{User: key, Limit: 1 << 20})
		if err != nil {
			return fmt.Errorf("natsjs: connections of a removed user: %w", err)
		}
		for _, c := range cz.Conns {
			_ = s.ns.DisconnectClientByID(c.Cid)
		}
	}
	return nil
}

// OrgAccounts returns how many organisation accounts the server has
// created so far (one per organisation that has connected), or 0 without
// authentication.
func (s *Server) OrgAccounts() int {
	if s.authn == nil {
		return 0
	}
	return s.authn.orgAccounts()
}

// KeyStore keeps the nkey seeds of the users in a directory, one file
// <name>.nk per user (mode 0600, the directory 0700): "admin", "routing",
// and organisation ids. A seed file is an nkey seed file that nats.go
// (nats.NkeyOptionFromSeed) and the nats CLI (--nkey) read as it is.
type KeyStore struct {
	dir string
}

// NewKeyStore returns the key store in dir, creating dir (mode 0700) if
// needed. It returns an error wrapping [ErrAuth] if dir cannot be created.
func NewKeyStore(dir string) (*KeyStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: the key directory is required", ErrAuth)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: key directory: %w", ErrAuth, err)
	}
	return &KeyStore{dir: dir}, nil
}

// checkName accepts the service users and organisation ids: nothing that
// could leave the directory.
func checkName(name string) error {
	if name == UserAdmin || name == UserRouting || name == UserSys || events.IsOrgID(name) {
		return nil
	}
	return fmt.Errorf("%w: %q is neither %q, %q, %q nor an organisation id", ErrAuth, name, UserAdmin, UserRouting, UserSys)
}

// Path returns the seed file of user name, whether it exists or not.
func (k *KeyStore) Path(name string) string { return filepath.Join(k.dir, name+SeedFileExt) }

// Ensure returns the public key of user name, creating its seed file
// first if there is none. It returns an error wrapping [ErrAuth] for a
// name that is not admin, routing or an organisation id, or a seed file
// that cannot be read, parsed or written.
func (k *KeyStore) Ensure(name string) (string, error) {
	pub, err := k.Public(name)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return pub, err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("%w: create key of %s: %w", ErrAuth, name, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("%w: create key of %s: %w", ErrAuth, name, err)
	}
	if pub, err = kp.PublicKey(); err != nil {
		return "", fmt.Errorf("%w: create key of %s: %w", ErrAuth, name, err)
	}
	// O_EXCL: two processes ensuring the same key at once keep the first.
	f, err := os.OpenFile(k.Path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return k.Public(name)
	}
	if err != nil {
		return "", fmt.Errorf("%w: write key of %s: %w", ErrAuth, name, err)
	}
	_, werr := f.Write(SeedFile(name, pub, seed))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(k.Path(name))
		return "", fmt.Errorf("%w: write key of %s: %w", ErrAuth, name, werr)
	}
	return pub, nil
}

// Seed returns the contents of user name's seed file: a few comment
// lines and the seed. It returns an error wrapping os.ErrNotExist when
// there is none, and wrapping [ErrAuth] for an invalid name or file.
func (k *KeyStore) Seed(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(k.Path(name))
	if err != nil {
		return nil, fmt.Errorf("%w: key of %s: %w", ErrAuth, name, err)
	}
	if _, err := publicOf(b); err != nil {
		return nil, fmt.Errorf("%w: key file %s: %w", ErrAuth, k.Path(name), err)
	}
	return b, nil
}

// Public returns the public key of user name, read from its seed file.
// Errors as [KeyStore.Seed].
func (k *KeyStore) Public(name string) (string, error) {
	b, err := k.Seed(name)
	if err != nil {
		return "", err
	}
	return publicOf(b)
}

// ConnectOption returns the nats.go option that authenticates as user
// name with its seed file (the file is read at each connect, the seed is
// not kept in memory). Errors as [KeyStore.Seed].
func (k *KeyStore) ConnectOption(name string) (nats.Option, error) {
	if _, err := k.Seed(name); err != nil {
		return nil, err
	}
	opt, err := nats.NkeyOptionFromSeed(k.Path(name))
	if err != nil {
		return nil, fmt.Errorf("%w: key of %s: %w", ErrAuth, name, err)
	}
	return opt, nil
}

// publicOf returns the public key of the user seed in a seed file.
func publicOf(file []byte) (string, error) {
	kp, err := nkeys.ParseDecoratedUserNKey(file)
	if err != nil {
		return "", err
	}
	defer kp.Wipe()
	return kp.PublicKey()
}

// SeedFile returns the contents of a seed file for user name: comment
// lines saying whose key it is and how to use it, then the seed on a line
// of its own, the form nats.NkeyOptionFromSeed and `nats --nkey` read.
//
// It is a seed file rather than a .creds file on purpose: a .creds file
// holds a user JWT signed by an account, which only a server in operator
// (JWT) mode checks. The embedded server authenticates plain nkeys
// configured from the directory, and for that the seed file is the
// standard credential.
func SeedFile(name, public string, seed []byte) []byte {
	var b strings.Builder
	b.WriteString("# NATS nkey seed of " + name + " on the INVICTUS network.\n")
	b.WriteString("# Public key: " + public + "\n")
	if prefix := OrgInboxPrefix(name); prefix != "" {
		b.WriteString("# Use:  nats --nkey THIS_FILE --inbox-prefix " + prefix + " ...\n")
		b.WriteString("#       nats.go: nats.NkeyOptionFromSeed(THIS_FILE), nats.CustomInboxPrefix(\"" + prefix + "\")\n")
	} else {
		b.WriteString("# Use:  nats --nkey THIS_FILE ...\n")
	}
	b.WriteString("# Keep it secret: whoever holds this file acts as " + name + ".\n")
	b.Write(seed)
	b.WriteString("\n")
	return []byte(b.String())
}

// NewAuth returns the [Auth] of the administrator, the routing service
// and the organisations orgs, creating in keys the seed of any of them
// that has none yet. It returns an error wrapping [ErrAuth] for an invalid
// organisation id or a key that cannot be read or created.
func NewAuth(keys *KeyStore, orgs []string) (*Auth, error) {
	a := &Auth{Orgs: make(map[string]string, len(orgs))}
	var err error
	if a.Admin, err = keys.Ensure(UserAdmin); err != nil {
		return nil, err
	}
	if a.Routing, err = keys.Ensure(UserRouting); err != nil {
		return nil, err
	}
	for _, org := range orgs {
		if _, _, err := orgTokens(org); err != nil {
			return nil, err
		}
		if a.Orgs[org], err = keys.Ensure(org); err != nil {
			return nil, err
		}
	}
	return a, a.Validate()
}

// AuthFromDirectory is [NewAuth] for every organisation of d.
func AuthFromDirectory(keys *KeyStore, d *directory.Directory) (*Auth, error) {
	orgs := make([]string, 0, len(d.Organisations))
	for _, o := range d.Organisations {
		orgs = append(orgs, o.ID)
	}
	return NewAuth(keys, orgs)
}

// OrgConsumerConfig returns the configuration of organisation org's
// durable consumer on DELIVERY: a pull consumer named [OrgConsumerName]
// filtered to out.<cc>.<org>.>, explicit acknowledgements, from the first
// delivery on.
func OrgConsumerConfig(org string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       OrgConsumerName(org),
		Description:   "Deliveries of " + org + ".",
		FilterSubject: events.DeliveryFilter(org),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       OrgAckWaitDefault,
		MaxAckPending: OrgMaxAckPendingDefault,
		MaxDeliver:    -1,
	}
}

// OrgConsumerOnDemand returns [OrgConsumerConfig] as the gate creates it
// on an organisation's first use: removed after [OrgConsumerInactive]
// unread.
func OrgConsumerOnDemand(org string) jetstream.ConsumerConfig {
	cfg := OrgConsumerConfig(org)
	cfg.InactiveThreshold = OrgConsumerInactive
	return cfg
}

// EnsureOrgConsumer creates organisation org's durable consumer on
// DELIVERY ([OrgConsumerConfig]), or updates it to that configuration, so
// running it again changes nothing. With an external server (no gate) the
// node calls it when an organisation is provisioned; on the embedded
// server the gate creates the consumer on the organisation's first use
// instead ([OrgConsumerOnDemand]). The organisation itself may not create
// consumers. It returns an error wrapping [ErrAuth]
// for an invalid id and the client's error if JetStream refuses.
func EnsureOrgConsumer(ctx context.Context, js jetstream.JetStream, org string) error {
	if _, _, err := orgTokens(org); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, StreamDelivery, OrgConsumerConfig(org)); err != nil {
		return fmt.Errorf("natsjs: ensure consumer of %s: %w", org, err)
	}
	return nil
}
