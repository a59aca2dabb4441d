package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/store"
)

// TestUnknownCropShown: a leaf the model took for a crop it does not know is listed, shown and
// counted as such, without a heat-map or a diagnosis to confirm; staff may still set its class.
func TestUnknownCropShown(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	photo := []byte("\xff\xd8\xff\xe0 fake jpeg of a cassava leaf")
	sum := sha256.Sum256(photo)
	hash := hex.EncodeToString(sum[:])
	now := e.clock.now().Add(time.Minute)
	if _, err := e.st.TouchChat(ctx, store.Chat{Platform: "webchat", ID: "web-2", Kind: "private"}, now); err != nil {
		t.Fatal(err)
	}
	in := store.Record{Time: now, Platform: "webchat", ChatID: "web-2", Direction: store.Inbound, SenderID: "web-2",
		SenderName: "Baraka", MessageID: "m1", Lang: "sw"}
	turn, _, err := e.st.BeginTurn(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Seq, in.PhotoHash = turn.Seq, hash
	a := store.Analysis{PhotoHash: hash, ModelVersion: "v1", Overlay: []byte("\xff\xd8 overlay"), CreatedAt: now,
		Top: []store.Candidate{{Class: "potato__late_blight", Prob: 0.7}}, UnknownCrop: 0.91, OtherCrop: true}
	if err := e.st.PutAnalysis(ctx, a, photo, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.UpdateMessage(ctx, in); err != nil {
		t.Fatal(err)
	}
	out := store.Record{Time: now.Add(time.Second), Platform: "webchat", ChatID: "web-2", Direction: store.Outbound,
		Text: "Jani hili linaonekana kuwa la zao nisilolijua", PhotoHash: hash, Kind: "unknown_crop", Lang: "sw"}
	if err := e.st.ReplySent(ctx, "m1", 0, out, false); err != nil {
		t.Fatal(err)
	}
	conv := conversationID("webchat", "web-2")

	c := e.client()
	token := e.login(c, "alice", agentPass)
	pages := []struct {
		path          string
		want, wantNot []string
	}{
		{"/conversations/" + conv, []string{"Refused as a leaf of a crop the model does not know (unknown-crop score 91%)", `src="/photos/` + hash + `/image"`, "unknown_crop"},
			[]string{`src="/photos/` + hash + `/overlay"`}},
		{"/photos/" + hash + "?c=" + conv, []string{"unknown-crop score 91%", `id="correct"`}, []string{`id="confirm"`, "/overlay"}},
		// One unsure answer (the seeded chat) and one unknown crop.
		{"/stats?days=7", []string{"<th>Unknown crop</th>", "<strong>50%</strong> a crop the model does not know"}, nil},
	}
	for _, p := range pages {
		code, body, _ := e.page(c, p.path)
		if code != http.StatusOK {
			t.Errorf("%s: %d", p.path, code)
		}
		for _, want := range p.want {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", p.path, want)
			}
		}
		for _, not := range p.wantNot {
			if strings.Contains(body, not) {
				t.Errorf("%s holds %q", p.path, not)
			}
		}
	}
	_, body, _ := e.page(c, "/conversations")
	if row := rowOf(body, conv); !strings.Contains(row, "unknown crop") || !strings.Contains(row, "needs attention") || strings.Contains(row, "Potato") {
		t.Errorf("list row %q, want the verdict, not the model's class", row)
	}
	// Nothing to confirm; a correction is a diagnosis again.
	if resp := e.post(c, "/photos/"+hash+"/correction", url.Values{"csrf": {token}, "action": {"confirm"}, "c": {conv}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("confirming an unknown crop: %s", resp.Status)
	}
	if resp := e.post(c, "/photos/"+hash+"/correction", url.Values{"csrf": {token}, "action": {"correct"}, "class": {"potato__late_blight"}, "c": {conv}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("correction: %s", resp.Status)
	}
	if corr, err := e.st.GetCorrection(ctx, hash); err != nil || corr.Confirmed {
		t.Errorf("the staff's class of an unknown-crop leaf is a correction, not a confirmation: %+v %v", corr, err)
	}
	_, body, _ = e.page(c, "/conversations")
	if row := rowOf(body, conv); strings.Contains(row, "unknown crop") || !strings.Contains(row, "Potato: Late blight") {
		t.Errorf("list row after the correction %q, want the staff's class", row)
	}
}

// rowOf is the conversations list's table row linking to conv.
func rowOf(body, conv string) string {
	i := strings.Index(body, `href="/conversations/`+conv+`"`)
	if i < 0 {
		return ""
	}
	row, _, _ := strings.Cut(body[i:], "</tr>")
	return row
}
