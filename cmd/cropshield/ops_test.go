package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/store"
)

// startServeOps runs `serve` in-process on 127.0.0.1 with the database db and the changes mod
// makes to its configuration; it returns the address given to ready (the web chat's, or the
// metrics' without a web chat) and a stop function returning serve's error. It returns once
// /healthz there reports no channel starting (ready only says the listener is up); with
// --metrics-addr and a web chat, /healthz is not on addr and the caller waits on its own.
func startServeOps(t *testing.T, db string, logw io.Writer, mod func(*serveConfig)) (addr string, stop func() error) {
	t.Helper()
	c := testServeConfig(t, db)
	c.review.addr = ""
	if mod != nil {
		mod(&c)
	}
	base, stop := launchServe(t, c, slog.New(slog.NewTextHandler(logw, nil)))
	waitStarted(t, base+"/healthz")
	return strings.TrimPrefix(base, "http://"), stop
}

// waitStarted waits until the /healthz at url reports no channel starting (the intake opened
// every channel); the test's deadline bounds the wait.
func waitStarted(t *testing.T, url string) {
	t.Helper()
	for {
		code, body := get(t, http.DefaultClient, url)
		if !strings.Contains(string(body), ": starting") {
			return
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d with a channel starting:\n%s", url, code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeWithoutWebChat(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cropshield.db")
	addr, stop := startServeOps(t, db, io.Discard, func(c *serveConfig) {
		c.ops.webchatOff = true
		c.ops.metricsAddr = "127.0.0.1:0" // takes --addr's place
		c.addr = "127.0.0.1:1"            // not listened on
	})
	base := "http://" + addr
	for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/": 404, "/api/page": 404, "/static/app.js": 404} {
		if got := status(t, base+path); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
	resp, err := http.Post(base+"/api/send", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 && resp.StatusCode != 405 {
		t.Errorf("POST /api/send without a web chat: %s", resp.Status)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeMetricsOnTheirOwnAddress(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cropshield.db")
	metrics := make(chan string, 1)
	web, stop := startServeOps(t, db, io.Discard, func(c *serveConfig) {
		c.ops.metricsAddr = "127.0.0.1:0"
		c.ops.metricsReady = func(a string) { metrics <- a }
	})
	m := <-metrics
	waitStarted(t, "http://"+m+"/healthz")
	for url, want := range map[string]int{
		"http://" + web + "/":        200,
		"http://" + web + "/metrics": 404,
		"http://" + web + "/healthz": 404,
		"http://" + m + "/metrics":   200,
		"http://" + m + "/healthz":   200,
		"http://" + m + "/":          404,
	} {
		if got := status(t, url); got != want {
			t.Errorf("GET %s: %d, want %d", url, got, want)
		}
	}
	// The web chat still answers photos, counted on the metrics listener.
	c := browser(t)
	if r := botReply(t, upload(t, c, "http://"+web, "leaf.jpg", testLeaf(t), "")); r.Kind == "error" {
		t.Fatalf("photo answered with %+v", r)
	}
	_, body := get(t, c, "http://"+m+"/metrics")
	if !bytes.Contains(body, []byte(`cropshield_messages_total{kind="photo",platform="webchat"} 1`)) {
		t.Errorf("metrics do not count the photo:\n%s", grepLines(string(body), "cropshield_messages_total"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestOpsFlags(t *testing.T) {
	parse := func(args []string, env map[string]string) (opsConfig, error) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		var c opsConfig
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		c.register(fs)
		return c, parseFlags(fs, args, io.Discard)
	}
	c, err := parse(nil, nil)
	if err != nil || !c.webchat() || c.metricsAddr != "" || c.policy() != (store.RetentionPolicy{Photos: 90 * 24 * time.Hour, Messages: 365 * 24 * time.Hour}) {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = parse([]string{"--keep-photos", "30d"}, map[string]string{"CROPSHIELD_WEBCHAT": "false",
		"CROPSHIELD_METRICS_ADDR": "127.0.0.1:9090", "CROPSHIELD_KEEP_PHOTOS": "7d", "CROPSHIELD_KEEP_MESSAGES": "forever"})
	if err != nil || c.webchat() || c.metricsAddr != "127.0.0.1:9090" || c.policy() != (store.RetentionPolicy{Photos: 30 * 24 * time.Hour}) {
		t.Fatalf("environment and flags: %+v %v", c, err)
	}
	for _, tc := range []struct {
		in   string
		want days
		ok   bool
	}{
		{"90d", 90, true}, {"365", 365, true}, {"0", 0, true}, {"forever", 0, true}, {" Forever ", 0, true},
		{"-1d", 0, false}, {"ninety", 0, false}, {"90h", 0, false}, {"", 0, false}, {"99999d", 0, false},
	} {
		var d days
		err := d.Set(tc.in)
		if (err == nil) != tc.ok || d != tc.want {
			t.Errorf("days %q: %d %v", tc.in, d, err)
		}
	}
	if _, err := parse([]string{"--keep-messages", "a year"}, nil); !errors.Is(err, errUsage) {
		t.Errorf("bad --keep-messages: %v", err)
	}
}

// seedOld writes, into a database no one holds, a conversation of 400 days ago with a photo and
// one of today.
func seedOld(t *testing.T, db string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := now.Add(-400 * 24 * time.Hour)
	hash := strings.Repeat("ab", 32)
	if err := st.PutAnalysis(ctx, store.Analysis{PhotoHash: hash, ModelVersion: "old", Top: []store.Candidate{{Class: "x", Prob: 1}},
		Overlay: []byte("overlay"), CreatedAt: old}, bytes.Repeat([]byte("p"), 100_000), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendMessages(ctx, []store.Record{
		{Time: old, Platform: "webchat", ChatID: "old", Direction: store.Inbound, Text: "old photo", PhotoHash: hash},
		{Time: old, Platform: "webchat", ChatID: "old", Direction: store.Outbound, Text: "old answer", PhotoHash: hash},
		{Time: now, Platform: "webchat", ChatID: "new", Direction: store.Inbound, Text: "hello"},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestServeSweepsRetentionAtStart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "cropshield.db")
	seedOld(t, db, time.Now())
	swept := make(chan store.SweepReport, 1)
	var logs lockedBuffer
	_, stop := startServeOps(t, db, &logs, func(c *serveConfig) {
		c.ops.keepPhotos, c.ops.keepMessages = defaultKeepPhotos, defaultKeepMessages
		c.ops.swept = func(r store.SweepReport, err error) {
			if err != nil {
				t.Errorf("sweep: %v", err)
			}
			swept <- r
		}
	})
	rep := <-swept
	if rep.Messages != 2 || rep.Photos != 1 || rep.Conversations != 1 {
		t.Errorf("first sweep: %+v", rep)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "retention sweep") || !strings.Contains(logs.String(), "photos=1") {
		t.Errorf("the sweep is not logged:\n%s", logs.String())
	}
	st, err := store.OpenReadOnly(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, _ := st.CountAnalyses(context.Background()); n != 0 {
		t.Errorf("%d analyses left", n)
	}
	if msgs, _ := st.Messages(context.Background(), "webchat", "new", 0, 10); len(msgs) != 1 {
		t.Errorf("today's message: %+v", msgs)
	}
}

// TestBackupWhileEightClientsSendPhotos is the promise: a backup taken through the running
// server while 8 web chat clients send photos opens, passes bbolt's consistency check, and holds
// every message answered before the backup began.
func TestBackupWhileEightClientsSendPhotos(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "cropshield.db")
	addr, stop := startServeOps(t, db, io.Discard, nil)
	base := "http://" + addr
	photos := make([][]byte, 6)
	for i := range photos {
		photos[i] = testenv.LeafJPEG(t, 320, 240, i)
	}
	var mu sync.Mutex
	answered := map[string]bool{} // texts answered so far
	perClient := make([]int, 8)
	stopSending := make(chan struct{})
	twoEach := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			client := browser(t)
			for i := 0; i < 9; i++ { // within the rate limit's burst
				select {
				case <-stopSending:
					return
				default:
				}
				text := fmt.Sprintf("client %d photo %d", c, i)
				r := botReply(t, upload(t, client, base, "leaf.jpg", photos[(c+i)%len(photos)], text))
				if r.Kind == "error" {
					t.Errorf("%s answered with %+v", text, r)
					return
				}
				mu.Lock()
				answered[text] = true
				perClient[c]++
				all := true
				for _, n := range perClient {
					all = all && n >= 2
				}
				mu.Unlock()
				if all {
					once.Do(func() { close(twoEach) })
				}
			}
		})
	}
	<-twoEach
	mu.Lock()
	before := make(map[string]bool, len(answered))
	for k := range answered {
		before[k] = true
	}
	mu.Unlock()
	out := filepath.Join(dir, "backup", "cropshield-backup.db")
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	err := backupCmd(context.Background(), []string{"--db", db, out}, &stdout, io.Discard)
	close(stopSending)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "from the running server") {
		t.Errorf("backup output: %s", stdout.String())
	}
	// The socket is the owner's only, and the copy staged beside the database is gone.
	if fi, err := os.Stat(adminSocket(db)); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("admin socket %v %v, want a socket of mode 0600", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(db), ".*")); len(left) != 0 {
		t.Errorf("left beside the database: %v", left)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckFile(context.Background(), out); err != nil {
		t.Fatalf("bbolt's check of the backup: %v", err)
	}
	ctx := context.Background()
	st, err := store.OpenReadOnly(ctx, out, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	inBackup := map[string]bool{}
	err = st.EachConversation(ctx, store.ConversationFilter{}, func(s store.Summary) error {
		msgs, err := st.Messages(ctx, s.Platform, s.ChatID, 0, 1000)
		if err != nil {
			return err
		}
		texts := map[string]string{} // message id → text
		for _, m := range msgs {
			switch {
			case m.Direction == store.Inbound:
				texts[m.MessageID] = m.Text
			case m.ReplyTo != "" && texts[m.ReplyTo] != "":
				inBackup[texts[m.ReplyTo]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for text := range before {
		if !inBackup[text] {
			missing++
			t.Errorf("answered before the backup, not in it: %q", text)
		}
	}
	t.Logf("%d messages answered before the backup began, %d answered in it, %d missing", len(before), len(inBackup), missing)
}

func TestBackupWithoutServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "cropshield.db")
	seedOld(t, db, time.Now())
	// A socket left by a crashed server does not stand in the way.
	ln, err := net.Listen("unix", adminSocket(db))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	out := filepath.Join(dir, "copy.db")
	var stdout bytes.Buffer
	if err := backupCmd(ctx, []string{"--db", db, out}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "no server running") {
		t.Errorf("output: %s", stdout.String())
	}
	st, err := store.OpenReadOnly(ctx, out, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if msgs, _ := st.Messages(ctx, "webchat", "old", 0, 10); len(msgs) != 2 {
		t.Errorf("backup messages: %+v", msgs)
	}
	st.Close()
	// A writer holding the file without an admin socket: a clear error, nothing written.
	held, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	err = backupCmd(ctx, []string{"--db", db, filepath.Join(dir, "other.db")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "held by a running server") {
		t.Errorf("backup of a held file without a socket: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed backup left a file: %v", err)
	}
	if err := backupCmd(ctx, []string{"--db", db}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("backup without FILE: %v", err)
	}
}

func TestCompactCommand(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "cropshield.db")
	seedOld(t, db, time.Now())
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Sweep(ctx, store.RetentionPolicy{Photos: 90 * 24 * time.Hour, Messages: 365 * 24 * time.Hour}, time.Now()); err != nil {
		t.Fatal(err)
	}
	err = compactCmd(ctx, []string{"--db", db}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "stop 'cropshield serve' first") {
		t.Errorf("compact of a file in use: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(db)
	var stdout bytes.Buffer
	if err := compactCmd(ctx, []string{"--db", db}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(db)
	t.Log(strings.TrimSpace(stdout.String()))
	if after.Size() >= before.Size() {
		t.Errorf("compact: %d → %d bytes", before.Size(), after.Size())
	}
	if err := store.CheckFile(ctx, db); err != nil {
		t.Error(err)
	}
}
