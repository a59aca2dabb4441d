package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/store"
)

type entry struct {
	Seq      uint64 `json:"seq"`
	From     string `json:"from"`
	Kind     string `json:"kind"`
	Text     string `json:"text"`
	ImageURL string `json:"image_url"`
}

// testServeConfig is serve's configuration in the tests: the contract model on the CPU, the web
// chat on a free 127.0.0.1 port, the database db, a threshold every photo of the contract model
// passes, and two workers.
func testServeConfig(t *testing.T, db string) serveConfig {
	t.Helper()
	return serveConfig{
		modelConfig:  modelConfig{model: testenv.ContractModel(t), ortLib: testenv.ORTLib(t), device: "cpu", threads: 2},
		addr:         "127.0.0.1:0",
		db:           db,
		threshold:    0.01,
		workers:      2,
		drainTimeout: 10 * time.Second,
	}
}

// launchServe runs serve with c in-process and returns its listener's URL once ready says the
// listener is up (its channels may still be starting: waitStarted), and stop, which ends serve
// and returns its error (called at cleanup if the test does not).
func launchServe(t *testing.T, c serveConfig, log *slog.Logger) (base string, stop func() error) {
	t.Helper()
	addr := make(chan string, 1)
	c.ready = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, log) }()
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve stopped early: %v", err)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return base, stop
}

// startServe runs `cropshield serve` in-process on a free 127.0.0.1 port and returns once the
// web chat takes messages (/healthz: ready only says the listener is up).
func startServe(t *testing.T) (base string, db string, stop func() error) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "data", "cropshield.db")
	base, stop = launchServe(t, testServeConfig(t, db), slog.New(slog.NewTextHandler(io.Discard, nil)))
	waitStarted(t, base+"/healthz")
	return base, db, stop
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 60 * time.Second}
}

// upload posts a photo (and optional text) like the page does and returns the new entries.
func upload(t *testing.T, c *http.Client, base, name string, photo []byte, text string) []entry {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("text", text)
	if photo != nil {
		w, err := mw.CreateFormFile("photo", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(photo)
	}
	_ = mw.Close()
	resp, err := c.Post(base+"/api/send", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /api/send: %s %s", resp.Status, b)
	}
	var out struct{ Entries []entry }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Entries
}

// botReply is the newest bot entry (the page sends ?after=; the test reads the whole chat).
func botReply(t *testing.T, entries []entry) entry {
	t.Helper()
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].From == "bot" {
			return entries[i]
		}
	}
	t.Fatalf("no bot reply in %+v", entries)
	return entry{}
}

func get(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func metric(t *testing.T, text, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testLeaf is a 1280x960 leaf photo, the size Telegram delivers.
func testLeaf(t *testing.T) []byte { return testenv.LeafJPEG(t, 1280, 960, 0) }

// TestServeWebChatEndToEnd is the README's promise: serve answers a leaf photo in the web chat
// with the top-3 and an overlay, answers the same photo again from the cache (visible in
// /metrics, no second inference), answers bad uploads clearly and keeps serving, and shuts down
// cleanly with everything stored.
func TestServeWebChatEndToEnd(t *testing.T) {
	base, db, stop := startServe(t)
	c := browser(t)

	if code, page := get(t, c, base+"/"); code != 200 || !strings.Contains(string(page), "CropShield") {
		t.Fatalf("GET /: %d", code)
	}
	leaf := testLeaf(t)
	first := botReply(t, upload(t, c, base, "leaf.jpg", leaf, ""))
	if first.Kind != "diagnosis" || !strings.Contains(first.Text, "Most likely diseases:") || first.ImageURL == "" {
		t.Fatalf("first reply %+v", first)
	}
	code, img := get(t, c, base+first.ImageURL)
	if code != 200 {
		t.Fatalf("overlay: %d", code)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(img)); err != nil || cfg.Width != 1024 || cfg.Height != 768 {
		t.Fatalf("overlay %+v %v, want a 1024x768 JPEG", cfg, err)
	}
	second := botReply(t, upload(t, c, base, "forwarded.jpg", leaf, ""))
	if second.Text != first.Text {
		t.Error("the cached answer differs")
	}
	_, m := get(t, c, base+"/metrics")
	if got := metric(t, string(m), "cropshield_inferences_total"); got != 1 {
		t.Errorf("cropshield_inferences_total = %v, want 1", got)
	}
	if got := metric(t, string(m), `cropshield_photo_cache_total{platform="webchat",result="hit"}`); got != 1 {
		t.Errorf("cache hits = %v, want 1", got)
	}
	if !strings.Contains(string(m), `cropshield_analysis_seconds_bucket{stage="inference"`) {
		t.Error("no inference latency histogram in /metrics")
	}

	for _, tc := range []struct {
		name  string
		data  []byte
		reply string
	}{
		{"notes.jpg", []byte("shopping list: seeds, fertilizer\n"), "cannot read this file as a photo"},
		{"big.jpg", append([]byte("\xff\xd8\xff"), make([]byte, 25<<20)...), "too big"},
		{"half.jpg", leaf[:len(leaf)/3], "damaged or incomplete"},
	} {
		r := botReply(t, upload(t, c, base, tc.name, tc.data, ""))
		if r.Kind != "error" || !strings.Contains(r.Text, tc.reply) {
			t.Errorf("%s: reply %+v, want %q", tc.name, r, tc.reply)
		}
	}
	if code, body := get(t, c, base+"/healthz"); code != 200 || !strings.Contains(string(body), "webchat: running") {
		t.Errorf("/healthz after bad input: %d %s", code, body)
	}
	if r := botReply(t, upload(t, c, base, "", nil, "/help")); !strings.Contains(r.Text, "Photograph ONE leaf") {
		t.Errorf("/help: %+v", r)
	}

	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	st, err := store.Open(context.Background(), db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("database after shutdown: %v", err)
	}
	defer st.Close()
	if n, err := st.CountAnalyses(context.Background()); err != nil || n != 1 {
		t.Errorf("analyses stored: %d, %v", n, err)
	}
}
