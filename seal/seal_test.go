package seal_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"name":"test person","phone":"+351 000 000 000"}`)
	env, err := seal.Seal(k.Recipient, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(env, events.AgeArmorHeader) {
		t.Fatalf("envelope does not start with the armor header: %.40q", env)
	}
	if strings.Contains(env, "test person") {
		t.Fatal("plaintext visible in envelope")
	}
	got, err := seal.Open(k.Identity, env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("opened %q, want %q", got, plain)
	}
	id, err := seal.ParseIdentityFile(k.File())
	if err != nil || id != k.Identity {
		t.Fatalf("ParseIdentityFile = %q, %v", id, err)
	}
}

func TestOpenByThirdPartyFails(t *testing.T) {
	t.Parallel()
	owner, _ := seal.GenerateKey()
	other, _ := seal.GenerateKey()
	env, err := seal.Seal(owner.Recipient, []byte("case notes"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Open(other.Identity, env); !errors.Is(err, seal.ErrNotForYou) {
		t.Fatalf("third party Open err = %v, want ErrNotForYou", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	k, _ := seal.GenerateKey()
	if _, err := seal.Seal("age1notakey", []byte("x")); !errors.Is(err, seal.ErrRecipient) {
		t.Errorf("bad recipient: %v", err)
	}
	if _, err := seal.Seal(k.Recipient, make([]byte, seal.MaxPlaintext+1)); !errors.Is(err, seal.ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := seal.Open("AGE-SECRET-KEY-1BAD", "x"); !errors.Is(err, seal.ErrIdentity) {
		t.Errorf("bad identity: %v", err)
	}
	if _, err := seal.Open(k.Identity, "not an envelope"); !errors.Is(err, seal.ErrMalformed) {
		t.Errorf("malformed: %v", err)
	}
	if _, err := seal.ParseIdentityFile([]byte("# only a comment\n")); !errors.Is(err, seal.ErrIdentity) {
		t.Errorf("empty key file: %v", err)
	}
}
