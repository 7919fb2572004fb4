package email

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{7}, LinkKeySize)

func testLink(now time.Time) Link {
	return Link{Action: ActionAccept, Org: "pt.apav", Referral: "0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f",
		Placement: "p1", Attempt: 2, Expires: now.Add(time.Hour).Truncate(time.Second).UTC()}
}

func TestLinkRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s, err := NewLinks(testKey, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	want := testLink(now)
	tok, err := s.Sign(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(tok)
	if err != nil || got != want {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, want)
	}
}

// TestLinkRefusals: every byte changed, another key, an expired link and
// a field no signer would sign are all refused.
func TestLinkRefusals(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	clock := now
	s, _ := NewLinks(testKey, func() time.Time { return clock })
	tok, err := s.Sign(testLink(now))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(tok) {
		b := []byte(tok)
		b[i] ^= 0x01
		if _, err := s.Verify(string(b)); err == nil {
			t.Fatalf("token with byte %d changed was accepted", i)
		}
	}
	other, _ := NewLinks(bytes.Repeat([]byte{8}, LinkKeySize), func() time.Time { return now })
	if _, err := other.Verify(tok); !errors.Is(err, ErrLinkSignature) {
		t.Fatalf("another key: %v, want ErrLinkSignature", err)
	}
	clock = now.Add(time.Hour)
	if l, err := s.Verify(tok); !errors.Is(err, ErrLinkExpired) || l.Org != "pt.apav" {
		t.Fatalf("at the deadline: %+v, %v; want ErrLinkExpired with the link", l, err)
	}
	for _, bad := range []Link{
		{Action: "erase", Org: "pt.apav", Referral: testLink(now).Referral, Placement: "p1", Attempt: 1, Expires: now},
		{Action: ActionAccept, Org: "pt.*", Referral: testLink(now).Referral, Placement: "p1", Attempt: 1, Expires: now},
		{Action: ActionAccept, Org: "pt.apav", Referral: "x", Placement: "p1", Attempt: 1, Expires: now},
	} {
		if _, err := s.Sign(bad); !errors.Is(err, ErrLinkMalformed) {
			t.Errorf("Sign(%+v) = %v, want ErrLinkMalformed", bad, err)
		}
	}
	if _, err := NewLinks(testKey[:8], nil); err == nil {
		t.Error("a short key was accepted")
	}
}

// FuzzLinkVerify: the decoder never panics, accepts nothing longer than
// LinkMaxLen, and whatever it accepts signs back to the same token.
func FuzzLinkVerify(f *testing.F) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s, _ := NewLinks(testKey, func() time.Time { return now })
	tok, _ := s.Sign(testLink(now))
	f.Add(tok)
	f.Add("")
	f.Add(".")
	f.Add("MXxhY2NlcHR8cHQuYXBhdnx4fHAxfDF8MQ.AAAAAAAAAAAAAAAAAAAAAA")
	f.Add(tok + tok)
	f.Fuzz(func(t *testing.T, in string) {
		l, err := s.Verify(in)
		if err != nil {
			return
		}
		if len(in) > LinkMaxLen {
			t.Fatalf("accepted a token of %d bytes", len(in))
		}
		again, err := s.Sign(l)
		if err != nil || again != in {
			t.Fatalf("accepted %q, which signs back as %q (%v)", in, again, err)
		}
	})
}
