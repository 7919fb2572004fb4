package natsjs

import (
	"strings"
	"testing"
	"unsafe"
)

// TestSubjectCacheKeepsCopies: the cache keeps its own copies of a
// referral's id and subject, not the strings it is given, which may share
// the memory of a whole message's headers and would keep them live.
func TestSubjectCacheKeepsCopies(t *testing.T) {
	t.Parallel()
	headers := "Ce-Subject: 01a251e2-19a6-7208-9df0-7c28cb74ad59\r\nNats-Msg-Id: ref.pt.01a251e2-19a6-7208-9df0-7c28cb74ad59\r\n" + strings.Repeat("X", 1024)
	id := headers[len("Ce-Subject: "):strings.Index(headers, "\r\n")]
	subject := headers[strings.Index(headers, "ref."):strings.LastIndex(headers, "\r\n")]
	c := newSubjectCache(4)
	c.put(id, subject)
	got, ok := c.get(id)
	if !ok || got != subject {
		t.Fatalf("get(%q) = %q, %v; want %q", id, got, ok, subject)
	}
	within := func(s string) bool {
		p, h := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(headers)))
		return p >= h && p < h+uintptr(len(headers))
	}
	for k, v := range c.byID {
		if within(k) || within(v) {
			t.Errorf("the cache keeps %q → %q inside the headers it was given", k, v)
		}
	}
}
