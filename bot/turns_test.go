package bot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
	"github.com/prometheus/client_golang/prometheus"
)

func (f *fixture) handle(m bot.Message) []bot.Reply {
	f.t.Helper()
	if err := f.handler.Handle(context.Background(), m, f.out); err != nil {
		f.t.Fatalf("Handle(%s): %v", m.ID, err)
	}
	return f.out.take()
}

func (f *fixture) inbound(chat string) int {
	f.t.Helper()
	recs, err := f.store.RecentMessages(context.Background(), "telegram", chat, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Direction == store.Inbound {
			n++
		}
	}
	return n
}

// TestEachMessageAnsweredOnce: the same platform message delivered again gets no second reply and
// no second log record; an interrupted handling resumes without repeating what was sent.
func TestEachMessageAnsweredOnce(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	chat := bot.ChatRef{Platform: bot.Telegram, ID: "42", Kind: bot.Private}
	leaf := testenv.LeafJPEG(t, 320, 240, 12)
	msg := func(id string) bot.Message {
		return bot.Message{ID: id, Chat: chat, Sender: bot.Sender{ID: "7"}, Photo: bytesPhoto(leaf), Time: time.Unix(1700000000, 0)}
	}
	if r := f.handle(msg("100")); len(r) != 1 {
		t.Fatalf("first delivery: %v", r)
	}
	if r := f.handle(msg("100")); len(r) != 0 {
		t.Fatalf("second delivery of the same message answered again: %v", r)
	}
	if f.inbound("42") != 1 {
		t.Errorf("inbound records = %d, want 1", f.inbound("42"))
	}

	checkResumedOnce(t, f, f, msg)
}

// checkResumedOnce: a message whose handling stopped (a crash, a replica killed) at each point of
// its turn on the replica died is handled again on the replica resumed exactly as after a
// restart: answered if no reply was attempted, not answered if one was (it may have reached the
// user) or was sent; logged once; and not answered once more when delivered again to died. died
// and resumed are the same fixture for one process, two fixtures on one database for replicas.
func checkResumedOnce(t *testing.T, died, resumed *fixture, msg func(id string) bot.Message) {
	t.Helper()
	ctx := context.Background()
	begin := func(id string) {
		t.Helper()
		if _, existed, err := died.store.BeginTurn(ctx, store.Record{Time: time.Now(), Platform: "telegram", ChatID: "42",
			Direction: store.Inbound, SenderID: "7", MessageID: id}); err != nil || existed {
			t.Fatalf("BeginTurn: %v %v", existed, err)
		}
	}
	for _, tc := range []struct {
		name      string
		crash     func(id string) // what happened before the crash
		wantReply bool
	}{
		{"crashed after recording, before replying", func(id string) { begin(id) }, true},
		{"crashed while sending (delivery unknown)", func(id string) {
			begin(id)
			if err := died.store.AttemptReply(ctx, "telegram", "42", id, 0, nil); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"crashed after the reply was sent", func(id string) {
			begin(id)
			if err := died.store.ReplySent(ctx, id, 0, store.Record{Time: time.Now(), Platform: "telegram", ChatID: "42",
				Direction: store.Outbound, Text: "sent before the crash", ReplyTo: id}, false); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			before := resumed.inbound("42")
			tc.crash(id)
			r := resumed.handle(msg(id))
			if got := len(r) == 1; got != tc.wantReply {
				t.Fatalf("after restart replies = %v, want a reply: %v", r, tc.wantReply)
			}
			if resumed.inbound("42") != before+1 {
				t.Errorf("inbound records %d, want %d: the resumed message was logged twice", resumed.inbound("42"), before+1)
			}
			if r := died.handle(msg(id)); len(r) != 0 {
				t.Errorf("delivered once more after finishing: %v", r)
			}
		})
	}
}

func TestAlbumAnsweredOnceTogether(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	chat := bot.ChatRef{Platform: bot.Telegram, ID: "-100", Kind: bot.Group}
	album := []*bot.Photo{
		bytesPhoto(testenv.LeafJPEG(t, 320, 240, 13)), bytesPhoto([]byte("not a photo")), bytesPhoto(testenv.LeafJPEG(t, 320, 240, 14)),
	}
	r := f.handle(bot.Message{ID: "55", Chat: chat, Sender: bot.Sender{ID: "7"}, Album: album})
	if len(r) != 1 {
		t.Fatalf("%d replies, want one combined verdict: %v", len(r), r)
	}
	got := r[0]
	if got.Kind != bot.KindDiagnosis || len(got.Images) != 2 || got.Image != nil || got.ReplyTo != "55" {
		t.Fatalf("reply %v with %d images", got, len(got.Images))
	}
	for _, want := range []string{"I looked at your 3 photos together.", "1 photo was left out: it is not a leaf of a crop I know, or I could not read it.", "Most likely diseases:"} {
		if !strings.Contains(got.FullText(), want) {
			t.Errorf("reply lacks %q:\n%s", want, got.FullText())
		}
	}
	recs, err := f.store.RecentMessages(context.Background(), "telegram", "-100", 10)
	if err != nil || len(recs) != 2 || len(recs[0].Album) != 2 || recs[0].PhotoHash != recs[0].Album[0] {
		t.Fatalf("log %+v %v", recs, err)
	}
	if f.inferences() != 2 {
		t.Errorf("inferences %v, want 2", f.inferences())
	}
}

// TestInterruptedByShutdownIsAnsweredLater: a message cut short by shutdown (its context
// cancelled during the download) sends nothing, stays unfinished, and is answered in full when it
// is handed in again.
func TestInterruptedByShutdownIsAnsweredLater(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	chat := bot.ChatRef{Platform: bot.Telegram, ID: "9", Kind: bot.Private}
	leaf := testenv.LeafJPEG(t, 320, 240, 31)
	ctx, cancel := context.WithCancel(context.Background())
	m := bot.Message{ID: "500", Chat: chat, Sender: bot.Sender{ID: "9"}, Photo: &bot.Photo{Fetch: func(context.Context) ([]byte, error) {
		cancel() // shutdown arrives while downloading
		return nil, context.Canceled
	}}}
	if err := f.handler.Handle(ctx, m, f.out); err != nil {
		t.Fatal(err)
	}
	if r := f.out.take(); len(r) != 0 {
		t.Fatalf("replied while shutting down: %v", r)
	}
	m.Photo = bytesPhoto(leaf)
	if r := f.handle(m); len(r) != 1 || r[0].Kind != bot.KindDiagnosis {
		t.Fatalf("handed in again after restart: %v", r)
	}
}

// countingStore counts the write transactions the handler asks for; failAttempt makes every
// reply attempt (BeginReply, AttemptReply) fail as a full disk would.
type countingStore struct {
	*store.Store
	mu          sync.Mutex
	writes      []string
	failAttempt bool
	failPut     bool
}

func (c *countingStore) wrote(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, op)
}

func (c *countingStore) RecordInbound(ctx context.Context, r store.Record, chat *store.Chat, user *store.User) (store.Arrival, error) {
	c.wrote("RecordInbound")
	return c.Store.RecordInbound(ctx, r, chat, user)
}
func (c *countingStore) BeginReply(ctx context.Context, r store.Record, chat *store.Chat, user *store.User, k int) (store.Arrival, error) {
	c.wrote("BeginReply")
	if c.failAttempt {
		return store.Arrival{}, errors.New("no space left on device")
	}
	return c.Store.BeginReply(ctx, r, chat, user, k)
}
func (c *countingStore) BeginDone(ctx context.Context, r store.Record, chat *store.Chat, user *store.User) (store.Arrival, error) {
	c.wrote("BeginDone")
	return c.Store.BeginDone(ctx, r, chat, user)
}
func (c *countingStore) PutAnalysis(ctx context.Context, a store.Analysis, photo []byte, mime string) error {
	c.wrote("PutAnalysis")
	if c.failPut {
		return errors.New("no space left on device")
	}
	return c.Store.PutAnalysis(ctx, a, photo, mime)
}
func (c *countingStore) PutContentID(ctx context.Context, platform, id, hash string) error {
	c.wrote("PutContentID")
	return c.Store.PutContentID(ctx, platform, id, hash)
}
func (c *countingStore) UpdateMessage(ctx context.Context, r store.Record) error {
	c.wrote("UpdateMessage")
	return c.Store.UpdateMessage(ctx, r)
}
func (c *countingStore) AppendMessage(ctx context.Context, r store.Record) (uint64, error) {
	c.wrote("AppendMessage")
	return c.Store.AppendMessage(ctx, r)
}
func (c *countingStore) AttemptReply(ctx context.Context, platform, chat, id string, k int, in *store.Record) error {
	c.wrote("AttemptReply")
	if c.failAttempt {
		return errors.New("no space left on device")
	}
	return c.Store.AttemptReply(ctx, platform, chat, id, k, in)
}
func (c *countingStore) ReplySent(ctx context.Context, id string, k int, out store.Record, finish bool) error {
	c.wrote("ReplySent")
	return c.Store.ReplySent(ctx, id, k, out, finish)
}
func (c *countingStore) FinishTurn(ctx context.Context, platform, chat, id string, in *store.Record) error {
	c.wrote("FinishTurn")
	return c.Store.FinishTurn(ctx, platform, chat, id, in)
}

// panicky is a model that panics.
type panicky struct{ bot.Analyzer }

func (panicky) Analyze(context.Context, []byte) (inference.Result, error) { panic("model bug") }

// cancelling is a chat that delivers a reply and then the process starts shutting down.
type cancelling struct {
	outbox
	cancel context.CancelFunc
}

func (c *cancelling) Send(ctx context.Context, r bot.Reply) error {
	defer c.cancel()
	return c.outbox.Send(ctx, r)
}

// TestWritesPerMessage: each durable write is a disk sync, and they bound how many photos a
// second the bot answers; what handling finds (photo hash, error) rides with the reply attempt,
// and the last reply's record finishes the turn. The end state is complete all the same, also
// when a write fails, the model panics or shutdown begins right after the reply went out.
func TestWritesPerMessage(t *testing.T) {
	leaf := testenv.LeafJPEG(t, 320, 240, 3)
	other := testenv.LeafJPEG(t, 320, 240, 4)
	cfg := bot.Config{Threshold: 0.01, Burst: 100}
	for _, tc := range []struct {
		name        string
		photo       []byte // nil: the text /help
		panics      bool
		failAttempt bool
		failPut     bool
		interrupt   bool
		wantWrites  []string
		wantReplies int
		wantHash    string // on the inbound record afterwards
		unrecorded  bool   // nothing of the message is written (it is handed in again)
		wantError   bool   // an error noted on the inbound record
		wantDone    bool
		wantSent    int
		// Handed in again (after a restart): the replies that go out then.
		wantRedelivered int
	}{
		// The message is written with its reply's attempt: one fsync before the reply goes out.
		// The photo and its analysis are stored after the reply's attempt, while the reply goes out.
		{name: "new photo", photo: leaf, wantWrites: []string{"BeginReply", "PutAnalysis", "ReplySent"},
			wantReplies: 1, wantHash: hashOf(leaf), wantDone: true, wantSent: 1},
		{name: "a command", wantWrites: []string{"BeginReply", "ReplySent"},
			wantReplies: 1, wantDone: true, wantSent: 1},
		{name: "not a photo", photo: []byte("not a jpeg"), wantWrites: []string{"BeginReply", "ReplySent"},
			wantReplies: 1, wantError: true, wantDone: true, wantSent: 1},
		// The reply is not sent when its attempt cannot be noted, and nothing of the message is
		// written: handed in again, it is answered once.
		{name: "the reply attempt cannot be written", photo: other, failAttempt: true,
			wantWrites: []string{"BeginReply", "PutAnalysis"}, unrecorded: true, wantRedelivered: 1},
		// The reply went out but the photo could not be stored: the turn stays open, and handed in
		// again the message stores it and sends nothing twice.
		{name: "the photo cannot be stored", photo: leaf, failPut: true,
			wantWrites:  []string{"BeginReply", "PutAnalysis", "ReplySent"},
			wantReplies: 1, wantHash: hashOf(leaf), wantSent: 1},
		// The error reply goes out first, the turn ends with its record.
		{name: "the model panics", photo: other, panics: true, wantWrites: []string{"BeginReply", "ReplySent"},
			wantReplies: 1, wantError: true, wantDone: true, wantSent: 1},
		// Sent but not finished: a new delivery must resume the turn and send nothing twice.
		{name: "shutdown right after the reply", photo: leaf, interrupt: true,
			wantWrites:  []string{"BeginReply", "PutAnalysis", "ReplySent"},
			wantReplies: 1, wantHash: hashOf(leaf), wantSent: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, cfg, nil)
			cs := &countingStore{Store: f.store, failAttempt: tc.failAttempt, failPut: tc.failPut}
			loc, err := locales.Load()
			if err != nil {
				t.Fatal(err)
			}
			var model bot.Analyzer = testenv.ContractSession(t)
			if tc.panics {
				model = panicky{model}
			}
			h, err := bot.NewHandler(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), cs, model, loc, bot.NewMetrics(prometheus.NewRegistry()))
			if err != nil {
				t.Fatal(err)
			}
			m := bot.Message{ID: "1", Chat: bot.ChatRef{Platform: bot.Telegram, ID: "42", Kind: bot.Private},
				Sender: bot.Sender{ID: "7"}, Time: time.Unix(1700000000, 0), Text: "/help"}
			if tc.photo != nil {
				m.Text, m.Photo = "", bytesPhoto(tc.photo)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &cancelling{cancel: func() {}}
			if tc.interrupt {
				out.cancel = cancel
			}
			if err := h.Handle(ctx, m, out); (err != nil) != (tc.failAttempt || tc.failPut) {
				t.Fatalf("Handle: %v; want an error (the message to be kept) only when a write failed", err)
			}
			if r := out.take(); len(r) != tc.wantReplies {
				t.Fatalf("replies %v, want %d", r, tc.wantReplies)
			}
			if !slices.Equal(cs.writes, tc.wantWrites) {
				t.Errorf("writes %v, want %v", cs.writes, tc.wantWrites)
			}
			recs, err := f.store.RecentMessages(context.Background(), "telegram", "42", 5)
			if tc.unrecorded {
				if err != nil || len(recs) != 0 {
					t.Fatalf("log %+v %v, want nothing written", recs, err)
				}
				cs.failAttempt = false
				if err := h.Handle(context.Background(), m, out); err != nil {
					t.Fatal(err)
				}
				if r := out.take(); len(r) != tc.wantRedelivered {
					t.Errorf("handed in again: sent %v, want %d replies", r, tc.wantRedelivered)
				}
				if turn, err := f.store.GetTurn(context.Background(), "telegram", "42", m.ID); err != nil || !turn.Done || turn.Sent != 1 {
					t.Errorf("turn %+v %v, want done with one reply sent", turn, err)
				}
				return
			}
			if err != nil || len(recs) != 1+tc.wantSent {
				t.Fatalf("log %+v %v, want the message and %d replies", recs, err, tc.wantSent)
			}
			in := recs[0]
			if in.MessageID != m.ID || in.PhotoHash != tc.wantHash || (in.Error != "") != tc.wantError {
				t.Errorf("inbound record %+v", in)
			}
			if tc.wantSent == 1 && recs[1].ReplyTo != m.ID {
				t.Errorf("reply record %+v", recs[1])
			}
			turn, existed, err := f.store.BeginTurn(context.Background(), in)
			if err != nil || !existed || turn.Done != tc.wantDone || turn.Sent != tc.wantSent {
				t.Errorf("turn %+v existed %v %v, want done %v with %d replies sent", turn, existed, err, tc.wantDone, tc.wantSent)
			}
			if !tc.wantDone {
				// Handed in again after the restart: nothing sent twice, and now finished.
				cs.failAttempt, cs.failPut = false, false
				if err := h.Handle(context.Background(), m, out); err != nil {
					t.Fatal(err)
				}
				if r := out.take(); len(r) != tc.wantRedelivered {
					t.Errorf("resumed turn sent %v, want %d replies", r, tc.wantRedelivered)
				}
				if turn, _, _ := f.store.BeginTurn(context.Background(), in); !turn.Done || turn.Sent != 1 {
					t.Errorf("resumed turn %+v, want done with one reply sent", turn)
				}
				if tc.photo != nil {
					if _, err := f.store.GetAnalysis(context.Background(), hashOf(tc.photo), model.Info().Version); err != nil {
						t.Errorf("the photo's analysis is not stored after the message was handed in again: %v", err)
					}
				}
			}
		})
	}
}

// panicsFirst is a model that panics on its first n photos, then analyses with Analyzer.
type panicsFirst struct {
	bot.Analyzer
	n atomic.Int32
}

func (p *panicsFirst) Analyze(ctx context.Context, photo []byte) (inference.Result, error) {
	if p.n.Add(-1) >= 0 {
		panic("model bug")
	}
	return p.Analyzer.Analyze(ctx, photo)
}

// TestModelPanicsGiveBackTheWorkerSlot: a photo whose analysis panics gets the error reply and
// gives its worker slot back, so that with one worker the bot still diagnoses the next photo
// after more panics than it has workers.
func TestModelPanicsGiveBackTheWorkerSlot(t *testing.T) {
	model := &panicsFirst{Analyzer: testenv.ContractSession(t)}
	model.n.Store(3)
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100, Workers: 1}, model)
	// A slot kept by a panic makes the next photo wait for its context: a hang guard, not a timing.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, want := range []bot.ReplyKind{bot.KindError, bot.KindError, bot.KindError, bot.KindDiagnosis} {
		chat := fmt.Sprintf("panic-%d", i)
		m := bot.Message{ID: chat, Chat: private(chat), Sender: bot.Sender{ID: "u-" + chat},
			Photo: bytesPhoto(testenv.LeafJPEG(t, 400, 300, 20+i))}
		if err := f.handler.Handle(ctx, m, f.out); err != nil {
			t.Fatalf("photo %d: %v", i, err)
		}
		if r := f.out.take(); len(r) != 1 || r[0].Kind != want {
			t.Fatalf("photo %d with one worker after %d panics: %v, want %s", i, min(i, 3), r, want)
		}
	}
}

// questionReadFails is a store that cannot read crop questions (a disk error, say).
type questionReadFails struct{ *store.Store }

func (questionReadFails) GetCropQuestion(context.Context, string, string, time.Time) (store.CropQuestion, error) {
	return store.CropQuestion{}, errors.New("disk error")
}

// TestCropAnswerStoreErrorKeepsTheMessage: when the open crop question cannot be read (a store
// failure, not "no question"), a text that may be its answer gets no reply and the turn stays
// open: Handle returns an error so the adapter hands the message in again.
func TestCropAnswerStoreErrorKeepsTheMessage(t *testing.T) {
	f := newFixture(t, bot.Config{Burst: 100}, nil)
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	h, err := bot.NewHandler(bot.Config{Burst: 100}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		questionReadFails{f.store}, testenv.ContractSession(t), loc, bot.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	m := bot.Message{ID: "q1", Chat: private("q"), Sender: bot.Sender{ID: "u-q"}, Text: "maize"}
	if err := h.Handle(context.Background(), m, f.out); err == nil {
		t.Error("Handle succeeded although the crop question could not be read")
	}
	if r := f.out.take(); len(r) != 0 {
		t.Errorf("replies %v, want none until the message is handed in again", r)
	}
}

// volatileOutbox is a channel whose outbox dies with the process (the web chat's).
type volatileOutbox struct{ *outbox }

func (volatileOutbox) VolatileOutbox() {}

// TestVolatileOutboxSendsAnInterruptedReplyAgain: a reply attempted before a crash may have
// reached the user on a platform (not sent again: one lost rather than two), but on a channel
// whose outbox died with the process it reached nobody: it is sent again, once.
func TestVolatileOutboxSendsAnInterruptedReplyAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		volatile bool
		want     int
	}{
		{"platform", false, 0},
		{"in-memory outbox", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, bot.Config{Burst: 100}, nil)
			ctx := context.Background()
			in := store.Record{Time: time.Now(), Platform: "webchat", ChatID: "w1", Direction: store.Inbound, SenderID: "w1", MessageID: "c-1", Text: "/help"}
			if _, err := f.store.BeginReply(ctx, in, nil, nil, 0); err != nil {
				t.Fatal(err)
			}
			var out bot.Responder = f.out
			if tc.volatile {
				out = volatileOutbox{f.out}
			}
			m := bot.Message{ID: "c-1", Chat: bot.ChatRef{Platform: bot.WebChat, ID: "w1", Kind: bot.Private}, Sender: bot.Sender{ID: "w1"}, Text: "/help"}
			for range 2 { // handed in again after the crash, and once more after it was answered
				if err := f.handler.Handle(ctx, m, out); err != nil {
					t.Fatal(err)
				}
			}
			if r := f.out.take(); len(r) != tc.want {
				t.Errorf("replies after the crash %v, want %d", r, tc.want)
			}
			if turn, err := f.store.GetTurn(ctx, "webchat", "w1", "c-1"); err != nil || !turn.Done {
				t.Errorf("turn %+v %v, want done", turn, err)
			}
		})
	}
}

// contentIDPanics is a store whose content-id index panics (a bug in it, say).
type contentIDPanics struct{ *store.Store }

func (contentIDPanics) PutContentID(context.Context, string, string, string) error {
	panic("index bug")
}

// TestContentIDPanicIsContained: the content-id index is written on its own goroutine while the
// reply goes out; a panic there is logged, not the end of the process, and the photo is answered.
// (Without the recover the test binary dies.)
func TestContentIDPanicIsContained(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	h, err := bot.NewHandler(bot.Config{Threshold: 0.01, Burst: 100}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		contentIDPanics{f.store}, testenv.ContractSession(t), loc, bot.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	p := bytesPhoto(testenv.LeafJPEG(t, 320, 240, 3))
	p.ContentID = "file-unique-1"
	m := bot.Message{ID: "1", Chat: bot.ChatRef{Platform: bot.Telegram, ID: "42", Kind: bot.Private}, Sender: bot.Sender{ID: "7"}, Photo: p}
	if err := h.Handle(context.Background(), m, f.out); err != nil {
		t.Fatal(err)
	}
	if r := f.out.take(); len(r) != 1 || r[0].Kind == bot.KindError {
		t.Fatalf("replies %v, want the photo's answer", r)
	}
	if turn, err := f.store.GetTurn(context.Background(), "telegram", "42", "1"); err != nil || !turn.Done {
		t.Errorf("turn %+v %v, want done", turn, err)
	}
}
