// Command natsnode runs one nats-server 2.15 (the version the module
// embeds) from a configuration file of deploy/nats, as `nats-server -c`
// would, with the ports and store that a test gives it. The cluster fault
// tests build it once and run each NATS node as a process of its own, so
// that a node can be killed with SIGKILL and started again on its store.
//
//	natsnode -c deploy/nats/cluster.conf -client 127.0.0.1:4222 -cluster 6222 -http 8222 -store DIR
//
// It stops cleanly on SIGTERM or SIGINT (exit 0) and reloads the file on
// SIGHUP.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	conf := flag.String("c", "", "configuration file")
	client := flag.String("client", "", "client listen address host:port")
	cluster := flag.Int("cluster", 0, "cluster (route) port; 0 keeps the file's")
	leaf := flag.Int("leaf", -1, "leaf node port; -1 turns the leaf listener off, 0 keeps the file's")
	httpPort := flag.Int("http", 0, "monitoring port; 0 turns it off")
	store := flag.String("store", "", "JetStream store directory")
	flag.Parse()
	if err := run(*conf, *client, *cluster, *leaf, *httpPort, *store); err != nil {
		fmt.Fprintln(os.Stderr, "natsnode:", err)
		os.Exit(1)
	}
}

func run(conf, client string, cluster, leaf, httpPort int, store string) error {
	opts, err := options(conf, client, cluster, leaf, httpPort, store)
	if err != nil {
		return err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(2 * time.Minute) {
		return fmt.Errorf("%s: not ready for connections", s.Name())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for sg := range sig {
		if sg != syscall.SIGHUP {
			break
		}
		// SIGHUP reloads the file, as `nats-server --signal reload`
		// does, with the same ports and store.
		nopts, err := options(conf, client, cluster, leaf, httpPort, store)
		if err == nil {
			err = s.ReloadOptions(nopts)
		}
		if err != nil {
			s.Errorf("reload: %v", err)
		} else {
			s.Noticef("reloaded %s", conf)
		}
	}
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

// options reads conf and applies the command line's ports and store.
func options(conf, client string, cluster, leaf, httpPort int, store string) (*server.Options, error) {
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return nil, err
	}
	host, p, err := net.SplitHostPort(client)
	if err != nil {
		return nil, fmt.Errorf("-client: %w", err)
	}
	if opts.Port, err = strconv.Atoi(p); err != nil {
		return nil, fmt.Errorf("-client: %w", err)
	}
	opts.Host = host
	if cluster > 0 {
		opts.Cluster.Host, opts.Cluster.Port = host, cluster
	}
	switch {
	case leaf < 0:
		opts.LeafNode.Port = 0
		opts.LeafNode.Host = ""
	case leaf > 0:
		opts.LeafNode.Host, opts.LeafNode.Port = host, leaf
	}
	opts.HTTPHost, opts.HTTPPort = host, httpPort
	if store != "" {
		opts.StoreDir = store
	}
	opts.NoSigs = true
	return opts, nil
}
