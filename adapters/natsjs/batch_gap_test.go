package natsjs_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/routing"
)

// lossyDialer connects a client to the server over TCP through a link
// that loses one reply of a batched direct get on its way to the client,
// when armed: what a client sees when its connection moves to another
// node while a replica on a third node streams a batch to it (the
// replies sent in between reach nobody, those after reach it again), as
// in a rolling restart of the NATS nodes.
type lossyDialer struct {
	// loseNth, when positive, is which batch reply to lose, counting from
	// when it was set (1: the next one); the link then disarms itself.
	loseNth atomic.Int64
	lost    atomic.Int64
}

func (d *lossyDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go d.forward(bufio.NewReader(c), pw)
	return &lossyConn{Conn: c, r: pr}, nil
}

// forward copies the server's protocol to w, message by message, and
// leaves out the batch reply it is armed to lose.
func (d *lossyDialer) forward(r *bufio.Reader, w *io.PipeWriter) {
	var seen int64
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			w.CloseWithError(err)
			return
		}
		var payload []byte
		if f := strings.Fields(string(line)); len(f) > 0 && (f[0] == "MSG" || f[0] == "HMSG") {
			size, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				w.CloseWithError(err)
				return
			}
			payload = make([]byte, size+2) // and its \r\n
			if _, err := io.ReadFull(r, payload); err != nil {
				w.CloseWithError(err)
				return
			}
			// A batch reply carrying a message (not the end of the batch).
			if f[0] == "HMSG" && bytes.HasPrefix(payload, []byte("NATS/1.0\r\n")) && bytes.Contains(payload, []byte("Nats-Num-Pending:")) {
				if nth := d.loseNth.Load(); nth > 0 {
					if seen++; seen == nth {
						d.loseNth.Store(0)
						seen = 0
						d.lost.Add(1)
						continue
					}
				}
			}
		}
		if _, err := w.Write(append(line, payload...)); err != nil {
			return
		}
	}
}

// lossyConn reads what forward lets through.
type lossyConn struct {
	net.Conn
	r *io.PipeReader
}

func (c *lossyConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *lossyConn) Close() error {
	c.r.Close()
	return c.Conn.Close()
}

// lossyConnect connects to n's server through a lossyDialer.
func lossyConnect(t *testing.T, n *netBundle) (*lossyDialer, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	d := &lossyDialer{}
	nc, err := nats.Connect("nats://"+n.listen, nats.Name("lossy"), nats.SetCustomDialer(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return d, nc, js
}

// An inbox page read with a batched direct get whose reply got lost on
// the way fails, instead of handing out a cursor past the lost delivery:
// an organisation paging its inbox (as GET /v1/inbox?after= does) sees
// every delivery, the lost one with its next page. Without the check the
// page came back whole-looking and its cursor passed the lost delivery
// for good: an offer the organisation never sees, with every consumer
// idle, as a referral of TestClusterRollingRestart once stayed.
func TestInboxReadLosingABatchReplyFails(t *testing.T) {
	t.Parallel()
	n := newNetWith(t, true, time.Hour)
	ctx := testenv.Context(t)
	ref := events.NewReferralID()
	subject, err := events.DeliverySubject("pt.a1", ref)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := range 6 {
		ack, err := n.js.Publish(ctx, subject, []byte(strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ack.Sequence)
	}
	link, _, js := lossyConnect(t, n)
	inbox := natsjs.NewDeliveryInbox(js)

	link.loseNth.Store(3)
	var got []uint64
	var after uint64
	failed := 0
	for len(got) < len(want) && failed < 5 {
		next := after
		var page []uint64
		err := inbox.Read(ctx, "pt.a1", after, 100, func(seq uint64, _ events.Message) error {
			page = append(page, seq)
			next = max(next, seq)
			return nil
		})
		if err != nil {
			// As getInbox: the page fails (503) and the cursor stays.
			t.Logf("read after %d: %v", after, err)
			failed++
			continue
		}
		if len(page) == 0 {
			break
		}
		got, after = append(got, page...), next
	}
	if link.lost.Load() != 1 {
		t.Fatalf("the link lost %d replies, want 1", link.lost.Load())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paging the inbox saw deliveries %v, want %v", got, want)
	}
	if failed != 1 {
		t.Fatalf("%d reads failed, want the one that lost a reply", failed)
	}
}

// A referral's history read with a batched direct get whose reply got
// lost on the way is unavailable (and read again), never a history
// missing an event.
func TestLoadLosingABatchReplyFails(t *testing.T) {
	t.Parallel()
	n := newNetWith(t, true, time.Hour)
	ctx := testenv.Context(t)
	writer, err := natsjs.NewBus(n.nc, natsjs.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	id := events.NewReferralID()
	a := chain(t, id)
	if _, err := writer.Append(ctx, a); err != nil {
		t.Fatal(err)
	}
	link, nc, _ := lossyConnect(t, n)
	bus, err := natsjs.NewBus(nc, natsjs.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	link.loseNth.Store(2)
	h, err := bus.Load(ctx, id, 0)
	if link.lost.Load() != 1 {
		t.Fatalf("the link lost %d replies, want 1", link.lost.Load())
	}
	if !errors.Is(err, routing.ErrUnavailable) {
		t.Fatalf("Load with a lost reply: %d events up to %d, error %v; want routing.ErrUnavailable", len(h.Events), h.Last, err)
	}
	h, err = bus.Load(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != len(a.Events) {
		t.Fatalf("Load again: %d events, want %d", len(h.Events), len(a.Events))
	}
}
