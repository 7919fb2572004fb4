package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

func newBackupCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup DIR",
		Short: "Write a snapshot of every JetStream stream and bucket of a node or cluster to DIR",
		Long: "Backup takes a JetStream snapshot of every stream of the account (INBOUND,\n" +
			"REFERRALS, DELIVERY, TIMERS, DLQ and the buckets: KV_directory, KV_tokens, ...)\n" +
			"and writes two files per stream to DIR: NAME.snapshot, the server's snapshot\n" +
			"with the consumers' state, and NAME.json, the stream's configuration and\n" +
			"state. With --data it backs up the node running on DIR (or its store opened\n" +
			"in process when none runs); with --nats-url and --creds a server or cluster,\n" +
			"while it runs. `invictus restore DIR` brings the streams back. The keys\n" +
			"(DATA/keys) and the read model's checkpoint are files: copy them as files.",
		Example: "  invictus backup /backups/2026-12-07 --data ./data\n" +
			"  invictus backup /backups/today --nats-url nats://nats-1:4222 --creds admin.nk",
		Args: cobra.ExactArgs(1),
	}
	f := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runBackupRestore(cmd.Context(), f, out, errOut, "invictus backup", func(ctx context.Context, nc *nats.Conn) ([]natsjs.BackupInfo, error) {
			return natsjs.Backup(ctx, nc, args[0])
		}, "backed up to "+args[0])
	}
	return cmd
}

func newRestoreCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore DIR",
		Short: "Restore the streams and buckets of a backup (invictus backup) into an empty store",
		Long: "Restore sends every stream of the backup in DIR back to JetStream, with its\n" +
			"messages, sequences and consumers. It restores into a store that has none of\n" +
			"those streams (a new data directory, or a new cluster): when one exists it\n" +
			"says which and changes nothing. With --data it opens the store of a stopped\n" +
			"node in process (or uses the node running on it); with --nats-url and --creds\n" +
			"a server or cluster. Start serve on it afterwards.",
		Example: "  invictus restore /backups/2026-12-07 --data ./new-data\n" +
			"  invictus restore /backups/today --nats-url nats://nats-1:4222 --creds admin.nk",
		Args: cobra.ExactArgs(1),
	}
	f := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runBackupRestore(cmd.Context(), f, out, errOut, "invictus restore", func(ctx context.Context, nc *nats.Conn) ([]natsjs.BackupInfo, error) {
			infos, err := natsjs.Restore(ctx, nc, args[0])
			if errors.Is(err, natsjs.ErrStreamExists) {
				return nil, fmt.Errorf("%w (nothing was restored)", err)
			}
			return infos, err
		}, "restored from "+args[0])
	}
	return cmd
}

// runBackupRestore connects as f says, runs do and prints the streams
// it handled.
func runBackupRestore(ctx context.Context, f *storeFlags, out, errOut io.Writer, name string,
	do func(context.Context, *nats.Conn) ([]natsjs.BackupInfo, error), done string) error {
	var infos []natsjs.BackupInfo
	err := f.run(ctx, errOut, name, func(ctx context.Context, nc *nats.Conn, _ *slog.Logger) error {
		var err error
		infos, err = do(ctx, nc)
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tFIRST\tLAST\tBYTES")
	for _, s := range infos {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", s.Config.Name, s.State.Msgs, s.State.FirstSeq, s.State.LastSeq, s.State.Bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%d streams %s\n", len(infos), done)
	return err
}
