package whatsapp

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// TestCropQuestionByNumberOrName: on WhatsApp (no buttons) the crop question is a numbered text;
// the farmer answers with the number or the crop's name (real whatsmeow events), also after a
// restart, and the same photo is answered from the cache within maize, quoting the photo; the
// stored conversation holds the stated crop.
func TestCropQuestionByNumberOrName(t *testing.T) {
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	maize := loc.CropName("sw", "corn") // the +254 farmer is answered in Swahili
	for _, tc := range []struct {
		name   string
		answer func(question string) string
	}{
		{"number", func(q string) string {
			for _, line := range strings.Split(q, "\n") {
				if n, name, ok := strings.Cut(line, ". "); ok && name == maize {
					return n
				}
			}
			t.Fatalf("no numbered %q in the question:\n%s", maize, q)
			return ""
		}},
		{"name", func(string) string { return "MAHINDI" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cropshield.db")
			open := func() (*store.Store, *bot.Handler) {
				st, err := store.Open(context.Background(), path, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				h, err := bot.NewHandler(bot.Config{Threshold: 0.01, Burst: 100, ClearCropShare: 0.66}, testLogger, st,
					testenv.ContractSession(t), loc, bot.NewMetrics(prometheus.NewRegistry()))
				if err != nil {
					t.Fatal(err)
				}
				return st, h
			}
			st, h := open()
			rec := newRecording(h)
			wa := openTestStore(t, "")
			r := startRig(t, wa, rec, testOptions())
			leaf := testenv.LeafJPEG(t, 320, 240, 4)
			photo := imageEvent("P1", farmerPN, farmerPN, farmerLID, photoOf(r.client, "/v/t62/leaf", leaf))
			r.client.emit(photo)
			<-rec.done
			if len(rec.replies) != 1 || rec.replies[0].Kind != bot.KindCropQuestion {
				t.Fatalf("replies %v, want the crop question", rec.replies)
			}
			sent := r.client.sentMessages()
			question := sent[len(sent)-1].msg.GetExtendedTextMessage().GetText()
			if !strings.Contains(question, "1. ") || !strings.Contains(question, "2. ") {
				t.Fatalf("the question is not numbered:\n%s", question)
			}
			// A restart between the question and the answer.
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st, h = open()
			defer st.Close()
			rec = newRecording(h)
			r = startRig(t, wa, rec, testOptions()) // a new connection
			before := len(r.client.sentMessages())
			r.client.emit(messageEvent("A1", farmerPN, farmerPN, farmerLID, &waE2E.Message{Conversation: proto.String(tc.answer(question))}))
			<-rec.done
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			if len(rec.replies) != 1 || rec.replies[0].Kind != bot.KindDiagnosis || rec.replies[0].Image == nil {
				t.Fatalf("answer's replies %v, want the diagnosis with its overlay", rec.replies)
			}
			sent = r.client.sentMessages()[before:]
			if len(sent) == 0 || sent[0].msg.GetImageMessage() == nil {
				t.Fatalf("sent %d messages after the answer, want the overlay first", len(sent))
			}
			im := sent[0].msg.GetImageMessage()
			stated := loc.T("sw", "crop.stated", "crop", maize)
			if !strings.HasPrefix(im.GetCaption(), stated) {
				t.Errorf("caption does not start with %q:\n%s", stated, im.GetCaption())
			}
			if im.GetContextInfo().GetStanzaID() != "P1" {
				t.Errorf("the answer quotes %q, want the photo P1", im.GetContextInfo().GetStanzaID())
			}
			for _, class := range loc.Classes() {
				d, _ := loc.Disease("sw", class)
				if locales.CropOf(class) != "corn" && strings.Contains(im.GetCaption(), d.Crop+": "+d.Name) {
					t.Errorf("the maize top-3 names %s:\n%s", class, im.GetCaption())
				}
			}
			recs, err := st.RecentMessages(context.Background(), "whatsapp", farmerPN.String(), 10)
			if err != nil {
				t.Fatal(err)
			}
			var crops []string
			for _, r := range recs {
				crops = append(crops, fmt.Sprintf("%s/%s/%s", r.Direction, r.Kind, r.Crop))
			}
			if !strings.Contains(strings.Join(crops, " "), "in//corn out/diagnosis/corn") {
				t.Errorf("conversation %v, want the answer and the diagnosis with crop corn", crops)
			}
		})
	}
}

// TestCropQuestionInGroup: in a group the farmer answers the question by replying to it (quoting
// the bot's message) with the number; a number that quotes nothing is group chatter, not handed
// over.
func TestCropQuestionInGroup(t *testing.T) {
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "cropshield.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := bot.NewHandler(bot.Config{Threshold: 0.01, Burst: 100, ClearCropShare: 0.66}, testLogger, st,
		testenv.ContractSession(t), loc, bot.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecording(h)
	wa := openTestStore(t, "")
	r := startRig(t, wa, rec, testOptions())
	img := photoOf(r.client, "/v/t62/g-leaf", testenv.LeafJPEG(t, 320, 240, 4))
	img.Caption = proto.String("/diagnose")
	r.client.emit(messageEvent("G1", groupJID, farmerPN, farmerLID, &waE2E.Message{ImageMessage: img}))
	<-rec.done
	if len(rec.replies) != 1 || rec.replies[0].Kind != bot.KindCropQuestion {
		t.Fatalf("replies %v, want the crop question", rec.replies)
	}
	// "1" without quoting: chatter, not recorded for the bot.
	before := inboxRows(t, wa)
	r.client.emit(messageEvent("G2", groupJID, farmerPN, farmerLID, &waE2E.Message{Conversation: proto.String("1")}))
	if n := inboxRows(t, wa); n != before {
		t.Fatalf("a number quoting nothing was handed over (%d inbox rows, was %d)", n, before)
	}
	// "1" quoting the bot's question: the answer.
	quote := &waE2E.ContextInfo{StanzaID: proto.String("BOT1"), Participant: proto.String(botPN.String()),
		QuotedMessage: &waE2E.Message{Conversation: proto.String("which crop?")}}
	r.client.emit(messageEvent("G3", groupJID, farmerPN, farmerLID,
		&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("1"), ContextInfo: quote}}))
	<-rec.done
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if len(rec.replies) != 2 || rec.replies[1].Kind != bot.KindDiagnosis || rec.replies[1].ReplyTo != "G1" {
		t.Fatalf("replies %v, want the diagnosis quoting the photo G1", rec.replies)
	}
}
