package webchat_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/adapters/webchat"
	"github.com/cropshield/cropshield/bot"
)

// TestChoices: a reply's choices reach the page as buttons, and a tapped button (posted as
// "choice" with its "label") reaches the handler as Message.Choice; the page shows the label as
// what the user said. Oversized choice data is cut to Telegram's 64 bytes.
func TestChoices(t *testing.T) {
	e := newEnv(t, webchat.Options{})
	e.run(t)
	c := e.browser(t)
	got := e.send(t, c, upload{text: "hello"})
	chat := e.h.last(t).msg.Chat
	choices := []bot.Choice{{Label: "Corn (maize)", Data: "crop:corn:0123456789ab"}, {Label: "Tomato", Data: "crop:tomato:0123456789ab"}}
	if err := e.a.Send(t.Context(), bot.Reply{Chat: chat, Kind: bot.KindCropQuestion, Text: "Which crop?\n1. Corn (maize)\n2. Tomato", Choices: choices}); err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1].Seq
	entries, err := e.tryMessages(c, last)
	if err != nil {
		t.Fatal(err)
	}
	want := []webchat.Choice{{Label: "Corn (maize)", Data: "crop:corn:0123456789ab"}, {Label: "Tomato", Data: "crop:tomato:0123456789ab"}}
	if len(entries) != 1 || entries[0].Kind != "crop_question" || !slices.Equal(entries[0].Choices, want) {
		t.Fatalf("entries %+v, want the question with its buttons %v", entries, want)
	}

	for _, tc := range []struct {
		name, choice, label string
		want                string
	}{
		{"tap", "crop:corn:0123456789ab", "Corn (maize)", "crop:corn:0123456789ab"},
		{"too long", strings.Repeat("x", 100), "X", strings.Repeat("x", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for k, v := range map[string]string{"choice": tc.choice, "label": tc.label} {
				if err := mw.WriteField(k, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := mw.Close(); err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/send?after=%d", e.srv.URL, entries[0].Seq), &body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			m := e.h.last(t).msg
			if m.Choice != tc.want || m.Text != "" || m.Photo != nil || m.Chat != chat {
				t.Errorf("handler got %+v, want choice %q in the same chat", m, tc.want)
			}
			all, err := e.tryMessages(c, entries[0].Seq)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, en := range all {
				if en.From == "you" && en.Kind == "choice" && en.Text == tc.label {
					found = true
				}
			}
			if !found {
				t.Errorf("the page does not show the tap as %q: %+v", tc.label, all)
			}
		})
	}
}
