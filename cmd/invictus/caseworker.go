package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

// What the caseworker commands (refer, inbox, accept, decline, handover,
// open, status, withdraw, complete, erase) share: the connection flags,
// the outcome of a command, and the printing of deliveries.

// Defaults of the caseworker commands.
const (
	clientURLDefault     = client.URLDefault
	clientTimeoutDefault = 10 * time.Second
	// clientWaitDefault is how long a command waits for the routing
	// service's answer.
	clientWaitDefault = 5 * time.Second
	// handoverWaitDefault is how long handover waits for a rejection: a
	// handover is never echoed back to its sender, so success is silence.
	handoverWaitDefault = 2 * time.Second
	// Environment variables that give the common flags their defaults.
	envNATSURL = "INVICTUS_NATS_URL"
	envOrg     = "INVICTUS_ORG"
	envCreds   = "INVICTUS_CREDS"
	envKey     = "INVICTUS_KEY"
)

// eraseReasons are the reason codes of referral.erase.
var eraseReasons = []string{"victim_request", "retention", "error"}

// exitCodesHelp documents the exit codes of the binary (see the exit*
// constants in main.go).
const exitCodesHelp = `Exit codes:
  0  done (for a command: stored, and accepted or not yet answered)
  1  failed: rejected by the routing service, refused, invalid input, not found
  2  usage: unknown command or flag, missing or bad flag value
  3  unavailable: the network could not be reached or did not answer in time;
     trying again later may work`

// newExitCodesTopic is the `invictus help exit-codes` topic.
func newExitCodesTopic() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "What the exit codes of invictus mean",
		Long:  exitCodesHelp,
	}
}

// errUnavailable marks a failure to reach something the command needs.
var errUnavailable = errors.New("unavailable")

// isUnavailable reports whether err is worth retrying later: exit code 3.
func isUnavailable(err error) bool {
	return errors.Is(err, client.ErrUnavailable) || errors.Is(err, errUnavailable)
}

// envOr returns the environment variable's value, or def.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// clientFlags are the flags of every caseworker command.
type clientFlags struct {
	natsURL string
	org     string
	creds   string
	timeout time.Duration
	asJSON  bool
	wait    time.Duration
	tls     *natsTLSFlags
}

// addClientFlags registers the common flags on cmd; a positive
// waitDefault adds --wait, for commands that wait for the routing
// service's answer.
func addClientFlags(cmd *cobra.Command, waitDefault time.Duration) *clientFlags {
	f := &clientFlags{}
	fl := cmd.Flags()
	fl.StringVar(&f.natsURL, "nats-url", envOr(envNATSURL, clientURLDefault), "NATS URL of the network (env "+envNATSURL+")")
	fl.StringVar(&f.org, "org", os.Getenv(envOrg), "your organisation id, such as pt.apav (env "+envOrg+")")
	fl.StringVar(&f.creds, "creds", os.Getenv(envCreds), "your organisation's nkey seed file from 'invictus creds', or a NATS .creds file (env "+envCreds+")")
	fl.DurationVar(&f.timeout, "timeout", clientTimeoutDefault, "how long each request to the network may take")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON instead of text")
	f.tls = addNATSTLSFlags(fl)
	if waitDefault > 0 {
		fl.DurationVar(&f.wait, "wait", waitDefault, "how long to wait for the routing service's answer (0: do not wait)")
	}
	return f
}

// connect checks the flags and connects as the organisation.
func (f *clientFlags) connect(ctx context.Context) (*client.Client, error) {
	if f.org == "" {
		return nil, usageError{fmt.Errorf("--org is required (or set %s): your organisation id, such as pt.apav", envOrg)}
	}
	if !events.IsOrgID(f.org) {
		return nil, usageError{fmt.Errorf("--org %q: want an organisation id such as pt.apav", f.org)}
	}
	if f.timeout <= 0 {
		return nil, usageError{fmt.Errorf("--timeout %s: must be positive", f.timeout)}
	}
	if f.wait < 0 {
		return nil, usageError{fmt.Errorf("--wait %s: must not be negative", f.wait)}
	}
	opts := []client.Option{client.WithTimeout(f.timeout), client.WithName("invictus cli " + f.org)}
	tlsOpts, err := f.tls.options()
	if err != nil {
		return nil, err
	}
	if len(tlsOpts) > 0 {
		opts = append(opts, client.WithNATSOptions(tlsOpts...))
	}
	if f.creds != "" {
		opt, err := natsCredsOption(f.creds)
		if err != nil {
			return nil, &flagError{flag: "creds", value: f.creds, err: err}
		}
		opts = append(opts, client.WithNATSOptions(opt))
	}
	c, err := client.Connect(ctx, f.natsURL, f.org, opts...)
	if err != nil {
		if f.creds == "" && errors.Is(err, client.ErrUnauthorized) {
			return nil, usageError{fmt.Errorf("no credentials given: %s accepts no connection without them; give --creds FILE (or set %s): your organisation's nkey seed file, which 'invictus creds %s --data DIR' writes on the node", redactURLs(f.natsURL), envCreds, f.org)}
		}
		return nil, err
	}
	return c, nil
}

// referralArg checks a referral id argument.
func referralArg(s string) (string, error) {
	if !events.IsReferralID(s) {
		return "", usageError{fmt.Errorf("%q is not a referral id (a UUID such as %s)", s, events.SampleReferralID)}
	}
	return s, nil
}

// codeFlag checks that a coded flag is set to one of codes.
func codeFlag(flag, value string, codes []string) error {
	if value == "" {
		return usageError{fmt.Errorf("--%s is required: one of %s", flag, strings.Join(codes, ", "))}
	}
	if !slices.Contains(codes, value) {
		return usageError{fmt.Errorf("--%s %q: want one of %s", flag, value, strings.Join(codes, ", "))}
	}
	return nil
}

// completeCodes registers the completion of a coded flag.
func completeCodes(cmd *cobra.Command, flag string, codes []string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return codes, cobra.ShellCompDirectiveNoFileComp
	})
}

// confirm asks question on errOut and reads a yes or no from in.
func confirm(in io.Reader, errOut io.Writer, question string) bool {
	fmt.Fprintf(errOut, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// placementsWith returns the ids of the timeline's placements in one of
// statuses, for organisation org ("" for any).
func placementsWith(tl *client.Timeline, org string, statuses ...string) []string {
	var out []string
	for _, p := range tl.Placements {
		if slices.Contains(statuses, p.Status) && (org == "" || p.Organisation == org) {
			out = append(out, p.ID)
		}
	}
	return out
}

// resolvePlacement returns the --placement flag, or, when it is empty,
// the only placement of the referral that is in one of statuses (for org
// when org is not ""), read from the organisation's timeline.
func resolvePlacement(ctx context.Context, c *client.Client, referralID, flag, org string, statuses ...string) (string, *client.Timeline, error) {
	if flag != "" {
		if !events.IsPlacementID(flag) {
			return "", nil, usageError{fmt.Errorf("--placement %q is not a placement id (such as p1)", flag)}
		}
		return flag, nil, nil
	}
	tl, err := c.Timeline(ctx, referralID)
	if err != nil {
		return "", nil, err
	}
	ids := placementsWith(tl, org, statuses...)
	switch len(ids) {
	case 1:
		return ids[0], tl, nil
	case 0:
		return "", nil, fmt.Errorf("referral %s has no placement that is %s for %s; name one with --placement", referralID, strings.Join(statuses, " or "), c.Org())
	}
	return "", nil, usageError{fmt.Errorf("referral %s has placements %s: choose one with --placement", referralID, strings.Join(ids, ", "))}
}

// commandResult is what a command printed with --json says.
type commandResult struct {
	Referral string `json:"referral"`
	Command  string `json:"command"`
	Type     string `json:"type"`
	// Outcome is recorded (the routing service accepted it), rejected,
	// or pending (no answer within --wait; it stays stored and will be
	// processed).
	Outcome string           `json:"outcome"`
	Answer  string           `json:"answer,omitempty"`
	Errors  []events.Problem `json:"errors,omitempty"`
	Data    any              `json:"data,omitempty"`
}

// sendCommand sends a command with send, waits for the answer as the
// flags say, and prints the result. A rejection is returned as an error
// (exit code 1) after it is printed.
func sendCommand(ctx context.Context, out io.Writer, f *clientFlags, c *client.Client, referralID, typ string,
	send func(context.Context) (string, error)) (*commandResult, *events.Envelope, error) {
	cmdID, err := send(ctx)
	if err != nil {
		return nil, nil, err
	}
	res := &commandResult{Referral: referralID, Command: cmdID, Type: typ, Outcome: "pending"}
	var answer *events.Envelope
	var rejErr error
	if f.wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, f.wait)
		answer, rejErr = c.Await(wctx, referralID, cmdID)
		cancel()
		var rej *client.RejectedError
		switch {
		case errors.As(rejErr, &rej):
			res.Outcome, res.Errors = "rejected", rej.Problems
			res.Answer = answer.Event.Type()
		case rejErr == nil:
			res.Outcome, res.Answer = "recorded", answer.Event.Type()
			res.Data = answer.Payload
		case errors.Is(rejErr, context.DeadlineExceeded):
			rejErr = nil
		default:
			return nil, nil, rejErr
		}
	}
	if f.asJSON {
		if err := printJSON(out, res); err != nil {
			return nil, nil, err
		}
	} else {
		short := commandNoun(typ)
		switch res.Outcome {
		case "recorded":
			fmt.Fprintf(out, "%s of referral %s recorded (command %s).\n", short, referralID, cmdID)
		case "rejected":
			fmt.Fprintf(out, "%s of referral %s REJECTED (command %s):\n", short, referralID, cmdID)
			for _, p := range res.Errors {
				fmt.Fprintf(out, "  %s %s: %s\n", p.Pointer, p.Code, p.Message)
			}
		default:
			fmt.Fprintf(out, "%s of referral %s sent (command %s)", short, referralID, cmdID)
			if f.wait > 0 && typ == events.TypeReferralHandover {
				// A handover is delivered to the accepting organisation
				// only: silence means it was not rejected.
				fmt.Fprintf(out, "; no rejection within %s", f.wait)
			} else if f.wait > 0 {
				fmt.Fprintf(out, "; no answer within %s yet: see 'invictus status %s'", f.wait, referralID)
			}
			fmt.Fprintln(out, ".")
		}
	}
	return res, answer, rejErr
}

// commandNoun names a command for a sentence: "Acceptance" for
// referral.accepted.
func commandNoun(typ string) string {
	switch typ {
	case events.TypeReferralRequested:
		return "Referral"
	case events.TypeReferralAccepted:
		return "Acceptance"
	case events.TypeReferralDeclined:
		return "Decline"
	case events.TypeReferralHandover:
		return "Handover"
	case events.TypeReferralContacted:
		return "Contact"
	case events.TypeReferralOnHold:
		return "Hold"
	case events.TypeReferralCompleted:
		return "Completion"
	case events.TypeReferralWithdrawn:
		return "Withdrawal"
	case events.TypeReferralErase:
		return "Erasure"
	case events.TypeReferralFeedback:
		return "Feedback"
	}
	return shortType(typ)
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shortType returns "offered" for invictus.referral.offered.v1 and
// "command.rejected" for invictus.command.rejected.v1.
func shortType(typ string) string {
	t := strings.TrimPrefix(typ, "invictus.")
	if i := strings.LastIndex(t, ".v"); i > 0 {
		t = t[:i]
	}
	return strings.TrimPrefix(t, "referral.")
}

// deliveryJSON is a delivery printed with --json.
type deliveryJSON struct {
	Sequence      uint64    `json:"sequence"`
	Stored        time.Time `json:"stored"`
	Referral      string    `json:"referral,omitempty"`
	Reminder      bool      `json:"reminder,omitempty"`
	ID            string    `json:"id,omitempty"`
	Type          string    `json:"type,omitempty"`
	Source        string    `json:"source,omitempty"`
	Time          time.Time `json:"time,omitzero"`
	CorrelationID string    `json:"correlationid,omitempty"`
	Data          any       `json:"data,omitempty"`
	Error         string    `json:"error,omitempty"`
}

func toDeliveryJSON(d client.Delivery) deliveryJSON {
	j := deliveryJSON{Sequence: d.Sequence, Stored: d.Stored.UTC(), Referral: d.Referral, Reminder: d.Reminder}
	if d.Envelope == nil {
		if d.Err != nil {
			j.Error = d.Err.Error()
		}
		return j
	}
	ev := d.Envelope.Event
	j.ID, j.Type, j.Source, j.Time, j.Data = ev.ID(), ev.Type(), ev.Source(), ev.Time().UTC(), d.Envelope.Payload
	j.CorrelationID, _ = ev.Extensions()[events.ExtCorrelationID].(string)
	return j
}

// from returns who sent an event: the organisation id, or "routing".
func from(env *events.Envelope) string {
	if org, ok := events.OrgOfSource(env.Event.Source()); ok {
		return org
	}
	return strings.TrimPrefix(env.Event.Source(), "/invictus/")
}

// detail says in a few words what a delivery is about, without any
// victim data (a sealed envelope is never shown).
func detail(d client.Delivery) (placement, text string) {
	if d.Envelope == nil {
		return "", "not a valid event: " + fmt.Sprint(d.Err)
	}
	switch v := d.Envelope.Payload.(type) {
	case *events.Planned:
		offered := make([]string, 0, len(v.Groups))
		for _, g := range v.Groups {
			if len(g.Candidates) > 0 {
				offered = append(offered, g.Placement+"→"+g.Candidates[0].Organisation)
			}
		}
		text = fmt.Sprintf("%d placement(s): %s", len(v.Groups), strings.Join(offered, ", "))
		if len(v.Unmatched) > 0 {
			text += fmt.Sprintf("; %d need(s) not covered", len(v.Unmatched))
		}
	case *events.Offered:
		placement = v.Placement
		text = fmt.Sprintf("%s (attempt %d) for %s, answer by %s", v.Service, v.Attempt, strings.Join(v.Needs, ", "), v.Deadline.Local().Format("2006-01-02 15:04"))
		if d.Reminder {
			text = "REMINDER: " + text
		}
	case *events.Accepted:
		placement, text = v.Placement, "accepted by "+from(d.Envelope)
	case *events.Declined:
		placement, text = v.Placement, "declined by "+from(d.Envelope)+": "+v.Reason
	case *events.Expired:
		placement, text = v.Placement, "offer to "+v.Service+" expired"
	case *events.Unmatched:
		placement, text = v.Placement, "no candidate left for "+strings.Join(v.Needs, ", ")+" ("+v.Reason+")"
	case *events.Handover:
		placement, text = v.Placement, "sealed case file: invictus open "+d.Referral
	case *events.Contacted:
		placement, text = v.Placement, "victim contacted by "+from(d.Envelope)
	case *events.OnHold:
		placement, text = v.Placement, "on hold at "+from(d.Envelope)
	case *events.Completed:
		placement, text = v.Placement, "completed by "+from(d.Envelope)+": "+v.Outcome
	case *events.Withdrawn:
		text = "withdrawn by " + from(d.Envelope) + ": " + v.Reason
	case *events.Erased:
		text = "erased"
	case *events.Feedback:
		placement, text = v.Placement, fmt.Sprintf("%d survey answer(s)", len(v.Answers))
	case *events.CommandRejected:
		text = "your " + shortType(v.CommandType) + " " + v.Command + " was rejected"
		if len(v.Errors) > 0 {
			text += ": " + v.Errors[0].Code + ": " + v.Errors[0].Message
		}
	case *events.DeliveryFailed:
		placement = v.Placement
		text = "the " + v.Message + " could not be delivered to " + v.Organisation + " by " + v.Channel
		if v.Reason == events.DeliveryRefused {
			text += " (refused"
		} else {
			text += " (gave up"
		}
		if v.SMTPCode != 0 {
			text += fmt.Sprintf(", SMTP %d", v.SMTPCode)
		}
		text += fmt.Sprintf(", %d attempt(s)): contact them another way if it is urgent", v.Attempts)
	}
	return placement, text
}

// deliveryTable prints deliveries as a table with a header.
type deliveryTable struct {
	tw     *tabwriter.Writer
	header bool
}

func newDeliveryTable(w io.Writer) *deliveryTable {
	return &deliveryTable{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

func (t *deliveryTable) row(d client.Delivery, withReferral bool) {
	if !t.header {
		if withReferral {
			fmt.Fprintln(t.tw, "SEQ\tTIME\tREFERRAL\tTYPE\tPLACEMENT\tDETAIL")
		} else {
			fmt.Fprintln(t.tw, "SEQ\tTIME\tTYPE\tPLACEMENT\tDETAIL")
		}
		t.header = true
	}
	typ := "?"
	if d.Envelope != nil {
		typ = shortType(d.Envelope.Event.Type())
	}
	placement, text := detail(d)
	stored := d.Stored.Local().Format("2006-01-02 15:04:05")
	if withReferral {
		fmt.Fprintf(t.tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Sequence, stored, d.Referral, typ, placement, text)
	} else {
		fmt.Fprintf(t.tw, "%d\t%s\t%s\t%s\t%s\n", d.Sequence, stored, typ, placement, text)
	}
}

func (t *deliveryTable) flush() error { return t.tw.Flush() }

// readIdentity reads an age identity from the --key file.
func readIdentity(path string) (string, error) {
	if path == "" {
		return "", usageError{fmt.Errorf("--key is required (or set %s): your organisation's age identity file", envKey)}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &flagError{flag: "key", value: path, err: err}
	}
	id, err := seal.ParseIdentityFile(b)
	if err != nil {
		return "", &flagError{flag: "key", value: path, err: err}
	}
	return id, nil
}

// writeSecretFile writes b to path with mode 0600, replacing it.
func writeSecretFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// keyStoreOf opens the key store of a data directory.
func keyStoreOf(data string) (*natsjs.KeyStore, error) {
	return natsjs.NewKeyStore(filepath.Join(data, natsjs.KeysDir))
}
