package telegram_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cropshield/cropshield/adapters/telegram"
	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// sink receives every log line of this package's tests, from the adapters and the handlers;
// TestMain fails the run if the bot token appears in any of them.
var sink = &logSink{}

type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	lines   int
	changed chan struct{} // closed and replaced on every write
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines += bytes.Count(p, []byte("\n"))
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.buf.Write(p)
}

// waitFor blocks until a log line of test tb holds text.
func (s *logSink) waitFor(tb testing.TB, text string) {
	tb.Helper()
	deadline := time.NewTimer(3 * time.Minute)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		found := false
		for _, line := range strings.Split(s.buf.String(), "\n") {
			if strings.Contains(line, "test="+tb.Name()) && strings.Contains(line, text) {
				found = true
			}
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		if found {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("gave up waiting for a log line with %q", text)
		}
	}
}

func (s *logSink) logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", tb.Name())
}

// leaks returns the numbers of the log lines holding the token (or its secret half).
func (s *logSink) leaks() (bad []int, lines int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, line := range strings.Split(s.buf.String(), "\n") {
		if strings.Contains(line, tokenPart) {
			bad = append(bad, i+1)
		}
	}
	return bad, s.lines
}

func TestMain(m *testing.M) {
	code := m.Run()
	bad, lines := sink.leaks()
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the bot token appears in %d of %d log lines (lines %v)\n", len(bad), lines, bad)
		code = 1
	} else if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "token check: %d log lines of the whole run scanned, no token\n", lines)
	}
	os.Exit(code)
}

// env is one bot: the fake Bot API server, a real bbolt store in a temp dir, the real handler
// with the contract model, and the adapter under test.
type env struct {
	t    testing.TB
	api  *fakeAPI
	path string
	loc  *locales.Bundle
	opts telegram.Options
	cfg  bot.Config
	icfg bot.IntakeConfig

	st        *store.Store
	a         *telegram.Adapter
	in        *bot.Intake
	cancel    context.CancelFunc
	done      chan error
	msgID     int
	beforeRun func(*telegram.Adapter)
	// drainHook is called at a stop once the intake's gate has closed (no message starts any
	// more) and before its drain ends.
	drainHook func()
}

func newEnv(t testing.TB, mutate func(*telegram.Options)) *env {
	t.Helper()
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, api: newFakeAPI(t), path: filepath.Join(t.TempDir(), "cropshield.db"), loc: loc,
		// ClearCropShare -1: the contract model is unsure between crops on synthetic leaves, and
		// these tests want its diagnosis (the crop question has its own tests).
		cfg: bot.Config{Threshold: 0.01, Burst: 1 << 20, ClearCropShare: -1}, msgID: 1000,
		icfg: bot.IntakeConfig{AlbumWait: 50 * time.Millisecond, RetryDelay: 5 * time.Millisecond}}
	e.opts = telegram.Options{Token: testToken, APIEndpoint: e.api.URL(), RetryDelay: 5 * time.Millisecond}
	if mutate != nil {
		mutate(&e.opts)
	}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	st, err := store.Open(context.Background(), e.path, store.Options{Timeout: 5 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
}

// close stops the adapter, closes the store and checks that the database holds no token.
func (e *env) close() {
	e.stop()
	if e.st == nil {
		return
	}
	if err := e.st.Close(); err != nil {
		e.t.Error(err)
	}
	e.st = nil
	db, err := os.ReadFile(e.path)
	if err != nil {
		e.t.Error(err)
		return
	}
	if bytes.Contains(db, []byte(tokenPart)) {
		e.t.Error("the bot token is stored in the database")
	}
}

// start builds a handler, an intake and an adapter on the current store and runs the adapter.
func (e *env) start() {
	e.t.Helper()
	h, err := bot.NewHandler(e.cfg, sink.logger(e.t), e.st, testenv.ContractSession(e.t), e.loc, bot.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		e.t.Fatal(err)
	}
	in := bot.NewIntake(e.icfg, sink.logger(e.t), e.st, h)
	opts := e.opts
	opts.Chats = bot.NewMoves(e.st)
	a, err := telegram.New(sink.logger(e.t), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.beforeRun != nil {
		e.beforeRun(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, in) }()
	e.a, e.in, e.cancel, e.done = a, in, cancel, done
}

// stop shuts down as serve does: the intake stops (its gate closes, the messages being handled
// finish), then Run is cancelled and waited for; Run must return nil.
func (e *env) stop() {
	e.t.Helper()
	if e.cancel == nil {
		return
	}
	stopped := make(chan error, 1)
	go func() { stopped <- e.in.Stop(context.Background()) }()
	<-e.in.Stopping()
	if e.drainHook != nil {
		e.drainHook()
	}
	if err := <-stopped; err != nil {
		e.t.Error(err)
	}
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("Run returned %v after a stop, want nil", err)
	}
	e.cancel, e.done = nil, nil
}

// restart stops the adapter, closes the store, opens it again and starts a new handler and
// adapter on it: a process restart.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
	e.start()
}

func (e *env) nextID() int {
	e.msgID++
	return e.msgID
}

func privateChat(id int64) *tgbotapi.Chat {
	return &tgbotapi.Chat{ID: id, Type: "private", FirstName: "Amina"}
}

func groupChat(id int64) *tgbotapi.Chat {
	return &tgbotapi.Chat{ID: id, Type: "supergroup", Title: "Mbeya tomato growers"}
}

func farmer(id int64) *tgbotapi.User {
	return &tgbotapi.User{ID: id, FirstName: "Amina", LastName: "Mushi", LanguageCode: "en"}
}

func (e *env) text(chat *tgbotapi.Chat, from *tgbotapi.User, text string) tgbotapi.Message {
	return tgbotapi.Message{MessageID: e.nextID(), From: from, Chat: chat, Text: text}
}

func (e *env) photo(chat *tgbotapi.Chat, from *tgbotapi.User, caption string, sizes []tgbotapi.PhotoSize) tgbotapi.Message {
	return tgbotapi.Message{MessageID: e.nextID(), From: from, Chat: chat, Caption: caption, Photo: sizes}
}

// photoSizes registers a leaf photo in the sizes Telegram makes of a 1280x960 upload; each size
// is its own file with its own unique id, as on Telegram.
func (e *env) photoSizes(seed int) []tgbotapi.PhotoSize {
	e.t.Helper()
	var out []tgbotapi.PhotoSize
	for _, s := range [][2]int{{90, 68}, {320, 240}, {800, 600}, {1280, 960}} {
		data := testenv.LeafJPEG(e.t, s[0], s[1], seed)
		uid := fmt.Sprintf("AQAD%d-%dx%d", seed, s[0], s[1])
		out = append(out, tgbotapi.PhotoSize{FileID: e.api.addFile(uid, data), FileUniqueID: uid,
			Width: s[0], Height: s[1], FileSize: len(data)})
	}
	return out
}

// onePhotoSize registers a photo in a single 800x600 size (cheaper, for albums and loads).
func (e *env) onePhotoSize(seed int) []tgbotapi.PhotoSize {
	e.t.Helper()
	data := testenv.LeafJPEG(e.t, 800, 600, seed)
	uid := fmt.Sprintf("AQAD%d-single", seed)
	return []tgbotapi.PhotoSize{{FileID: e.api.addFile(uid, data), FileUniqueID: uid, Width: 800, Height: 600, FileSize: len(data)}}
}

// forwarded returns the sizes as a forward shows them: new file ids, the same unique ids.
func (e *env) forwarded(sizes []tgbotapi.PhotoSize) []tgbotapi.PhotoSize {
	out := make([]tgbotapi.PhotoSize, len(sizes))
	for i, s := range sizes {
		s.FileID = e.api.alias(s.FileID)
		out[i] = s
	}
	return out
}

// helpText is the reply to /help in English, the sentinel that ends a chat's expectations.
func (e *env) helpText() string {
	return e.loc.T("en", "help")
}

// untilHelp pushes /help into the chat, waits for its answer and returns what the bot sent to
// the chat from the call until that answer. Updates are handled in order within a chat, so
// everything pushed earlier into the chat has been answered by then.
func (e *env) untilHelp(chat *tgbotapi.Chat, from *tgbotapi.User) []sent {
	e.t.Helper()
	start := len(e.api.sentTo(chat.ID))
	e.api.push(e.text(chat, from, "/help"))
	var before []sent
	e.api.waitFor(e.t, fmt.Sprintf("the /help answer in chat %d", chat.ID), func() bool {
		all := e.api.sentToLocked(chat.ID)
		for i := start; i < len(all); i++ {
			if e.isHelp(all[i]) {
				before = all[start:i]
				return true
			}
		}
		return false
	})
	return before
}

// isHelp tells the (first part of the) answer to /help.
func (e *env) isHelp(s sent) bool {
	return s.Method == "sendMessage" && strings.HasPrefix(s.Text, strings.TrimSpace(e.helpText())) // then the crops it knows
}

func leafPNG(tb testing.TB, w, h, seed int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, testenv.Leaf(w, h, seed)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
