package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

// openedJSON is one opened case file printed with --json.
type openedJSON struct {
	Referral  string `json:"referral,omitempty"`
	Placement string `json:"placement,omitempty"`
	// Case is the case file: JSON as it is, anything else as a string.
	Case any `json:"case"`
}

func newOpenCmd(out io.Writer) *cobra.Command {
	var keyFile, placement, output string
	cmd := &cobra.Command{
		Use:   "open REFERRAL|FILE",
		Short: "Open a sealed case file handed over to your organisation",
		Long: "Open decrypts a sealed case file with your organisation's age identity (--key,\n" +
			"the AGE-SECRET-KEY file whose public recipient is in the directory) and prints\n" +
			"it, or writes it to --output (mode 0600). The argument is either a referral id,\n" +
			"whose handovers are read from what your organisation received, or a FILE\n" +
			"holding an armored age envelope, a referral.handover payload, or the whole\n" +
			"CloudEvent (structured JSON); \"-\" reads standard input. Nothing is decrypted\n" +
			"anywhere else than on this machine.\n\n" + exitCodesHelp,
		Example: "  invictus open 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --key pt.apav.agekey --org pt.apav --creds pt.apav.nk\n" +
			"  invictus open handover.json --key pt.apav.agekey -o case.json\n" +
			"  invictus inbox --type handover --json | jq '.[0].data' | invictus open - --key pt.apav.agekey",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&keyFile, "key", os.Getenv(envKey), "your organisation's age identity file (env "+envKey+")")
	cmd.Flags().StringVar(&placement, "placement", "", "with a referral: open the handover of this placement only")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the case file to FILE (mode 0600) instead of standard output")
	f := addClientFlags(cmd, 0)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		identity, err := readIdentity(keyFile)
		if err != nil {
			return err
		}
		var handovers []*events.Handover
		referralID := ""
		if events.IsReferralID(args[0]) {
			referralID = args[0]
			c, err := f.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			tl, err := c.Timeline(cmd.Context(), referralID)
			if err != nil {
				return err
			}
			for _, d := range tl.Deliveries {
				if d.Envelope == nil {
					continue
				}
				if h, ok := d.Envelope.Payload.(*events.Handover); ok && (placement == "" || h.Placement == placement) {
					handovers = append(handovers, h)
				}
			}
			if len(handovers) == 0 {
				return fmt.Errorf("%s received no handover of referral %s%s", c.Org(), referralID, forPlacement(placement))
			}
		} else {
			var data []byte
			if args[0] == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), events.MaxMessageSize+1))
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", args[0], err)
			}
			h, ref, err := handoverOf(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			handovers, referralID = []*events.Handover{h}, ref
		}

		var opened []openedJSON
		var all bytes.Buffer
		for _, h := range handovers {
			caseFile, err := client.Open(identity, h)
			if errors.Is(err, seal.ErrNotForYou) {
				return fmt.Errorf("%w: it was sealed to %s; is --key your organisation's identity?", err, dash(h.Recipient))
			}
			if err != nil {
				return err
			}
			all.Write(caseFile)
			o := openedJSON{Referral: referralID, Placement: h.Placement, Case: string(caseFile)}
			if json.Valid(caseFile) {
				o.Case = json.RawMessage(caseFile)
			}
			opened = append(opened, o)
		}
		switch {
		case output != "":
			if err := writeSecretFile(output, all.Bytes()); err != nil {
				return &flagError{flag: "output", value: output, err: err}
			}
			if f.asJSON {
				return printJSON(out, map[string]any{"referral": referralID, "output": output, "bytes": all.Len(), "handovers": len(opened)})
			}
			_, err := fmt.Fprintf(out, "wrote %d bytes to %s (%d handover(s))\n", all.Len(), output, len(opened))
			return err
		case f.asJSON:
			return printJSON(out, opened)
		}
		_, err = out.Write(all.Bytes())
		return err
	}
	return cmd
}

func forPlacement(p string) string {
	if p == "" {
		return ""
	}
	return " for placement " + p
}

// handoverOf reads a handover from a file: an armored age envelope, a
// referral.handover payload, or a structured CloudEvent. It returns the
// referral id when the file says it.
func handoverOf(data []byte) (*events.Handover, string, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte(events.AgeArmorHeader)) {
		return &events.Handover{Envelope: string(trimmed) + "\n"}, "", nil
	}
	var probe struct {
		SpecVersion string `json:"specversion"`
		Envelope    string `json:"envelope"`
	}
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return nil, "", fmt.Errorf("neither an age envelope nor JSON: %w", err)
	}
	if probe.SpecVersion != "" {
		env, err := events.Decode(events.Message{Header: map[string][]string{"Content-Type": {"application/cloudevents+json"}}, Data: trimmed})
		if err != nil {
			return nil, "", err
		}
		h, ok := env.Payload.(*events.Handover)
		if !ok {
			return nil, "", fmt.Errorf("the event is %s, not a handover", env.Event.Type())
		}
		return h, env.Event.Subject(), nil
	}
	if probe.Envelope == "" {
		return nil, "", errors.New("no envelope in the JSON (want a referral.handover payload or event)")
	}
	var h events.Handover
	if err := json.Unmarshal(trimmed, &h); err != nil {
		return nil, "", err
	}
	return &h, "", nil
}
