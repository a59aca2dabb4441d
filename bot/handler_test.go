package bot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// versioned makes the shared model report another model version.
type versioned struct {
	*inference.Model
	version string
}

func (v versioned) Info() inference.Info {
	i := v.Model.Info()
	i.Version = v.version
	return i
}

// outbox is a Responder that keeps what it was asked to send.
type outbox struct {
	mu      sync.Mutex
	replies []bot.Reply
	fail    error
}

func (o *outbox) Send(_ context.Context, r bot.Reply) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	o.replies = append(o.replies, r)
	return nil
}

func (o *outbox) take() []bot.Reply {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.replies
	o.replies = nil
	return r
}

type fixture struct {
	t       testing.TB
	path    string
	store   *store.Store
	handler *bot.Handler
	metrics *bot.Metrics
	out     *outbox
	seq     atomic.Int64
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newFixture(t testing.TB, cfg bot.Config, analyzer bot.Analyzer) *fixture {
	t.Helper()
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "cropshield.db"), out: &outbox{}}
	f.store = openStore(t, f.path)
	f.build(cfg, analyzer)
	return f
}

func (f *fixture) build(cfg bot.Config, analyzer bot.Analyzer) {
	f.t.Helper()
	if analyzer == nil {
		analyzer = testenv.ContractSession(f.t)
	}
	if cfg.ClearCropShare == 0 {
		// The contract model is unsure between crops on the synthetic leaves: the tests of other
		// things want its diagnosis, the crop question has its own (crop_test.go).
		cfg.ClearCropShare = -1
	}
	loc, err := locales.Load()
	if err != nil {
		f.t.Fatal(err)
	}
	f.metrics = bot.NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.handler, err = bot.NewHandler(cfg, log, f.store, analyzer, loc, f.metrics)
	if err != nil {
		f.t.Fatal(err)
	}
}

func private(id string) bot.ChatRef {
	return bot.ChatRef{Platform: bot.WebChat, ID: id, Kind: bot.Private}
}

// send hands one message to the handler and returns the replies it produced.
func (f *fixture) send(chat bot.ChatRef, sender bot.Sender, text string, photo *bot.Photo) []bot.Reply {
	f.t.Helper()
	m := bot.Message{ID: fmt.Sprintf("m%d", f.seq.Add(1)), Chat: chat, Sender: sender, Text: text, Photo: photo}
	if err := f.handler.Handle(context.Background(), m, f.out); err != nil {
		f.t.Fatalf("Handle(%q): %v", text, err)
	}
	return f.out.take()
}

func (f *fixture) photo(chat string, p *bot.Photo) bot.Reply {
	f.t.Helper()
	replies := f.send(private(chat), bot.Sender{ID: "u-" + chat, Name: "Amina"}, "", p)
	if len(replies) != 1 {
		f.t.Fatalf("got %d replies, want 1: %v", len(replies), replies)
	}
	return replies[0]
}

func (f *fixture) inferences() float64 { return testutil.ToFloat64(f.metrics.Inferences) }

func bytesPhoto(data []byte) *bot.Photo {
	return &bot.Photo{Fetch: func(context.Context) ([]byte, error) { return data, nil }}
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestPhotoIsDiagnosedStoredAndCached(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	leaf := testenv.LeafJPEG(t, 640, 480, 1)

	first := f.photo("c1", bytesPhoto(leaf))
	if first.Kind != bot.KindDiagnosis || first.ReplyTo != "m1" {
		t.Fatalf("first reply: %v", first)
	}
	for _, want := range []string{"Most likely diseases:", "\n1. ", "\n2. ", "\n3. ", "What to do:", "%"} {
		if !strings.Contains(first.FullText(), want) {
			t.Errorf("reply lacks %q:\n%s", want, first.FullText())
		}
	}
	if !strings.Contains(first.Caption, "Most likely diseases:") || !strings.Contains(first.Text, "What to do:") {
		t.Errorf("caption (top-3) and details (advice) not split:\ncaption %q\ntext %q", first.Caption, first.Text)
	}
	img, err := jpeg.Decode(bytes.NewReader(first.Image))
	if err != nil {
		t.Fatalf("overlay is not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 480 {
		t.Errorf("overlay %v, want the photo's 640x480", b)
	}
	if f.inferences() != 1 {
		t.Fatalf("inferences = %v, want 1", f.inferences())
	}

	ctx := context.Background()
	hash := hashOf(leaf)
	a, err := f.store.GetAnalysis(ctx, hash, "contract-v1")
	if err != nil || len(a.Top) != 3 || !bytes.Equal(a.Overlay, first.Image) {
		t.Fatalf("stored analysis: %+v, %v", a.Top, err)
	}
	if got, _, err := f.store.GetPhoto(ctx, hash); err != nil || !bytes.Equal(got, leaf) {
		t.Fatalf("stored photo: %d bytes, %v", len(got), err)
	}

	// The same photo again, from another chat: answered from the cache, no second inference.
	again := f.photo("c2", bytesPhoto(leaf))
	if again.FullText() != first.FullText() || !bytes.Equal(again.Image, first.Image) {
		t.Error("cached answer differs from the first")
	}
	if f.inferences() != 1 {
		t.Errorf("inferences = %v after a cache hit, want 1", f.inferences())
	}
	if hit := testutil.ToFloat64(f.metrics.Cache.WithLabelValues("webchat", "hit")); hit != 1 {
		t.Errorf("cache hits = %v, want 1", hit)
	}

	// The conversation log holds both directions, the inbound record with its photo hash.
	recs, err := f.store.RecentMessages(ctx, "webchat", "c1", 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("log of c1: %+v, %v", recs, err)
	}
	if recs[0].Direction != store.Inbound || recs[0].PhotoHash != hash || recs[0].SenderName != "Amina" {
		t.Errorf("inbound record %+v", recs[0])
	}
	if recs[1].Direction != store.Outbound || recs[1].ReplyTo != "m1" || recs[1].Text != first.FullText() {
		t.Errorf("outbound record %+v", recs[1])
	}
}

func TestKnownContentIDNeedsNoDownload(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	leaf := testenv.LeafJPEG(t, 320, 240, 2)
	f.photo("c1", &bot.Photo{ContentID: "AgADfile1", Fetch: func(context.Context) ([]byte, error) { return leaf, nil }})
	downloads := 0
	r := f.photo("c1", &bot.Photo{ContentID: "AgADfile1", Fetch: func(context.Context) ([]byte, error) {
		downloads++
		return leaf, nil
	}})
	if downloads != 0 || r.Kind != bot.KindDiagnosis || f.inferences() != 1 {
		t.Fatalf("downloads %d, kind %s, inferences %v: want 0, diagnosis, 1", downloads, r.Kind, f.inferences())
	}
}

// TestSamePhotoAtOnceRunsOnce: a group forwarding one photo many times at once costs one
// inference.
func TestSamePhotoAtOnceRunsOnce(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	leaf := testenv.LeafJPEG(t, 800, 600, 3)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			m := bot.Message{ID: fmt.Sprint("g", i), Chat: bot.ChatRef{Platform: bot.Telegram, ID: "g1", Kind: bot.Group},
				Sender: bot.Sender{ID: fmt.Sprint("u", i)}, Photo: bytesPhoto(leaf)}
			if err := f.handler.Handle(context.Background(), m, f.out); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(f.out.take()); n != 6 {
		t.Errorf("%d replies, want 6", n)
	}
	if f.inferences() != 1 {
		t.Errorf("inferences = %v, want 1", f.inferences())
	}
}

func TestNewModelVersionDoesNotAnswerFromOldCache(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	leaf := testenv.LeafJPEG(t, 320, 240, 4)
	f.photo("c1", bytesPhoto(leaf))
	f.build(bot.Config{Threshold: 0.01}, versioned{testenv.ContractSession(t), "contract-v2"})
	f.photo("c1", bytesPhoto(leaf))
	if f.inferences() != 1 { // the new handler's own counter
		t.Fatalf("inferences with the new model = %v, want 1 (no answer from the old model's cache)", f.inferences())
	}
	if _, err := f.store.GetAnalysis(context.Background(), hashOf(leaf), "contract-v2"); err != nil {
		t.Fatal(err)
	}
}

func TestUnsureBelowThreshold(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.999}, nil)
	r := f.photo("c1", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 5)))
	if r.Kind != bot.KindUnsure || !strings.Contains(r.FullText(), "I am not sure") || !strings.Contains(r.FullText(), "one leaf, filling most of the picture") {
		t.Fatalf("reply: %v", r)
	}
	if strings.Contains(r.FullText(), "What to do:") {
		t.Error("an unsure answer must not give treatment advice")
	}
	if r.Image == nil {
		t.Error("the unsure answer still shows where the model looked")
	}
}

// rejecting makes the shared model judge every photo not a leaf, as a model with a not_leaf
// output does for a cat.
type rejecting struct{ *inference.Model }

func (r rejecting) Analyze(ctx context.Context, photo []byte) (inference.Result, error) {
	res, err := r.Model.Analyze(ctx, photo)
	res.NotLeaf, res.IsLeaf = 0.98, false
	return res, err
}

func TestNotALeafIsNotDiagnosed(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, rejecting{testenv.ContractSession(t)})
	cat := testenv.LeafJPEG(t, 320, 240, 11)
	r := f.photo("c1", bytesPhoto(cat))
	if r.Kind != bot.KindNotLeaf || !strings.Contains(r.FullText(), "does not look like a leaf") || !strings.Contains(r.FullText(), "one leaf, filling most") {
		t.Fatalf("reply %v", r)
	}
	if r.Image != nil || strings.Contains(r.FullText(), "Most likely") || strings.Contains(r.FullText(), "What to do") {
		t.Errorf("a non-leaf must not be diagnosed: %v", r)
	}
	a, err := f.store.GetAnalysis(context.Background(), hashOf(cat), "contract-v1")
	if err != nil || !a.Rejected || a.NotLeaf != 0.98 {
		t.Fatalf("stored analysis %+v %v", a, err)
	}
	// From the cache the verdict is the same, and /history says so.
	if again := f.photo("c1", bytesPhoto(cat)); again.Kind != bot.KindNotLeaf || f.inferences() != 1 {
		t.Errorf("cached reply %v after %v inferences", again, f.inferences())
	}
	if h := f.send(private("c1"), bot.Sender{ID: "u-c1"}, "/history", nil); len(h) != 1 || !strings.Contains(h[0].Text, "not a leaf") {
		t.Errorf("/history: %v", h)
	}
}
