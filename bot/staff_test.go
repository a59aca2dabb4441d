package bot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// TestHistoryShowsCorrection: once support staff set a photo's class, /history shows the farmer
// that label, marked as checked, instead of the model's.
func TestHistoryShowsCorrection(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	ctx := t.Context()
	leaf := testenv.LeafJPEG(t, 640, 480, 1)
	f.photo("c1", bytesPhoto(leaf))
	again := f.photo("c1", bytesPhoto(leaf))
	if again.Kind != bot.KindDiagnosis {
		t.Fatalf("second reply %v", again)
	}
	a, err := f.store.StoredAnalysis(ctx, hashOf(leaf))
	if err != nil {
		t.Fatal(err)
	}
	right := "apple__scab"
	if a.Top[0].Class == right {
		right = "corn__common_rust"
	}
	c := store.Correction{PhotoHash: hashOf(leaf), Class: right, ModelClass: a.Top[0].Class, By: "alice", At: time.Now()}
	if err := f.store.PutCorrection(ctx, c, "webchat", "c1"); err != nil {
		t.Fatal(err)
	}
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	d, err := loc.Disease("en", right)
	if err != nil {
		t.Fatal(err)
	}
	h := f.send(private("c1"), bot.Sender{ID: "u-c1"}, "/history", nil)
	if len(h) != 1 || !strings.Contains(h[0].Text, d.Name+" (checked by our support team)") {
		t.Fatalf("/history: %v", h)
	}

	// The log tells the dashboard each answer's kind, language and whether it came from the cache.
	recs, err := f.store.RecentMessages(ctx, "webchat", "c1", 10)
	if err != nil {
		t.Fatal(err)
	}
	var outs []store.Record
	for _, r := range recs {
		if r.Direction == store.Outbound {
			outs = append(outs, r)
		}
	}
	if len(outs) != 3 || outs[0].Kind != string(bot.KindDiagnosis) || outs[0].Lang != "en" || outs[0].CacheHit || !outs[1].CacheHit || outs[2].Kind != string(bot.KindCommand) {
		t.Errorf("outbound records %+v", outs)
	}
}

func TestSendStaffReply(t *testing.T) {
	chat := bot.ChatRef{Platform: bot.WebChat, ID: "c1", Kind: bot.Private}
	tests := []struct {
		name    string
		text    string
		fail    error
		wantErr error
		logged  string // the logged record's Error, "-" for nothing logged
	}{
		{name: "delivered", text: "  Please spray copper today.  "},
		{name: "not delivered", text: "hello", fail: errors.New("platform down"), wantErr: bot.ErrNotDelivered, logged: "not delivered"},
		{name: "empty", text: "   ", wantErr: bot.ErrEmptyReply, logged: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, t.TempDir()+"/db")
			out := &outbox{fail: tt.fail}
			err := bot.SendStaffReply(context.Background(), st, out, chat, "alice", tt.text, time.Now())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			recs, err := st.RecentMessages(t.Context(), "webchat", "c1", 10)
			if err != nil {
				t.Fatal(err)
			}
			if tt.logged == "-" {
				if len(recs) != 0 {
					t.Errorf("logged %+v", recs)
				}
				return
			}
			if len(recs) != 1 || recs[0].Staff != "alice" || recs[0].Kind != string(bot.KindStaff) || recs[0].Direction != store.Outbound ||
				recs[0].Error != tt.logged || recs[0].Text != strings.TrimSpace(tt.text) {
				t.Errorf("logged %+v", recs)
			}
			if tt.fail == nil {
				if sent := out.take(); len(sent) != 1 || sent[0].Kind != bot.KindStaff || sent[0].Chat != chat {
					t.Errorf("sent %v", sent)
				}
			}
		})
	}
}
