package natsjs

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestSubjectCacheKeepsCopies: the cache keeps its own copies of a
// referral's id and subject, not the strings it is given, which may share
// the memory of a whole message's headers and would keep them live.
func TestSubjectCacheKeepsCopies(t *testing.T) {
	t.Parallel()
	headers := "Ce-Subject: 01a251e2-19a6-7208-9df0-7c28cb74ad59\r\nNats-Msg-Id: ref.pt.01a251e2-19a6-7208-9df0-7c28cb74ad59\r\n" +
		"Other-Id: not-a-uuid\r\nOther-Subject: referral.pt.not-a-uuid\r\n" + strings.Repeat("X", 1024)
	field := func(name string) string {
		v := headers[strings.Index(headers, name+": ")+len(name)+2:]
		return v[:strings.Index(v, "\r\n")]
	}
	c := newSubjectCache(4)
	for _, p := range [][2]string{{field("Ce-Subject"), field("Nats-Msg-Id")}, {field("Other-Id"), field("Other-Subject")}} {
		c.put(p[0], p[1])
		if got, ok := c.get(p[0]); !ok || got != p[1] {
			t.Fatalf("get(%q) = %q, %v; want %q", p[0], got, ok, p[1])
		}
	}
	within := func(s string) bool {
		p, h := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(headers)))
		return p >= h && p < h+uintptr(len(headers))
	}
	for k, v := range c.other {
		if within(k) || within(v) {
			t.Errorf("the cache keeps %q → %q inside the headers it was given", k, v)
		}
	}
	for _, v := range c.byID {
		if within(v) {
			t.Errorf("the cache keeps the prefix %q inside the headers it was given", v)
		}
	}
}

// TestSubjectCacheGetPutEvict: what is put is got back, a referral's and
// an id of another form alike; ids never put are not found, not even ones
// differing from a kept one in one hex digit or in case; the cache holds at
// most its size.
func TestSubjectCacheGetPutEvict(t *testing.T) {
	t.Parallel()
	c := newSubjectCache(3)
	id := "01a251e2-19a6-7208-9df0-7c28cb74ad59"
	c.put(id, "referral.pt."+id)
	c.put("x1", "referral.pt.x1")
	if got, ok := c.get(id); !ok || got != "referral.pt."+id {
		t.Fatalf("get(%s) = %q, %v", id, got, ok)
	}
	if got, ok := c.get("x1"); !ok || got != "referral.pt.x1" {
		t.Fatalf("get(x1) = %q, %v", got, ok)
	}
	for _, other := range []string{"01a251e2-19a6-7208-9df0-7c28cb74ad58", "11a251e2-19a6-7208-9df0-7c28cb74ad59", "01A251E2-19A6-7208-9DF0-7C28CB74AD59", "x2"} {
		if got, ok := c.get(other); ok {
			t.Errorf("get(%s) = %q, found; it was never put", other, got)
		}
	}
	for i := range 10 {
		c.put(fmt.Sprintf("01a251e2-19a6-7208-9df0-7c28cb74a%03x", i), fmt.Sprintf("referral.d%d.x", i))
		c.put(fmt.Sprintf("01a251e2-19a6-7208-9df0-7c28cb74b%03x", i), fmt.Sprintf("referral.d%d.01a251e2-19a6-7208-9df0-7c28cb74b%03x", i%2, i))
	}
	if n := c.len(); n != 3 {
		t.Errorf("the cache holds %d entries; want its size, 3", n)
	}
}

// TestSubjectCacheEntrySize: a full cache of referral subjects costs about
// 40 bytes of live heap an entry, not the 150 of an id and a subject kept
// as strings (65,536 entries were 11.7 MB of a node's live heap in bench
// e2e --open 100000).
func TestSubjectCacheEntrySize(t *testing.T) {
	// Not parallel: it measures the heap.
	const n = 50_000
	ids := make([]string, n)
	subjects := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("01a251e2-19a6-7208-%04x-%012x", i%7, i)
		subjects[i] = "referral." + []string{"pt", "de", "fr"}[i%3] + "." + ids[i]
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newSubjectCache(n)
	for i := range ids {
		c.put(ids[i], subjects[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	runtime.KeepAlive(ids)
	runtime.KeepAlive(subjects)
	if got, _ := c.get(ids[n-1]); got != subjects[n-1] {
		t.Fatalf("get = %q; want %q", got, subjects[n-1])
	}
	t.Logf("%.0f bytes an entry", per)
	if per > 80 {
		t.Errorf("an entry costs %.0f bytes of live heap; want at most 80", per)
	}
}
