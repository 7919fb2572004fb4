package email_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// TestOfferAcceptedByLink: the offer arrives in the offered
// organisation's language; its accept link shows the offer and changes
// nothing until confirmed; the confirmation accepts, and the referrer
// is told in its own language. The same link again, an expired link, a
// changed link and a link for another organisation are refused with a
// clear page and change nothing.
func TestOfferAcceptedByLink(t *testing.T) {
	t.Parallel()
	b := setup(t, email.Config{})
	in := b.start("a")
	id := b.refer(needsOffered...)

	offer := b.mail("pt.a1", "Nouvelle proposition d'orientation")
	for _, want := range []string{"Soutien émotionnel", "Urgent", "Org pt.ref", id, "Accepter", "Refuser"} {
		if !strings.Contains(offer.Text, want) || !strings.Contains(offer.HTML, want) {
			t.Errorf("the offer lacks %q:\n%s", want, offer.Text)
		}
	}
	if got := offer.MessageID; !strings.HasSuffix(got, ".offer.pt.a1@node.test") {
		t.Errorf("Message-ID %q, want <event id>.offer.pt.a1@node.test", got)
	}
	accept, decline := links(t, offer)

	// Opening the link (as a mail scanner would) changes nothing.
	for range 2 {
		code, h, body := page(t, http.MethodGet, accept, "")
		if code != http.StatusOK || !strings.Contains(body, "Confirmer l&#39;acceptation") {
			t.Fatalf("GET accept: %d\n%s", code, body)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
	}
	if st := b.state(id); st.Placements[0].Status != referral.PlacementOffered {
		t.Fatalf("after GETs the placement is %s", st.Placements[0].Status)
	}

	// Refused: a changed byte, an expired link, another organisation's.
	changed := []byte(accept)
	changed[len(changed)-30] ^= 0x02
	st := b.state(id)
	pl := st.Placements[0]
	expired, _ := in.a.Links().Sign(email.Link{Action: email.ActionAccept, Org: "pt.a1", Referral: id, Placement: pl.ID,
		Attempt: pl.Offer.Attempt, Expires: time.Now().Add(-time.Minute)})
	other, _ := in.a.Links().Sign(email.Link{Action: email.ActionAccept, Org: "pt.a2", Referral: id, Placement: pl.ID,
		Attempt: pl.Offer.Attempt, Expires: pl.Offer.Deadline})
	base := accept[:strings.LastIndexByte(accept, '/')+1]
	for _, c := range []struct {
		name, link string
		code       int
		says       string
	}{
		{"changed", string(changed), http.StatusBadRequest, "This link is not valid"},
		{"expired", base + expired, http.StatusGone, "a expiré"},
		{"another organisation", base + other, http.StatusConflict, "Dit aanbod staat niet meer open"},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			code, _, body := page(t, method, c.link, "")
			if code != c.code || !strings.Contains(body, c.says) {
				t.Errorf("%s link, %s: %d, want %d saying %q\n%s", c.name, method, code, c.code, c.says, body)
			}
		}
	}
	if st := b.state(id); st.Placements[0].Status != referral.PlacementOffered {
		t.Fatalf("after refused links the placement is %s", st.Placements[0].Status)
	}

	// Confirm.
	code, _, body := page(t, http.MethodPost, accept, "")
	if code != http.StatusOK || !strings.Contains(body, "Vous avez accepté") {
		t.Fatalf("POST accept: %d\n%s", code, body)
	}
	if st := b.state(id); st.Placements[0].Status != referral.PlacementAccepted || st.Placements[0].AcceptedBy != "pt.a1" {
		t.Fatalf("after the confirmation: %+v", st.Placements[0])
	}
	told := b.mail("pt.ref", "O seu encaminhamento foi aceite por Org pt.a1")
	if !strings.Contains(told.Text, "Apoio emocional") {
		t.Errorf("the referrer's message lacks the needs:\n%s", told.Text)
	}

	// The same link, and the other link of the same offer, are spent.
	for _, l := range []string{accept, decline} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			code, _, body := page(t, method, l, "reason=capacity")
			if code != http.StatusConflict || !strings.Contains(body, "déjà été utilisé") {
				t.Errorf("%s of a spent link: %d\n%s", method, code, body)
			}
		}
	}
	if n := len(b.state(id).SeenIDs); n != len(st.SeenIDs)+1 {
		t.Errorf("the log grew by %d events, want 1 (the acceptance)", n-len(st.SeenIDs))
	}
}

// TestDeclineByLink: the decline page asks for a coded reason; a reason
// outside the list is refused; the referrer learns the reason, and the
// next candidate gets the offer in Dutch.
func TestDeclineByLink(t *testing.T) {
	t.Parallel()
	b := setup(t, email.Config{})
	b.start("a")
	id := b.refer(needsOffered...)
	_, decline := links(t, b.mail("pt.a1", "Nouvelle proposition"))
	code, _, body := page(t, http.MethodGet, decline, "")
	if code != http.StatusOK || !strings.Contains(body, `<option value="capacity">Capacité insuffisante</option>`) {
		t.Fatalf("GET decline: %d\n%s", code, body)
	}
	if code, _, _ := page(t, http.MethodPost, decline, "reason=too+busy"); code != http.StatusBadRequest {
		t.Fatalf("a free-text reason: %d, want 400", code)
	}
	if code, _, body := page(t, http.MethodPost, decline, "reason=capacity"); code != http.StatusOK || !strings.Contains(body, "Vous avez refusé") {
		t.Fatalf("POST decline: %d\n%s", code, body)
	}
	told := b.mail("pt.ref", "O seu encaminhamento foi recusado por Org pt.a1")
	if !strings.Contains(told.Text, "Sem capacidade") {
		t.Errorf("the referrer's message lacks the reason:\n%s", told.Text)
	}
	b.mail("pt.a2", "Nieuw verwijzingsaanbod")
	if st := b.state(id); st.Placements[0].Offer.Organisation != "pt.a2" {
		t.Fatalf("next offer to %s", st.Placements[0].Offer.Organisation)
	}
	_ = events.TypeReferralDeclined
}
