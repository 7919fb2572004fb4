package natsjs

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// benchOrgs returns n organisation ids and an Auth with a key for each
// (in memory: no key files).
func benchOrgs(b *testing.B, n int) ([]string, *Auth) {
	b.Helper()
	key := func() string {
		kp, err := nkeys.CreateUser()
		if err != nil {
			b.Fatal(err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			b.Fatal(err)
		}
		return pub
	}
	a := &Auth{Admin: key(), Routing: key(), Orgs: make(map[string]string, n)}
	orgs := make([]string, n)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("pt.o%d", i)
		a.Orgs[orgs[i]] = key()
	}
	return orgs, a
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkOrgAccounts measures what an organisation's account costs:
// time and live heap to create b.N of them with their imports (what the
// first connection of each organisation does), beside a raw nats-server
// account without imports ("raw") in the same run. Run it with
// -benchtime=10000x for 10,000 organisations:
//
//	go test -run '^$' -bench OrgAccounts -benchtime 10000x ./adapters/natsjs/
func BenchmarkOrgAccounts(b *testing.B) {
	for _, raw := range []bool{true, false} {
		name := "org"
		if raw {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			orgs, a := benchOrgs(b, b.N)
			srv, err := StartServer(context.Background(), ServerConfig{StoreDir: b.TempDir(), DontListen: true, Auth: a}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = srv.Shutdown(context.Background()) }()
			before := heapInUse()
			b.ResetTimer()
			for i := range b.N {
				if raw {
					if _, err := srv.ns.RegisterAccount(OrgAccountName(orgs[i])); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, err := srv.authn.orgAccount(orgs[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(heapInUse()-before)/float64(b.N), "heapB/account")
		})
	}
}

// BenchmarkStartWithOrgs measures StartServer with b.N organisations'
// users: with accounts created at first connection ("accounts"), and the
// earlier model of one nkey user each with its permissions, all in the
// server's options ("nkeys", the raw baseline). -benchtime=10000x for
// 10,000 organisations; the figure is per organisation.
func BenchmarkStartWithOrgs(b *testing.B) {
	for _, model := range []string{"nkeys", "accounts"} {
		b.Run(model, func(b *testing.B) {
			orgs, a := benchOrgs(b, b.N)
			before := heapInUse()
			start := time.Now()
			var stop func()
			if model == "accounts" {
				srv, err := StartServer(context.Background(), ServerConfig{StoreDir: b.TempDir(), DontListen: true, Auth: a}, nil)
				if err != nil {
					b.Fatal(err)
				}
				stop = func() { _ = srv.Shutdown(context.Background()) }
			} else {
				users := []*server.NkeyUser{{Nkey: a.Admin}, {Nkey: a.Routing, Permissions: RoutingPermissions()}}
				for _, org := range orgs {
					perms, err := OrgPermissions(org)
					if err != nil {
						b.Fatal(err)
					}
					users = append(users, &server.NkeyUser{Nkey: a.Orgs[org], Permissions: perms})
				}
				ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: b.TempDir(), DontListen: true, NoSigs: true, Nkeys: users})
				if err != nil {
					b.Fatal(err)
				}
				ns.Start()
				if !ns.ReadyForConnections(time.Minute) {
					b.Fatal("not ready")
				}
				stop = ns.Shutdown
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(elapsed.Milliseconds()), "ms/start")
			b.ReportMetric(float64(heapInUse()-before)/(1<<20), "heapMiB")
			stop()
		})
	}
}
