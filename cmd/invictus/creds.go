package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
)

// credsJSON is `invictus creds --json`.
type credsJSON struct {
	User        string `json:"user"`
	PublicKey   string `json:"public_key"`
	InboxPrefix string `json:"inbox_prefix,omitempty"`
	Consumer    string `json:"consumer,omitempty"`
	File        string `json:"file,omitempty"`
	// Seed is the seed file's contents when no --output is given.
	Seed    string `json:"seed,omitempty"`
	Created bool   `json:"created"`
	// JWT marks a .creds file of operator mode (--jwt).
	JWT bool `json:"jwt,omitempty"`
}

// operatorJSON is `invictus creds operator --json`.
type operatorJSON struct {
	SystemAccount  string            `json:"system_account"`
	StreamsAccount string            `json:"streams_account"`
	Accounts       map[string]string `json:"accounts"` // name -> public key
	File           string            `json:"file,omitempty"`
}

// operatorKeysDir is where, under DATA/keys, the operator's and the
// accounts' signing keys are.
const operatorKeysDir = "operator"

// operatorOf returns the operator whose keys are under data.
func operatorOf(data string) (*natsjs.Operator, error) {
	keys, err := keyStoreOf(data)
	if err != nil {
		return nil, err
	}
	return natsjs.NewOperator(filepath.Join(data, natsjs.KeysDir, operatorKeysDir), keys)
}

// runOperatorConfig writes the nats-server configuration of operator
// mode for orgs.
func runOperatorConfig(out io.Writer, data, output string, orgs []string, asJSON bool) error {
	for _, org := range orgs {
		if !events.IsOrgID(org) {
			return usageError{fmt.Errorf("--org %q is not an organisation id (such as pt.apav)", org)}
		}
	}
	op, err := operatorOf(data)
	if err != nil {
		return &flagError{flag: "data", value: data, err: err}
	}
	cfg, err := op.Config(orgs)
	if err != nil {
		return err
	}
	conf := cfg.ServerConfig()
	res := operatorJSON{SystemAccount: cfg.SystemAccount, StreamsAccount: cfg.StreamsAccount, Accounts: map[string]string{}}
	for pub, name := range cfg.Names {
		res.Accounts[name] = pub
	}
	if output != "" {
		if err := writeSecretFile(output, conf); err != nil {
			return &flagError{flag: "output", value: output, err: err}
		}
		res.File = output
	}
	switch {
	case asJSON:
		return printJSON(out, res)
	case output != "":
		_, err = fmt.Fprintf(out, "wrote operator mode for %d accounts to %s (system account %s)\n", len(cfg.Accounts), output, cfg.SystemAccount)
		return err
	}
	_, err = out.Write(conf)
	return err
}

func newCredsCmd(out, errOut io.Writer) *cobra.Command {
	var data, output string
	var asJSON, asJWT bool
	var orgs []string
	cmd := &cobra.Command{
		Use:   "creds ORG",
		Short: "Write the NATS credentials (nkey seed file) of an organisation",
		Long: "Creds writes the NATS credentials of organisation ORG (or of the \"admin\" or\n" +
			"\"routing\" user, or of \"sys\", the operators' system-account user of a cluster\n" +
			"configured from deploy/nats) from the node's key store, DATA/keys/ORG.nk, creating the key if\n" +
			"there is none yet (a running node accepts a new key once it reloads or restarts).\n" +
			"Give the file to the organisation's IT person: whoever holds it acts as ORG.\n\n" +
			"The file is an nkey seed file, the standard credential of a NATS server that\n" +
			"authenticates nkeys (the embedded server does); a .creds file would need a user\n" +
			"JWT, which only a server in operator mode checks. Every NATS client reads it:\n" +
			"  invictus inbox --org ORG --creds FILE\n" +
			"  nats --server nats://HOST:4223 --nkey FILE --inbox-prefix _INBOX_<cc>_<org> ...\n" +
			"  nats.go: nats.NkeyOptionFromSeed(FILE), nats.CustomInboxPrefix(\"_INBOX_<cc>_<org>\")\n" +
			"The organisation may subscribe only below its inbox prefix, so clients must set it.\n\n" +
			"A cluster in operator mode (deploy/nats/cluster-operator.conf) checks JWTs instead:\n" +
			"  invictus creds operator --org pt.apav --org fi.riku -o operator.conf\n" +
			"writes the nats-server configuration that trusts this network's operator, with a\n" +
			"memory resolver holding the accounts INVICTUS (the streams), SYS and one per\n" +
			"organisation (importing exactly what the embedded server's organisation accounts\n" +
			"import), and\n" +
			"  invictus creds pt.apav --jwt -o pt.apav.creds\n" +
			"writes a standard .creds file (user JWT and seed) with the same permissions as\n" +
			"on the embedded server (nats --creds FILE, nats.UserCredentials(FILE)). The\n" +
			"operator's and accounts' signing keys stay in DATA/keys/operator.\n\n" + exitCodesHelp,
		Example: "  invictus creds pt.apav --data ./data -o pt.apav.nk\n" +
			"  invictus creds admin --data ./data -o admin.nk\n" +
			"  invictus creds sys --data ./secrets --json | jq -r .public_key\n" +
			"  invictus creds fi.riku --json | jq -r .public_key\n" +
			"  invictus creds operator --data ./secrets --org pt.apav --org fi.riku -o operator.conf\n" +
			"  invictus creds pt.apav --data ./secrets --jwt -o pt.apav.creds",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&data, "data", serveDataDefault, "data directory of the node (keys under DIR/keys)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the seed file to FILE (mode 0600) instead of standard output")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&asJWT, "jwt", false, "write a .creds file (user JWT and seed) for a cluster in operator mode")
	cmd.Flags().StringArrayVar(&orgs, "org", nil, "with the user \"operator\": an organisation to give an account (repeat)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		user := args[0]
		if user == "operator" {
			if asJWT {
				return usageError{errors.New("--jwt is for a user; \"operator\" writes the server configuration")}
			}
			return runOperatorConfig(out, data, output, orgs, asJSON)
		}
		if len(orgs) > 0 {
			return usageError{errors.New("--org goes with the user \"operator\"")}
		}
		if user != natsjs.UserAdmin && user != natsjs.UserRouting && user != natsjs.UserSys && !events.IsOrgID(user) {
			return usageError{fmt.Errorf("%q is not an organisation id (such as pt.apav), %q, %q or %q", user, natsjs.UserAdmin, natsjs.UserRouting, natsjs.UserSys)}
		}
		keys, err := keyStoreOf(data)
		if err != nil {
			return &flagError{flag: "data", value: data, err: err}
		}
		_, statErr := os.Stat(keys.Path(user))
		created := errors.Is(statErr, os.ErrNotExist)
		pub, err := keys.Ensure(user)
		if err != nil {
			return err
		}
		seed, err := keys.Seed(user)
		if err != nil {
			return err
		}
		if asJWT {
			op, err := operatorOf(data)
			if err != nil {
				return &flagError{flag: "data", value: data, err: err}
			}
			if seed, err = op.UserCreds(user); err != nil {
				return err
			}
		}
		if created {
			fmt.Fprintf(errOut, "invictus: created a new key for %s in %s; a running node accepts it once reloaded or restarted\n", user, keys.Path(user))
		}
		res := credsJSON{User: user, PublicKey: pub, InboxPrefix: natsjs.OrgInboxPrefix(user), Consumer: natsjs.OrgConsumerName(user), Created: created, JWT: asJWT}
		if output != "" {
			if err := writeSecretFile(output, seed); err != nil {
				return &flagError{flag: "output", value: output, err: err}
			}
			res.File = output
		} else {
			res.Seed = string(seed)
		}
		switch {
		case asJSON:
			return printJSON(out, res)
		case output != "":
			_, err = fmt.Fprintf(out, "wrote the credentials of %s to %s (public key %s)\n", user, output, pub)
			return err
		}
		_, err = out.Write(seed)
		return err
	}
	return cmd
}
