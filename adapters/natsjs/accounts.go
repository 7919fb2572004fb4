package natsjs

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/invictus-network/invictus/events"
)

// Accounts of the embedded server (DESIGN.md section 8).
//
// Subject permissions alone cannot keep an organisation out of the
// streams: JetStream answers to whatever reply subject a request names
// and a stream captures whatever lands on its subjects, so a publish on
// one's own in.<cc>.<org> with the reply subject referral.<cc>.<id> used to
// append the PubAck to another referral's log. Organisations therefore
// live in NATS accounts of their own, one per organisation
// ([OrgAccountName]), and the streams in another ([AccountStreams]) that
// they cannot publish into. An organisation's account imports, from the
// streams' account, exactly what it may use:
//
//   - the service in.<cc>.<org>: its commands. A service import carries
//     the reply subject across as a private _R_ mapping, so JetStream's
//     PubAck goes back into the organisation's own account, never onto a
//     stream subject nor to another organisation;
//   - the services $JS.API.CONSUMER.MSG.NEXT.DELIVERY.<name> of its
//     durable consumer and of its reader slots, and $JS.ACK.DELIVERY.<its
//     consumer>.>: pulling and acknowledging its own deliveries;
//   - $JS.API.CONSUMER.CREATE, INFO and DELETE through the gate
//     ([gate]): the node checks each request (which stream, which
//     consumer, which filter, where a push consumer delivers) before it
//     passes it to JetStream, as JetStream would otherwise let a consumer
//     push onto any subject of the streams' account;
//   - $JS.API.INFO and $JS.API.STREAM.INFO of INBOUND and DELIVERY
//     through the gate too, which standard clients ask before they
//     publish or consume (sdk-go's JetStream protocol, nats.js's
//     jetstreamManager and KV): the gate answers the account's own,
//     empty, usage, and each stream's configuration without its state;
//   - read-only access to the directory bucket: stream info, message and
//     direct gets, flow control of its watchers, and the deliveries of its
//     watchers (a stream import of $INVICTUS.PUSH.<account>.> mapped onto
//     its own inbox prefix; the gate points every watcher there).
//
// Nothing else exists in an organisation's account: JetStream is off in
// it (no streams or consumers of its own), and a request for any other
// JetStream API finds no responder. The users keep the subject
// permissions of [OrgPermissions] as a second wall.
//
// Accounts are created when an organisation's user first connects, not
// when it is added: an account with its imports costs about 44 KB of heap
// (15 KB for a bare nats-server account) and 0.4 to 2 ms
// (BenchmarkOrgAccounts), so a node with 10,000 organisations starts
// without any and pays only for those that connect over NATS (at most
// about 430 MiB if all 10,000 do).

// Names of the accounts and of the subjects the accounts share.
const (
	// AccountStreams names the account that holds the streams, the bucket
	// and the users admin and routing: the server's global account, so
	// that a data directory of an earlier version keeps its streams.
	AccountStreams = server.DEFAULT_GLOBAL_ACCOUNT
	// orgAccountPrefix starts every organisation's account name.
	orgAccountPrefix = orgConsumerPrefix
	// gatePrefix starts the subjects on which the gate receives an
	// organisation's JetStream API requests: $INVICTUS.GATE.<account>.<API>.
	gatePrefix = "$INVICTUS.GATE"
	// pushPrefix starts the subjects on which an organisation's directory
	// watchers deliver: $INVICTUS.PUSH.<account>.<rest of its inbox>.
	pushPrefix = "$INVICTUS.PUSH"
	// userGate names the gate's own connection.
	userGate = "gate"
)

// Limits of an organisation's account.
//
// nats-server applies per-account limits on subscriptions and message
// size only from account JWT claims, and giving an account claims on a
// running server walks every other account (about 10 ms per new account
// at 2,000 accounts, so minutes for 10,000). The embedded server
// therefore bounds an organisation with what it can apply in O(1):
//
//   - its connections at once ([OrgLimits.MaxConnections], checked when
//     one authenticates; connections racing in may pass by a few);
//   - the size of each message: the server's max_payload, 1 MiB, for
//     every connection (the router refuses an event over
//     events.MaxMessageSize);
//   - what it can ask JetStream for: one durable consumer (created on
//     its first use, gone after [OrgConsumerInactive] unread),
//     [OrgReaderSlots] readers and [OrgMaxWatchers] directory watchers,
//     each gone at most [OrgReaderInactiveMax] after it was last read,
//     through the gate, which handles 16 of its requests at once;
//   - what it stores: its commands on INBOUND, within the streams'
//     limits.
//
// nats-server has no publish rate limit. On a cluster in operator mode,
// the account JWT carries the subscription, payload and connection
// limits instead.
const (
	// OrgMaxConnectionsDefault bounds an organisation's connections at
	// once.
	OrgMaxConnectionsDefault = 32
	// OrgReaderInactiveMax is the longest InactiveThreshold a reader or a
	// directory watcher may ask for: a consumer nobody reads is gone by
	// then.
	OrgReaderInactiveMax = 10 * time.Minute
)

// OrgLimits are the limits of every organisation's account; the zero
// value of a field means its default.
type OrgLimits struct {
	// MaxConnections of one organisation at once. Default
	// [OrgMaxConnectionsDefault].
	MaxConnections int
}

// WithDefaults returns a copy of l with every unset field given its default.
func (l OrgLimits) WithDefaults() OrgLimits {
	if l.MaxConnections == 0 {
		l.MaxConnections = OrgMaxConnectionsDefault
	}
	return l
}

// Validate reports the first invalid field of l, naming it.
func (l OrgLimits) Validate() error {
	if l.MaxConnections < 1 {
		return fmt.Errorf("%w: OrgLimits.MaxConnections %d must be positive", ErrAuth, l.MaxConnections)
	}
	return nil
}

// OrgAccountName returns the name of organisation org's NATS account, the
// name of its durable consumer: org_<cc>_<slug>. It returns "" for an
// invalid organisation id.
func OrgAccountName(org string) string { return OrgConsumerName(org) }

// orgOfAccount returns the organisation of an account name, or "".
func orgOfAccount(name string) string {
	rest, ok := strings.CutPrefix(name, orgAccountPrefix)
	if !ok {
		return ""
	}
	cc, slug, ok := strings.Cut(rest, "_")
	if !ok || !events.IsOrgID(cc+"."+slug) {
		return ""
	}
	return cc + "." + slug
}

// streamExports are the services and streams the streams' account
// exports, with the response type of each service. Every subject an
// organisation's account imports falls under one of them.
var streamExports = []struct {
	subject  string
	service  bool
	streamed bool
}{
	{SubjectsInbound, true, false},
	{"$JS.API.CONSUMER.MSG.NEXT." + StreamDelivery + ".*", true, true},
	{"$JS.ACK." + StreamDelivery + ".>", true, false},
	{gatePrefix + ".>", true, false},
	{"$JS.API.STREAM.INFO." + kvStream, true, false},
	{"$JS.API.STREAM.MSG.GET." + kvStream, true, false},
	{"$JS.API.DIRECT.GET." + kvStream, true, false},
	{"$JS.API.DIRECT.GET." + kvStream + ".>", true, false},
	{"$JS.FC." + kvStream + ".>", true, false},
	{pushPrefix + ".>", false, false},
}

// exportStreams sets up the exports of the streams' account. Exports are
// public: only this file imports them, and only into the accounts it
// creates, so the list of what each organisation imports is the control.
func exportStreams(acc *server.Account) error {
	for _, e := range streamExports {
		var err error
		switch {
		case !e.service:
			err = acc.AddStreamExport(e.subject, nil)
		case e.streamed:
			err = acc.AddServiceExportWithResponse(e.subject, server.Streamed, nil)
		default:
			err = acc.AddServiceExport(e.subject, nil)
		}
		if err != nil {
			return fmt.Errorf("natsjs: export %s: %w", e.subject, err)
		}
	}
	return nil
}

// orgServiceImports returns the services organisation org's account
// imports: local subject → subject in the streams' account.
func orgServiceImports(org string) [][2]string {
	acct := OrgAccountName(org)
	inbound, _ := events.InboundSubject(org)
	gate := gatePrefix + "." + acct + "."
	imports := [][2]string{
		{inbound, inbound},
		{"$JS.ACK." + StreamDelivery + "." + acct + ".>", ""},
		{"$JS.API.CONSUMER.CREATE.>", gate + "CONSUMER.CREATE.>"},
		{"$JS.API.CONSUMER.INFO.>", gate + "CONSUMER.INFO.>"},
		{"$JS.API.CONSUMER.DELETE.>", gate + "CONSUMER.DELETE.>"},
		{"$JS.API.INFO", gate + "INFO"},
		{"$JS.API.STREAM.INFO." + StreamInbound, gate + "STREAM.INFO." + StreamInbound},
		{"$JS.API.STREAM.INFO." + StreamDelivery, gate + "STREAM.INFO." + StreamDelivery},
		{"$JS.API.STREAM.INFO." + kvStream, ""},
		{"$JS.API.STREAM.MSG.GET." + kvStream, ""},
		{"$JS.API.DIRECT.GET." + kvStream, ""},
		{"$JS.API.DIRECT.GET." + kvStream + ".>", ""},
		{"$JS.FC." + kvStream + ".>", ""},
	}
	for _, name := range append([]string{acct}, OrgReaderNames(org)...) {
		imports = append(imports, [2]string{"$JS.API.CONSUMER.MSG.NEXT." + StreamDelivery + "." + name, ""})
	}
	return imports
}

// authUser is one user the authenticator knows, by public key.
type authUser struct {
	name  string
	org   bool
	perms *server.Permissions
}

// authenticator authenticates every connection of a server started with
// [ServerConfig.Auth]: it checks the nkey signature of the server's nonce,
// puts admin and routing in [AccountStreams] and each organisation in its
// own account, created on its first connection. Its users can be
// replaced while the server runs ([Server.ReloadAuth]) without a
// configuration reload.
type authenticator struct {
	gateToken string
	limits    OrgLimits

	mu    sync.RWMutex
	users map[string]authUser // by public key

	ns       *server.Server // set before the server starts
	accMu    sync.Mutex
	accounts map[string]*server.Account // by organisation id, complete
}

// newAuthenticator returns the authenticator of a's users.
func newAuthenticator(a *Auth) (*authenticator, error) {
	limits := a.Limits.WithDefaults()
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("%w: gate token: %w", ErrAuth, err)
	}
	au := &authenticator{gateToken: hex.EncodeToString(tok), limits: limits, accounts: map[string]*server.Account{}}
	if _, err := au.set(a); err != nil {
		return nil, err
	}
	return au, nil
}

// set replaces the users with a's and returns the public keys that were
// removed or now belong to someone else, whose connections must go.
func (au *authenticator) set(a *Auth) ([]string, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	users := map[string]authUser{
		a.Admin:   {name: UserAdmin},
		a.Routing: {name: UserRouting, perms: RoutingPermissions()},
	}
	for org, key := range a.Orgs {
		perms, err := OrgPermissions(org)
		if err != nil {
			return nil, err
		}
		users[key] = authUser{name: org, org: true, perms: perms}
	}
	au.mu.Lock()
	defer au.mu.Unlock()
	var gone []string
	for key, u := range au.users {
		if nu, ok := users[key]; !ok || nu.name != u.name {
			gone = append(gone, key)
		}
	}
	au.users = users
	slices.Sort(gone)
	return gone, nil
}

// Check authenticates one connection: the gate's by its token, every
// other by the signature of the nonce with a known nkey.
func (au *authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	if o == nil {
		return false
	}
	if o.Token != "" || o.Username != "" || o.Password != "" || o.JWT != "" {
		if o.Nkey == "" && o.Username == "" && o.Password == "" && o.JWT == "" &&
			subtle.ConstantTimeCompare([]byte(o.Token), []byte(au.gateToken)) == 1 {
			c.RegisterUser(&server.User{Username: userGate, Permissions: gatePermissions()})
			return true
		}
		return false
	}
	if o.Nkey == "" || o.Sig == "" {
		return false
	}
	au.mu.RLock()
	u, ok := au.users[o.Nkey]
	au.mu.RUnlock()
	if !ok || !verifyNonce(o.Nkey, o.Sig, c.GetNonce()) {
		return false
	}
	user := &server.User{Username: u.name, Permissions: u.perms}
	if u.org {
		acc, err := au.orgAccount(u.name)
		if err != nil {
			return false
		}
		au.accMu.Lock()
		maxConns := au.limits.MaxConnections
		au.accMu.Unlock()
		if acc.NumLocalConnections() >= maxConns {
			return false // checked at connect: connections racing in may pass by a few
		}
		user.Account = acc
	}
	c.RegisterUser(user)
	return true
}

// verifyNonce reports whether sig (base64) is the signature of nonce by
// the user key pub, as nats-server checks nkey users.
func verifyNonce(pub, sig string, nonce []byte) bool {
	if len(nonce) == 0 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return false
		}
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return false
	}
	return kp.Verify(nonce, raw) == nil
}

// orgAccount returns organisation org's account, creating it with its
// limits and imports the first time.
func (au *authenticator) orgAccount(org string) (*server.Account, error) {
	au.accMu.Lock()
	defer au.accMu.Unlock()
	if acc, ok := au.accounts[org]; ok {
		return acc, nil
	}
	streams := au.ns.GlobalAccount()
	name := OrgAccountName(org)
	acc, _ := au.ns.LookupOrRegisterAccount(name)

	for _, im := range orgServiceImports(org) {
		if err := acc.AddServiceImport(streams, im[0], im[1]); err != nil {
			return nil, fmt.Errorf("natsjs: account of %s: import %s: %w", org, im[0], err)
		}
	}
	if err := acc.AddMappedStreamImport(streams, pushPrefix+"."+name+".>", OrgInboxPrefix(org)+".>"); err != nil {
		return nil, fmt.Errorf("natsjs: account of %s: import %s: %w", org, pushPrefix, err)
	}
	au.accounts[org] = acc
	return acc, nil
}

// orgAccounts returns how many organisation accounts exist.
func (au *authenticator) orgAccounts() int {
	au.accMu.Lock()
	defer au.accMu.Unlock()
	return len(au.accounts)
}

// gatePermissions are the gate connection's: JetStream's API, the
// response subjects of the organisations' requests and its own replies.
func gatePermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>", "_R_.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{gatePrefix + ".>", "_INBOX.>"}},
	}
}
