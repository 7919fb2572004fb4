package natsjs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Operator mode: decentralised authentication for a NATS cluster.
//
// The embedded server builds the organisations' accounts in process
// (accounts.go). A cluster of stock nats-server nodes cannot run that
// code; it enforces the same structure when it is given it as JWTs, the
// scheme nsc uses: an operator signs the accounts, each account signs its
// users. [Operator] keeps the operator's and the accounts' signing keys in
// a directory and issues:
//
//   - the account INVICTUS, which holds the streams (JetStream on, no
//     limits but the streams' own) and exports what the organisations'
//     accounts import (streamExports), with the users admin and routing;
//   - the system account SYS with the operators' user sys;
//   - for each organisation, an account of its own (JetStream off, at
//     most [OrgMaxConnectionsDefault] connections) that imports from
//     INVICTUS exactly what the embedded server's does
//     (orgServiceImports), and whose user has the subject permissions of
//     [OrgPermissions].
//
// [OperatorConfig.ServerConfig] is the part of a nats-server
// configuration that trusts the operator and preloads the accounts into
// a memory resolver; [Operator.UserCreds] writes a standard .creds file
// (user JWT and nkey seed) that natscli and every NATS client read. The
// users' nkeys are those of the [KeyStore], so a user keeps its key when
// a deployment moves from nkeys to JWTs.

// Account names in operator mode.
const (
	// OperatorAccountStreams is the account of the streams on a cluster in
	// operator mode.
	OperatorAccountStreams = "INVICTUS"
	// OperatorAccountSys is the system account.
	OperatorAccountSys = "SYS"
	// OperatorMaxControlLine is the max_control_line of a server in
	// operator mode: a client's CONNECT carries its user JWT.
	OperatorMaxControlLine = 16 * 1024
	// operatorName names the operator in its JWT.
	operatorName = "INVICTUS"
)

// Operator keeps the signing keys of operator mode in a directory:
// operator.nk and one <account>.nk per account (mode 0600).
type Operator struct {
	dir  string
	keys *KeyStore
}

// NewOperator returns the operator whose signing keys are in dir (made,
// mode 0700, if needed); keys holds the users' nkeys. It returns an error
// wrapping [ErrAuth] if dir cannot be made.
func NewOperator(dir string, keys *KeyStore) (*Operator, error) {
	if dir == "" || keys == nil {
		return nil, fmt.Errorf("%w: the operator needs a key directory and a key store", ErrAuth)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: operator key directory: %w", ErrAuth, err)
	}
	return &Operator{dir: dir, keys: keys}, nil
}

// signer returns the key pair of file name, made with create the first
// time.
func (o *Operator) signer(name string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	path := filepath.Join(o.dir, name+SeedFileExt)
	b, err := os.ReadFile(path)
	if err == nil {
		kp, err := nkeys.ParseDecoratedNKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w: key file %s: %w", ErrAuth, path, err)
		}
		return kp, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: key file %s: %w", ErrAuth, path, err)
	}
	kp, err := create()
	if err != nil {
		return nil, fmt.Errorf("%w: create key %s: %w", ErrAuth, name, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("%w: create key %s: %w", ErrAuth, name, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return o.signer(name, create) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("%w: write key %s: %w", ErrAuth, name, err)
	}
	_, werr := fmt.Fprintf(f, "# NATS %s signing key of the INVICTUS network. Keep it secret.\n%s\n", name, seed)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: write key %s: %w", ErrAuth, name, werr)
	}
	return kp, nil
}

func (o *Operator) operatorKey() (nkeys.KeyPair, error) {
	return o.signer("operator", nkeys.CreateOperator)
}

// accountKey returns the key of account name (INVICTUS, SYS or an
// organisation's account, [OrgAccountName]).
func (o *Operator) accountKey(name string) (nkeys.KeyPair, error) {
	return o.signer("account-"+name, nkeys.CreateAccount)
}

// OperatorConfig is what a nats-server in operator mode must be given.
type OperatorConfig struct {
	// OperatorJWT is the operator's JWT.
	OperatorJWT string
	// SystemAccount is the public key of SYS.
	SystemAccount string
	// StreamsAccount is the public key of INVICTUS.
	StreamsAccount string
	// Accounts are the account JWTs by public key.
	Accounts map[string]string
	// Names are the account names by public key.
	Names map[string]string
}

// Config issues the operator's JWT and the account JWTs of INVICTUS, SYS
// and every organisation of orgs. It returns an error wrapping [ErrAuth]
// for an invalid organisation id or a key that cannot be read.
func (o *Operator) Config(orgs []string) (OperatorConfig, error) {
	okp, err := o.operatorKey()
	if err != nil {
		return OperatorConfig{}, err
	}
	opub, err := okp.PublicKey()
	if err != nil {
		return OperatorConfig{}, err
	}
	cfg := OperatorConfig{Accounts: map[string]string{}, Names: map[string]string{}}
	sign := func(name string, fill func(pub string, ac *jwt.AccountClaims) error) (string, error) {
		akp, err := o.accountKey(name)
		if err != nil {
			return "", err
		}
		pub, err := akp.PublicKey()
		if err != nil {
			return "", err
		}
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if err := fill(pub, ac); err != nil {
			return "", err
		}
		token, err := ac.Encode(okp)
		if err != nil {
			return "", fmt.Errorf("%w: account %s: %w", ErrAuth, name, err)
		}
		cfg.Accounts[pub], cfg.Names[pub] = token, name
		return pub, nil
	}
	if cfg.SystemAccount, err = sign(OperatorAccountSys, func(string, *jwt.AccountClaims) error { return nil }); err != nil {
		return OperatorConfig{}, err
	}
	if cfg.StreamsAccount, err = sign(OperatorAccountStreams, func(_ string, ac *jwt.AccountClaims) error {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit,
			Streams: jwt.NoLimit, Consumer: jwt.NoLimit, MaxAckPending: jwt.NoLimit}
		for _, e := range streamExports {
			ex := &jwt.Export{Subject: jwt.Subject(e.subject), Type: jwt.Stream}
			if e.service {
				ex.Type = jwt.Service
				if e.streamed {
					ex.ResponseType = jwt.ResponseTypeStream
				}
			}
			ac.Exports.Add(ex)
		}
		return nil
	}); err != nil {
		return OperatorConfig{}, err
	}
	for _, org := range orgs {
		if _, _, err := orgTokens(org); err != nil {
			return OperatorConfig{}, err
		}
		name := OrgAccountName(org)
		if _, err := sign(name, func(_ string, ac *jwt.AccountClaims) error {
			ac.Limits.Conn = OrgMaxConnectionsDefault
			ac.Limits.LeafNodeConn = 0
			for _, im := range orgServiceImports(org) {
				remote := im[1]
				if remote == "" {
					remote = im[0]
				}
				ac.Imports.Add(&jwt.Import{Type: jwt.Service, Account: cfg.StreamsAccount,
					Subject: jwt.Subject(remote), LocalSubject: jwt.RenamingSubject(im[0])})
			}
			ac.Imports.Add(&jwt.Import{Type: jwt.Stream, Account: cfg.StreamsAccount,
				Subject: jwt.Subject(pushPrefix + "." + name + ".>"), LocalSubject: jwt.RenamingSubject(OrgInboxPrefix(org) + ".>")})
			return nil
		}); err != nil {
			return OperatorConfig{}, err
		}
	}
	if cfg.OperatorJWT, err = o.operatorJWT(okp, opub, cfg.SystemAccount); err != nil {
		return OperatorConfig{}, err
	}
	return cfg, nil
}

// operatorJWT returns the operator's JWT, issued once and kept in
// operator.jwt: a server reloads new accounts, but refuses to reload a
// different operator JWT (a new one would carry a new id and time).
func (o *Operator) operatorJWT(okp nkeys.KeyPair, opub, sys string) (string, error) {
	path := filepath.Join(o.dir, "operator.jwt")
	if b, err := os.ReadFile(path); err == nil {
		token := strings.TrimSpace(string(b))
		if oc, err := jwt.DecodeOperatorClaims(token); err == nil && oc.Subject == opub && oc.SystemAccount == sys {
			return token, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: %s: %w", ErrAuth, path, err)
	}
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = operatorName
	oc.SystemAccount = sys
	token, err := oc.Encode(okp)
	if err != nil {
		return "", fmt.Errorf("%w: operator: %w", ErrAuth, err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrAuth, path, err)
	}
	return token, nil
}

// ServerConfig returns the nats-server configuration lines of operator
// mode with a memory resolver that holds every account of c: include it
// in a node's configuration (deploy/nats/operator.conf shows where).
func (c OperatorConfig) ServerConfig() []byte {
	var b strings.Builder
	b.WriteString("# Operator mode of the INVICTUS network, written by `invictus creds --operator-config`.\n")
	// A client sends its user JWT in its CONNECT line; an organisation's,
	// with its permissions, is 3.5 to 8 KB, over the default limit of 4 KB.
	fmt.Fprintf(&b, "max_control_line: %d\n", OperatorMaxControlLine)
	fmt.Fprintf(&b, "operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n", c.OperatorJWT, c.SystemAccount)
	pubs := make([]string, 0, len(c.Accounts))
	for pub := range c.Accounts {
		pubs = append(pubs, pub)
	}
	slices.Sort(pubs)
	for _, pub := range pubs {
		fmt.Fprintf(&b, "  # %s\n  %s: %q\n", c.Names[pub], pub, c.Accounts[pub])
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// UserCreds returns the .creds file of user (admin, routing, sys or an
// organisation id): a user JWT signed by its account, with the
// permissions the embedded server gives it, and the user's nkey seed
// from the key store (made if there is none). It returns an error
// wrapping [ErrAuth] for an unknown user or a key that cannot be read.
func (o *Operator) UserCreds(user string) ([]byte, error) {
	account := OperatorAccountStreams
	uc := func(pub string) *jwt.UserClaims { c := jwt.NewUserClaims(pub); c.Name = user; return c }
	var claims *jwt.UserClaims
	pub, err := o.keys.Ensure(user)
	if err != nil {
		return nil, err
	}
	switch {
	case user == UserSys:
		account = OperatorAccountSys
		claims = uc(pub)
	case user == UserAdmin:
		claims = uc(pub)
	case user == UserRouting:
		claims = uc(pub)
		p := RoutingPermissions()
		claims.Pub.Allow.Add(p.Publish.Allow...)
		claims.Sub.Allow.Add(p.Subscribe.Allow...)
	default:
		p, err := OrgPermissions(user)
		if err != nil {
			return nil, err
		}
		account = OrgAccountName(user)
		claims = uc(pub)
		claims.Pub.Allow.Add(p.Publish.Allow...)
		claims.Sub.Allow.Add(p.Subscribe.Allow...)
	}
	akp, err := o.accountKey(account)
	if err != nil {
		return nil, err
	}
	token, err := claims.Encode(akp)
	if err != nil {
		return nil, fmt.Errorf("%w: user %s: %w", ErrAuth, user, err)
	}
	seedFile, err := o.keys.Seed(user)
	if err != nil {
		return nil, err
	}
	kp, err := nkeys.ParseDecoratedNKey(seedFile)
	if err != nil {
		return nil, fmt.Errorf("%w: key of %s: %w", ErrAuth, user, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("%w: key of %s: %w", ErrAuth, user, err)
	}
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		return nil, fmt.Errorf("%w: creds of %s: %w", ErrAuth, user, err)
	}
	return creds, nil
}
