package dashboard

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/store"
)

// TestStatedCropShown: the crop a farmer stated (by /crop, a caption or answering the bot's
// question) shows in the conversation's thread, on the farmer's message and on the bot's answer.
func TestStatedCropShown(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	now := e.clock.now().Add(time.Minute)
	if _, err := e.st.TouchChat(ctx, store.Chat{Platform: "whatsapp", ID: "254700000009@s.whatsapp.net", Kind: "private"}, now); err != nil {
		t.Fatal(err)
	}
	recs := []store.Record{
		{Time: now, Platform: "whatsapp", ChatID: "254700000009@s.whatsapp.net", Direction: store.Inbound, SenderID: "254700000009@s.whatsapp.net",
			SenderName: "Juma", MessageID: "A1", Text: "1", Lang: "sw", Crop: "corn"},
		{Time: now.Add(time.Second), Platform: "whatsapp", ChatID: "254700000009@s.whatsapp.net", Direction: store.Outbound,
			Text: "Zao: Mahindi (kama ulivyoniambia)", Kind: "diagnosis", Lang: "sw", Crop: "corn", ReplyTo: "P1"},
		{Time: now.Add(2 * time.Second), Platform: "whatsapp", ChatID: "254700000009@s.whatsapp.net", Direction: store.Inbound, SenderID: "254700000009@s.whatsapp.net",
			SenderName: "Juma", MessageID: "A2", Text: "/crop any", Lang: "sw", Crop: "any"},
	}
	for _, r := range recs {
		if _, err := e.st.AppendMessage(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client()
	e.login(c, "alice", agentPass)
	code, body, _ := e.page(c, "/conversations/"+conversationID("whatsapp", "254700000009@s.whatsapp.net"))
	if code != http.StatusOK {
		t.Fatalf("thread: %d", code)
	}
	for _, want := range []struct {
		text  string
		times int
	}{
		{`<span class="crop">crop stated: Corn (maize)</span>`, 2},
		{`<span class="crop">crop stated: any (guessed from each photo)</span>`, 1},
	} {
		if n := strings.Count(body, want.text); n != want.times {
			t.Errorf("thread shows %q %d times, want %d", want.text, n, want.times)
		}
	}
}
