package whatsapp

// These tests run the adapter with the real bot.Handler, the real bbolt store and the contract
// model: the exactly-once contract is the handler's and the adapter's together.

import (
	"bytes"
	"context"
	"image/jpeg"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// realBot is the real handler on a bbolt file; reopen it to simulate a restart.
type realBot struct {
	path    string
	st      *store.Store
	handler *bot.Handler
	metrics *bot.Metrics
}

func openBot(t testing.TB, path string) *realBot {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	b := &realBot{path: path, st: st, metrics: bot.NewMetrics(prometheus.NewRegistry())}
	// ClearCropShare -1: the contract model is unsure between crops on synthetic leaves; these
	// tests want its diagnosis (the crop question has its own test).
	b.handler, err = bot.NewHandler(bot.Config{Threshold: 0.01, Burst: 100, ClearCropShare: -1}, testLogger, st, testenv.ContractSession(t), loc, b.metrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.close() })
	return b
}

func (b *realBot) close() error {
	if b.st == nil {
		return nil
	}
	err := b.st.Close()
	b.st = nil
	return err
}

// recording wraps a handler: it keeps the bot.Reply values the handler sends and reports each
// Handle that returned.
type recording struct {
	h       bot.MessageHandler
	mu      sync.Mutex
	replies []bot.Reply
	done    chan string
}

func newRecording(h bot.MessageHandler) *recording {
	return &recording{h: h, done: make(chan string, 16)}
}

func (r *recording) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	err := r.h.Handle(ctx, m, responderFunc(func(ctx context.Context, rep bot.Reply) error {
		r.mu.Lock()
		r.replies = append(r.replies, rep)
		r.mu.Unlock()
		return out.Send(ctx, rep)
	}))
	r.done <- m.ID
	return err
}

type responderFunc func(ctx context.Context, r bot.Reply) error

func (f responderFunc) Send(ctx context.Context, r bot.Reply) error { return f(ctx, r) }

// TestRealHandlerPhoto: a farmer's photo in a private chat gets the real diagnosis as WhatsApp
// messages: the overlay with the caption, then the details, quoting the photo.
func TestRealHandlerPhoto(t *testing.T) {
	b := openBot(t, filepath.Join(t.TempDir(), "cropshield.db"))
	rec := newRecording(b.handler)
	r := startRig(t, openTestStore(t, ""), rec, testOptions())
	leaf := testenv.LeafJPEG(t, 320, 240, 1)
	evt := imageEvent("3EB0B1", farmerPN, farmerPN, farmerLID, photoOf(r.client, "/v/t62/leaf", leaf))
	r.client.emit(evt)
	<-rec.done
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if len(rec.replies) != 1 || rec.replies[0].Kind != bot.KindDiagnosis || rec.replies[0].Image == nil {
		t.Fatalf("replies %v", rec.replies)
	}
	rep := rec.replies[0]
	s := r.client.sentMessages()
	if len(s) != 2 {
		t.Fatalf("sent %d messages, want the image and the details", len(s))
	}
	im, txt := s[0].msg.GetImageMessage(), s[1].msg.GetExtendedTextMessage()
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(rep.Image))
	if err != nil {
		t.Fatal(err)
	}
	// The farmer's +254 number chose Swahili.
	if im.GetCaption() != rep.Caption || !strings.Contains(im.GetCaption(), "Magonjwa yanayowezekana zaidi:") ||
		int(im.GetWidth()) != cfg.Width || int(im.GetHeight()) != cfg.Height || im.GetFileLength() != uint64(len(rep.Image)) ||
		!bytes.Equal(r.client.uploads[0], rep.Image) || im.GetMimetype() != "image/jpeg" || len(im.GetJPEGThumbnail()) == 0 {
		t.Errorf("image message %v for reply %v", im, rep)
	}
	if txt.GetText() != rep.Text || !strings.Contains(txt.GetText(), "La kufanya:") {
		t.Errorf("text %q, want %q", txt.GetText(), rep.Text)
	}
	for _, ci := range []*waE2E.ContextInfo{im.GetContextInfo(), txt.GetContextInfo()} {
		if ci.GetStanzaID() != "3EB0B1" || ci.GetParticipant() != farmerPN.String() || !proto.Equal(ci.GetQuotedMessage(), evt.Message) {
			t.Errorf("quote %v", ci)
		}
	}
	// The conversation log is keyed by the canonical ids.
	recs, err := b.st.RecentMessages(context.Background(), "whatsapp", farmerPN.String(), 10)
	if err != nil || len(recs) != 2 || recs[0].SenderID != farmerPN.String() || recs[0].MessageID != "3EB0B1" {
		t.Fatalf("log %+v %v", recs, err)
	}
}

// TestKnownPhotoIsNotDownloaded: the same photo (WhatsApp file hash) from another chat is
// answered from the analysis cache without a download.
func TestKnownPhotoIsNotDownloaded(t *testing.T) {
	b := openBot(t, filepath.Join(t.TempDir(), "cropshield.db"))
	rec := newRecording(b.handler)
	r := startRig(t, openTestStore(t, ""), rec, testOptions())
	leaf := testenv.LeafJPEG(t, 320, 240, 2)
	r.client.emit(imageEvent("K1", farmerPN, farmerPN, types.EmptyJID, photoOf(r.client, "/v/t62/k1", leaf)))
	<-rec.done
	// Forwarded into a group with a mention: a new direct path, the same file hash.
	img := photoOf(r.client, "/v/t62/k2", leaf)
	img.ContextInfo = &waE2E.ContextInfo{MentionedJID: []string{botPN.String()}, IsForwarded: proto.Bool(true)}
	r.client.emit(imageEvent("K2", groupJID, otherPN, types.EmptyJID, img))
	<-rec.done
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if d := r.client.downloaded(); len(d) != 1 || d[0] != "/v/t62/k1" {
		t.Errorf("downloads %v, want only the first", d)
	}
	if len(rec.replies) != 2 || rec.replies[1].Kind != bot.KindDiagnosis || rec.replies[0].Caption != rec.replies[1].Caption {
		t.Errorf("replies %v", rec.replies)
	}
}

// TestRealHandlerAnswersOnce: a message delivered again, while pending or after it was
// answered, gets no second reply.
func TestRealHandlerAnswersOnce(t *testing.T) {
	b := openBot(t, filepath.Join(t.TempDir(), "cropshield.db"))
	rec := newRecording(b.handler)
	st := openTestStore(t, "")
	r := startRig(t, st, rec, testOptions())
	evt := imageEvent("T1", farmerPN, farmerPN, types.EmptyJID, photoOf(r.client, "/v/t62/t1", testenv.LeafJPEG(t, 320, 240, 3)))
	r.client.emit(evt)
	r.client.emit(evt) // redelivered at once
	<-rec.done
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// Redelivered much later, after the inbox forgot it: the handler knows it was answered.
	if _, err := st.db.Exec(`DELETE FROM cropshield_wa_inbox`); err != nil {
		t.Fatal(err)
	}
	c2 := newFakeClient()
	c2.files = r.client.files
	r2 := startRigOn(t, c2, st, rec, testOptions())
	r2.client.emit(evt)
	<-rec.done
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(r.client.sentMessages()) + len(r2.client.sentMessages()); n != 2 {
		t.Errorf("%d messages sent, want one reply (image and details)", n)
	}
	if len(rec.replies) != 1 {
		t.Errorf("handler replies %v", rec.replies)
	}
}

// crashing simulates a process that dies while a message is being handled: the inner handler's
// context ends at the chosen moment (the handler stops there as it would on a kill), then the
// adapter is stopped with its drain timeout already over, so the message stays in the inbox.
type crashing struct {
	inner  bot.MessageHandler // nil: die before the handler saw the message
	cancel chan context.CancelFunc
	died   chan struct{}
}

func (c *crashing) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	if c.inner == nil {
		close(c.died)
		<-ctx.Done()
		return ctx.Err()
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.cancel <- cancel
	err := c.inner.Handle(hctx, m, out)
	<-ctx.Done() // the process is gone: the adapter never learns the outcome
	return err
}

func TestRestartInTheMiddleAnswersOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during bool // crash during the handling (after the reply went out), else before it began
	}{
		{"before the handler saw the message", false},
		{"after the reply went out, before the adapter marked it answered", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			waPath := filepath.Join(dir, "whatsapp.db")
			b := openBot(t, filepath.Join(dir, "cropshield.db"))
			st := openTestStore(t, waPath)
			c := &crashing{cancel: make(chan context.CancelFunc, 1), died: make(chan struct{})}
			if tc.during {
				c.inner = b.handler
			}
			r := startRig(t, st, c, testOptions())
			over, cancel := context.WithCancel(context.Background())
			cancel()
			r.drain = over // the drain is over at once: the message being handled is interrupted
			leaf := testenv.LeafJPEG(t, 320, 240, 4)
			evt := imageEvent("R1", farmerPN, farmerPN, types.EmptyJID, photoOf(r.client, "/v/t62/r1", leaf))
			if tc.during {
				r.client.onSend = func(n int) {
					if n == 1 { // the overlay reached WhatsApp; the process dies now
						(<-c.cancel)()
						close(c.died)
					}
				}
			}
			r.client.emit(evt)
			<-c.died
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			if n := pendingIn(t, st); n != 1 {
				t.Fatalf("pending after the crash: %d", n)
			}
			first := len(r.client.sentMessages())
			if tc.during {
				// The handler's own record: the reply went out, the turn was not finished.
				tr, existed, err := b.st.BeginTurn(context.Background(), store.Record{Time: time.Unix(1700000000, 0), Platform: "whatsapp",
					ChatID: farmerPN.String(), Direction: store.Inbound, SenderID: farmerPN.String(), MessageID: "R1"})
				if err != nil || !existed || tr.Sent != 1 || tr.Done {
					t.Fatalf("turn after the crash %+v existed %v: %v", tr, existed, err)
				}
			}

			// Restart: a new handler on the reopened bbolt file, a new adapter on the same
			// WhatsApp database. WhatsApp also delivers the message again (it may not have had
			// the receipt).
			if err := b.close(); err != nil {
				t.Fatal(err)
			}
			b2 := openBot(t, b.path)
			rec := newRecording(b2.handler)
			c2 := newFakeClient()
			c2.files = r.client.files
			r2 := startRigOn(t, c2, st, rec, testOptions())
			r2.client.emit(evt)
			<-rec.done
			// The delivery again is one hand-in with the copy taken back from the inbox if it
			// came while that copy was in the intake, a second one (answered by nobody) if it
			// came after: timing decides. Wait until the intake holds nothing, so that both ran.
			deadline := time.Now().Add(2 * time.Minute) // only turns a hang into a readable failure
			for pendingIn(t, st) != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the message was not answered after the restart")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := r2.stop(); err != nil {
				t.Fatal(err)
			}
			var images, texts int
			for _, s := range append(r.client.sentMessages(), r2.client.sentMessages()...) {
				switch {
				case s.msg.GetImageMessage() != nil:
					images++
				case s.msg.GetExtendedTextMessage() != nil:
					texts++
				}
			}
			if images != 1 || texts != 1 {
				t.Errorf("sent %d images and %d texts over both runs (%d before the crash), want the reply once", images, texts, first)
			}
			if n := pendingIn(t, st); n != 0 {
				t.Errorf("pending after the restart: %d", n)
			}
			if n := len(rec.done); n > 1 {
				t.Errorf("handed in %d times after the restart, want at most 2 (taken back, delivered again)", 1+n)
			}
		})
	}
}

// TestLIDFarmerMovesToPhoneNumber: a farmer first seen only by LID chooses Swahili; a later
// message carries their phone number too, a +234 number whose hint would be Hausa. Before that
// message is handed over, the farmer (and their private chat) move to the phone-number id: the
// reply to it is in Swahili, and the dashboard's summary of the LID conversation points to the
// phone-number one. In a group the group keeps its id; only the farmer moves.
func TestLIDFarmerMovesToPhoneNumber(t *testing.T) {
	lid := types.NewJID("555555555555555", types.HiddenUserServer)
	pn := types.NewJID("2348031234567", types.DefaultUserServer)
	text := func(id string, chat, sender, alt types.JID, s string) *events.Message {
		return messageEvent(id, chat, sender, alt, &waE2E.Message{Conversation: proto.String(s)})
	}
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	if loc.T("sw", "help") == loc.T("ha", "help") {
		t.Fatal("the help texts in Swahili and Hausa are the same: the test cannot tell them apart")
	}
	for _, tc := range []struct {
		name string
		chat types.JID // where the message that reveals the phone number is written
		want string    // the conversation it is logged in
	}{
		{"private chat", lid, pn.String()},
		{"group", groupJID, groupJID.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			b := openBot(t, filepath.Join(t.TempDir(), "cropshield.db"))
			rec := newRecording(b.handler)
			opts := testOptions()
			opts.Users = bot.NewMoves(b.st)
			r := startRig(t, openTestStore(t, ""), rec, opts)
			r.client.emit(text("L1", lid, lid, types.EmptyJID, "/language sw"))
			<-rec.done
			if u, err := b.st.GetUser(ctx, "whatsapp", lid.String()); err != nil || u.Language != "sw" {
				t.Fatalf("user under the LID %+v, %v: want language sw", u, err)
			}
			r.client.emit(text("L2", tc.chat, lid, pn, "/help"))
			<-rec.done
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}

			rec.mu.Lock()
			last := rec.replies[len(rec.replies)-1]
			rec.mu.Unlock()
			if last.ReplyTo != "L2" || last.Chat.ID != tc.want || !strings.HasPrefix(last.Text, loc.T("sw", "help")) {
				t.Errorf("reply to the message with the phone number: %+v, want the help text in Swahili in %s", last, tc.want)
			}
			sent := r.client.sentMessages()
			if got := sent[len(sent)-1].msg.GetExtendedTextMessage().GetText(); !strings.HasPrefix(got, loc.T("sw", "help")) {
				t.Errorf("sent %q, want the help text in Swahili", got)
			}
			if u, err := b.st.GetUser(ctx, "whatsapp", pn.String()); err != nil || u.Language != "sw" || u.MovedFrom != lid.String() {
				t.Errorf("user under the phone number %+v, %v: want language sw, moved from %s", u, err, lid)
			}
			if s, err := b.st.GetSummary(ctx, "whatsapp", lid.String()); err != nil || s.MovedTo != pn.String() {
				t.Errorf("summary of the LID conversation %+v, %v: want MovedTo %s", s, err, pn)
			}
			if s, err := b.st.GetSummary(ctx, "whatsapp", pn.String()); err != nil || s.MovedFrom != lid.String() {
				t.Errorf("summary of the phone-number conversation %+v, %v: want MovedFrom %s", s, err, lid)
			}
			if tc.chat == groupJID {
				if s, err := b.st.GetSummary(ctx, "whatsapp", groupJID.String()); err != nil || s.MovedTo != "" || s.MovedFrom != "" {
					t.Errorf("group summary %+v, %v: the group keeps its id", s, err)
				}
			}
			// The message that revealed the phone number is logged there, answered in Swahili.
			recs, err := b.st.RecentMessages(ctx, "whatsapp", tc.want, 10)
			if err != nil || len(recs) != 2 || recs[0].MessageID != "L2" || recs[0].SenderID != pn.String() || recs[0].Lang != "sw" {
				t.Errorf("log of %s: %+v, %v; want L2 from %s in Swahili and its reply", tc.want, recs, err, pn)
			}
		})
	}
}

// gated holds back the handling of one message until released.
type gated struct {
	bot.MessageHandler
	id      string
	release chan struct{}
}

func (g gated) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	if m.ID == g.id {
		<-g.release
	}
	return g.MessageHandler.Handle(ctx, m, out)
}

// TestLIDMessageQueuedBeforeThePair: a farmer's /language, sent by LID, is still waiting in its
// chat's queue (behind an earlier message being handled) when their next message reveals the
// phone number. Handled afterwards, it sets the language of the farmer under the phone number,
// not of the LID left behind.
func TestLIDMessageQueuedBeforeThePair(t *testing.T) {
	lid := types.NewJID("555555555555556", types.HiddenUserServer)
	pn := types.NewJID("2348031234568", types.DefaultUserServer)
	ctx := t.Context()
	b := openBot(t, filepath.Join(t.TempDir(), "cropshield.db"))
	rec := newRecording(b.handler)
	g := gated{MessageHandler: rec, id: "Q0", release: make(chan struct{})}
	opts := testOptions()
	opts.Users = bot.NewMoves(b.st)
	st := openTestStore(t, "")
	r := startRig(t, st, g, opts)
	r.client.emit(messageEvent("Q0", lid, lid, types.EmptyJID, &waE2E.Message{Conversation: proto.String("/help")}))
	r.client.emit(messageEvent("Q1", lid, lid, types.EmptyJID, &waE2E.Message{Conversation: proto.String("/language sw")}))
	r.client.emit(messageEvent("Q2", pn, lid, pn, &waE2E.Message{Conversation: proto.String("/help")}))
	deadline := time.Now().Add(2 * time.Minute) // only turns a hang into a readable failure
	for inboxRows(t, st) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the messages were not recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(g.release)
	for range 3 {
		<-rec.done
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if u, err := b.st.GetUser(ctx, "whatsapp", pn.String()); err != nil || u.Language != "sw" {
		t.Errorf("farmer under the phone number %+v, %v: want language sw", u, err)
	}
	if u, err := b.st.GetUser(ctx, "whatsapp", lid.String()); err == nil && u.Language != "" {
		t.Errorf("the language landed on the LID left behind: %+v", u)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, rep := range rec.replies {
		if rep.ReplyTo == "Q1" && rep.Chat.ID != lid.String() {
			t.Errorf("reply to the LID message went to %s, want the chat it was written in (%s)", rep.Chat.ID, lid)
		}
	}
}
