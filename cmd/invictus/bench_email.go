package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/internal/bench"
)

func newBenchEmailCmd(out, errOut io.Writer) *cobra.Command {
	var smtpURL string
	var messages int
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "email",
		Short: "Measure the e-mail channel's delivery rate beside a raw SMTP send loop",
		Long: "Bench email sends --messages messages to --smtp-url twice, in the same run: first\n" +
			"as a raw loop (prebuilt messages of an offer's size on one SMTP connection, with\n" +
			"the go-mail client the channel uses), then through the e-mail adapter on an\n" +
			"embedded NATS server in a temporary directory (offers stored in DELIVERY,\n" +
			"consumed, composed in Portuguese with their signed links, sent, marked and\n" +
			"acknowledged). It prints both rates, their ratio, the CPU of this process per\n" +
			"message and the load average. Use a test server such as Mailpit: it receives\n" +
			"2 × --messages messages. It fails when a side cannot send, never on a timing.",
		Example: "  mailpit --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 &\n" +
			"  invictus bench email --smtp-url 'smtp://127.0.0.1:1025?tls=none' --messages 1000",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&smtpURL, "smtp-url", "", "the SMTP server to send to (as serve's --smtp-url); a test server")
	f.IntVar(&messages, "messages", bench.EmailMessagesDefault, "messages each side sends")
	f.DurationVar(&wait, "wait", bench.WaitDefault, "how long the adapter may take to send them")
	markSecret(f, "smtp-url")
	lf := addLogFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if smtpURL == "" {
			return usageError{errors.New("--smtp-url is required: the bench sends real messages")}
		}
		if _, err := email.ParseSMTPURL(smtpURL); err != nil {
			return usageError{&flagError{flag: "smtp-url", value: redacted, err: err}}
		}
		if messages < 1 || messages > 1_000_000 {
			return usageError{fmt.Errorf("--messages %d: want 1 to 1000000", messages)}
		}
		if wait <= 0 {
			return usageError{fmt.Errorf("--wait %s: must be positive", wait)}
		}
		logger, err := lf.logger(errOut)
		if err != nil {
			return err
		}
		r, err := bench.Email(cmd.Context(), bench.EmailConfig{SMTPURL: smtpURL, Messages: messages, Wait: wait, Logger: logger})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "messages per side: %d\n", r.Messages)
		fmt.Fprintf(out, "raw SMTP loop:  %8.1f msg/s  %6.2f ms CPU/msg\n", r.RawPerS, r.RawCPUms)
		fmt.Fprintf(out, "e-mail adapter: %8.1f msg/s  %6.2f ms CPU/msg\n", r.AdapterPerS, r.AdapterCPUms)
		fmt.Fprintf(out, "adapter / raw:  %8.2f×\n", r.AdapterPerS/r.RawPerS)
		if r.Load != "" {
			fmt.Fprintf(out, "load average:   %s\n", r.Load)
		}
		return nil
	}
	return cmd
}
