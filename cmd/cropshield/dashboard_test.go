package main

import (
	"archive/zip"
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/cropshield/cropshield/internal/browsertest"
)

// lockedBuffer collects serve's log for a failing test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServeAsking runs `cropshield serve` in-process with the web chat and the review dashboard
// on free 127.0.0.1 ports, over an existing database, with serve's --ask-crop-below (0: the
// contract model's photos are diagnosed without asking their crop) and mods applied to its
// configuration (a replica's name, say). It returns once the web chat takes messages (/healthz:
// ready only says the listener is up).
func startServeAsking(t *testing.T, db string, askCropBelow float64, mods ...func(*serveConfig)) (chatURL, reviewURL string) {
	t.Helper()
	logs := &lockedBuffer{}
	c := testServeConfig(t, db)
	c.askCropBelow = askCropBelow
	for _, m := range mods {
		m(&c)
	}
	chat, review := make(chan string, 1), make(chan string, 1)
	c.ready = func(a string) { chat <- a }
	c.review = reviewConfig{addr: "127.0.0.1:0", ready: func(a string) { review <- a }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, c, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	for chatURL == "" || reviewURL == "" {
		select {
		case a := <-chat:
			chatURL = "http://" + a
		case a := <-review:
			reviewURL = "http://" + a
		case err := <-done:
			t.Fatalf("serve stopped early: %v\n%s", err, logs)
		}
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs)
		}
	})
	waitStarted(t, chatURL+"/healthz")
	return chatURL, reviewURL
}

// leafPhoto draws a leaf; seed makes distinct photos.
func leafPhoto(t *testing.T, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 800, 600))
	for y := range 600 {
		for x := range 800 {
			c := color.RGBA{228, 226, 218, 255}
			dx, dy := float64(x-400)/340, float64(y-300)/220
			if dx*dx+dy*dy < 1 {
				c = color.RGBA{uint8(40 + seed*20), uint8(100 + (x/5+y/9+seed*13)%80), 40, 255}
				if (x/23+y/17+seed)%7 == 0 {
					c = color.RGBA{120, 80, 30, 255}
				}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 88}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// staffPassword is the agent alice's password in the browser tests.
const staffPassword = "browser test passphrase"

// browserWorkflow is a real `serve` (contract model) over a new database with the staff agent
// "alice", and headless Chromium with one tab for the web chat and one for the dashboard.
type browserWorkflow struct {
	chatTab, reviewTab context.Context
	chatURL, reviewURL string
}

// startBrowserWorkflow starts it, with serve's --ask-crop-below askCropBelow (0: no crop
// question); everything stops at the test's end, or after 3 minutes (a safety net, not a
// measurement).
func startBrowserWorkflow(t *testing.T, askCropBelow float64) browserWorkflow {
	t.Helper()
	browsertest.Exe(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	db := filepath.Join(t.TempDir(), "data", "cropshield.db")
	var out bytes.Buffer
	must(t, "staff add", staffCmd(ctx, []string{"add", "alice", "--role", "agent", "--db", db}, strings.NewReader(staffPassword+"\n"), &out, io.Discard))
	chatURL, reviewURL := startServeAsking(t, db, askCropBelow)
	bctx := browsertest.Start(t, ctx, 1280, 900)
	reviewTab, closeReview := chromedp.NewContext(bctx)
	t.Cleanup(closeReview)
	return browserWorkflow{chatTab: bctx, reviewTab: reviewTab, chatURL: chatURL, reviewURL: reviewURL}
}

// TestDashboardInBrowser drives the whole review workflow in headless Chromium against the real
// `serve` (contract model): farmers' photos sent in the web chat appear in the dashboard; an
// agent logs in, opens the conversation and sees the overlays, corrects a diagnosis (which the
// farmer's /history then shows), replies (the reply arrives in the open web chat page) and
// downloads the dataset.
func TestDashboardInBrowser(t *testing.T) {
	b := startBrowserWorkflow(t, 0)
	chatTab, reviewTab, chatURL, reviewURL, password := b.chatTab, b.reviewTab, b.chatURL, b.reviewURL, staffPassword

	// A farmer sends two leaves and a file that is not a photo in the web chat.
	dir := t.TempDir()
	files := map[string][]byte{"leaf1.jpg": leafPhoto(t, 1), "leaf2.jpg": leafPhoto(t, 2), "notes.jpg": []byte("shopping list")}
	for name, data := range files {
		must(t, "write "+name, os.WriteFile(filepath.Join(dir, name), data, 0o600))
	}
	must(t, "open the web chat", chromedp.Do(chatTab, chromedp.Navigate(chatURL+"/"), chromedp.WaitVisible(chromedp.ID("composer"))))
	for i, name := range []string{"leaf1.jpg", "leaf2.jpg", "notes.jpg"} {
		must(t, "upload "+name, chromedp.Do(chatTab, chromedp.SetUploadFiles(chromedp.ID("photo"), []string{filepath.Join(dir, name)})))
		want := []string{`.msg.bot.diagnosis img`, `.msg.bot.diagnosis img`, `.msg.bot.error`}[i]
		count := []int{1, 2, 1}[i]
		browsertest.Do(t, chatTab, "reply to "+name, browsertest.Poll(`document.querySelectorAll("`+want+`").length >= `+strconv.Itoa(count)))
	}

	// The agent logs in and finds the conversation, flagged for attention.
	must(t, "open the dashboard", chromedp.Do(reviewTab, chromedp.Navigate(reviewURL+"/"), chromedp.WaitVisible(chromedp.ID("password"))))
	must(t, "fill the login form", chromedp.Do(reviewTab,
		chromedp.SendKeys(chromedp.ID("name"), "alice"), chromedp.SendKeys(chromedp.ID("password"), password)))
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.ID("login"))); err != nil {
		t.Fatalf("log in: %v", err)
	}
	row := browsertest.Do(t, reviewTab, "conversation row", chromedp.Text(chromedp.CSS("table.conversations tbody tr")))
	if !strings.Contains(row, "Web visitor") || !strings.Contains(row, "webchat") || !strings.Contains(row, "needs attention") {
		t.Fatalf("conversation row %q", row)
	}

	// The thread shows the photos with their overlays and top-3.
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.CSS("a.conv"))); err != nil {
		t.Fatalf("open the conversation: %v", err)
	}
	browsertest.Do(t, reviewTab, "overlays loaded", browsertest.Poll(`(() => { const o = [...document.querySelectorAll("img.overlay")];
		return o.length === 2 && o.every(i => i.complete && i.naturalWidth >= 600); })()`))
	if n := browsertest.Do(t, reviewTab, "top-3 entries", chromedp.Evaluate[int](`document.querySelectorAll("ol.top3 li").length`)); n != 6 {
		t.Errorf("top-3 entries: %d, want 6", n)
	}

	// Correct the first photo's diagnosis.
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.CSS("a.photo-link"))); err != nil {
		t.Fatalf("open the photo: %v", err)
	}
	href := browsertest.Do(t, reviewTab, "photo URL", chromedp.Location())
	hash := strings.TrimPrefix(strings.SplitN(href, "?", 2)[0], reviewURL+"/photos/")
	other := browsertest.Do(t, reviewTab, "another class", chromedp.Evaluate[string](
		`[...document.querySelectorAll("#class option")].map(o => o.value).find(v => v !== document.querySelector("#class").value)`))
	must(t, "choose the class", chromedp.Do(reviewTab, chromedp.SetValue(chromedp.ID("class"), other)))
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.ID("correct"))); err != nil {
		t.Fatalf("save the correction: %v", err)
	}
	verdict := browsertest.Do(t, reviewTab, "verdict", chromedp.Text(chromedp.CSS("p.verdict")))
	if !strings.Contains(verdict, "Corrected to") || !strings.Contains(verdict, "by alice") {
		t.Fatalf("verdict %q", verdict)
	}

	// Reply to the farmer from the thread.
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.ID("back"))); err != nil {
		t.Fatalf("back to the thread: %v", err)
	}
	const reply = "Our agronomist looked at your leaf: please remove the spotted leaves and keep the plants dry."
	must(t, "type the reply", chromedp.Do(reviewTab, chromedp.SendKeys(chromedp.ID("reply-text"), reply)))
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Click(chromedp.ID("reply-send"))); err != nil {
		t.Fatalf("send the reply: %v", err)
	}
	if got := browsertest.Do(t, reviewTab, "staff message", chromedp.Text(chromedp.CSS("li.item.staff"))); !strings.Contains(got, reply) || !strings.Contains(got, "staff: alice") {
		t.Fatalf("staff message in the thread: %q", got)
	}
	browsertest.Screenshot(t, reviewTab, "dashboard-thread.png")
	must(t, "statistics", chromedp.Do(reviewTab, chromedp.Navigate(reviewURL+"/stats"), chromedp.WaitVisible(chromedp.CSS("figure.chart svg rect"))))
	browsertest.Screenshot(t, reviewTab, "dashboard-stats.png")
	must(t, "conversations", chromedp.Do(reviewTab, chromedp.Navigate(reviewURL+"/conversations"), chromedp.WaitVisible(chromedp.CSS("a.conv"))))
	browsertest.Screenshot(t, reviewTab, "dashboard-list.png")

	// The reply arrives in the farmer's open web chat page (it polls its outbox).
	browsertest.Do(t, chatTab, "staff reply in the web chat", browsertest.Poll(`[...document.querySelectorAll(".msg.staff")].some(m => m.textContent.includes("agronomist looked at your leaf"))`))
	// The farmer's /history shows the corrected label.
	must(t, "ask /history", chromedp.Do(chatTab, chromedp.SendKeys(chromedp.ID("text"), "/history"), chromedp.Click(chromedp.ID("send"))))
	browsertest.Do(t, chatTab, "/history answer", browsertest.Poll(`[...document.querySelectorAll(".msg.bot.command")].some(m => m.textContent.includes("checked by our support team"))`))
	browsertest.Screenshot(t, chatTab, "webchat.png")

	// Export the dataset: a real download.
	dl := t.TempDir()
	events := true
	_, err := chromedp.CallBrowser(reviewTab, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dl, EventsEnabled: &events})
	must(t, "allow downloads", err)
	if _, err := chromedp.RunResponse(reviewTab, chromedp.Navigate(reviewURL+"/export")); err != nil {
		t.Fatalf("open the export page: %v", err)
	}
	progress := chromedp.BrowserEvents(reviewTab, cdpbrowser.DownloadProgress)
	must(t, "click the dataset link", chromedp.Do(reviewTab, chromedp.Click(chromedp.ID("export-dataset"))))
	var file string
	for ev, err := range progress {
		must(t, "download", err)
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("the download was cancelled")
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			file = filepath.Join(dl, ev.GUID)
			break
		}
	}
	zr, err := zip.OpenReader(file)
	must(t, "open the downloaded zip", err)
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := "staff-labels/" + other + "/" + hash + ".jpg"
	found := false
	for _, n := range names {
		found = found || n == want
	}
	if !found {
		t.Fatalf("dataset zip has %v, want %s", names, want)
	}
}
