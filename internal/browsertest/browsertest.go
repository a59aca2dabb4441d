// Package browsertest starts Debian's headless Chromium for tests of CropShield's pages, with its
// network limited to 127.0.0.1, and offers the few actions those tests share.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian installs Chromium.
const Path = "/usr/bin/chromium"

// Exe returns Chromium's path, or skips the test where it is not installed (except under CI,
// where a missing browser is a broken install step).
func Exe(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		msg := Path + " is absent: install Debian's chromium (apt-get install chromium) to run the browser tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return Path
}

// Start starts headless Chromium with a fresh profile and a window of width x height CSS
// pixels, bound to ctx and stopped at the test's end. Every address but loopback goes to a proxy
// that does not exist. A tab in the background keeps its timers (a page that polls while another
// tab is in front, as the web chat does in the workflow tests).
func Start(t testing.TB, ctx context.Context, width, height int) context.Context {
	t.Helper()
	exe := Exe(t)
	profile, err := os.MkdirTemp("", "cropshield-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("proxy-server", "127.0.0.1:9"), // loopback is never proxied
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		// Chromium's helpers may write in the profile for a moment after the browser exits.
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("profile %s not removed: %v", profile, err)
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	return bctx
}

// Do runs an action that returns a value and fails the test on an error.
func Do[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Steps runs actions without a value and fails the test on an error.
func Steps(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Load runs steps that navigate (a click on a link or a submit button) and waits for the new
// page, failing the test on an error.
func Load(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Poll waits for a JavaScript condition, checking every 100 ms, for as long as ctx lasts.
func Poll(expr string) chromedp.Action[bool] {
	return chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))
}

// Screenshot saves a full-page PNG in the test's artifact directory.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := Do(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
