package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// probeTimeoutDefault bounds one probe.
const probeTimeoutDefault = 3 * time.Second

// newProbeCmd is `invictus probe URL`: the health check of a container
// whose image holds nothing but the binary (deploy/Dockerfile), where
// there is no curl or wget to ask /readyz.
func newProbeCmd(out io.Writer) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe URL",
		Short: "Exit 0 if URL answers 200 (a container's health check of /healthz or /readyz)",
		Long: "Probe sends GET URL and exits 0 when the answer is 200 OK, 1 otherwise,\n" +
			"printing the status and the body's first line. It is the health check of\n" +
			"the container image of deploy/Dockerfile, which has no shell, curl or wget.",
		Example: "  invictus probe http://127.0.0.1:8080/readyz",
		Args:    cobra.ExactArgs(1),
	}
	cmd.Flags().DurationVar(&timeout, "timeout", probeTimeoutDefault, "how long to wait for the answer")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
		if err != nil {
			return usageError{fmt.Errorf("probe %q: %w", args[0], err)}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		fmt.Fprintf(out, "%s %s\n", resp.Status, firstLine(body))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("probe: %s answered %s", args[0], resp.Status)
		}
		return nil
	}
	return cmd
}

// firstLine is b up to its first newline.
func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
