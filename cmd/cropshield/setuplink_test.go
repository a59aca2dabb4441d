package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/testenv"
)

// TestServePrintsTheSetupLinkOnce (issue 16, item 13): `serve` over a database without an admin
// prints a one-time setup link on its console (standard output); the link makes the first
// admin once; its token is on the console exactly once and never in the structured log (JSON,
// at debug level), not even after the link was used, used again and tried with a wrong token.
func TestServePrintsTheSetupLinkOnce(t *testing.T) {
	logs, console := &lockedBuffer{}, &lockedBuffer{}
	c := serveConfig{
		modelConfig:  modelConfig{model: testenv.ContractModel(t), ortLib: testenv.ORTLib(t), device: "cpu", threads: 2},
		addr:         "127.0.0.1:0",
		db:           filepath.Join(t.TempDir(), "data", "cropshield.db"),
		threshold:    0.5,
		workers:      1,
		drainTimeout: 10 * time.Second,
	}
	review := make(chan string, 1)
	c.review = reviewConfig{addr: "127.0.0.1:0", ready: func(a string) { review <- a }, console: console}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, c, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	var base string
	select {
	case a := <-review:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("serve stopped early: %v\n%s", err, logs)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	m := regexp.MustCompile(`(http://\S+/setup\?token=)([A-Za-z0-9_-]{43})\s`).FindStringSubmatch(console.String())
	if m == nil || !strings.HasPrefix(m[1], base+"/") {
		t.Fatalf("console %q has no setup link to %s", console, base)
	}
	link, token := m[1]+m[2], m[2]

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (int, string) {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, page := get(link)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if code != http.StatusOK || csrf == nil {
		t.Fatalf("setup link: %d\n%s", code, page)
	}
	form := url.Values{"csrf": {csrf[1]}, "token": {token}, "name": {"ada"}, "password": {"admin pass phrase"}, "password2": {"admin pass phrase"}}
	resp, err := client.PostForm(base+"/setup", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?done=first_admin" {
		t.Fatalf("setup form: %s to %s", resp.Status, resp.Header.Get("Location"))
	}
	if resp, err = client.PostForm(base+"/setup", form); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the link used again: %s, want 404", resp.Status)
	}
	if code, _ := get(base + "/setup?token=" + strings.Repeat("x", 43)); code != http.StatusNotFound {
		t.Errorf("a wrong token: %d, want 404", code)
	}
	if n := strings.Count(console.String(), token); n != 1 {
		t.Errorf("the token is %d times on the console, want once", n)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token is in the structured log:\n%s", logs)
	}
	for _, want := range []string{"a one-time setup link for the first admin was printed on standard output", "first admin account created with the setup link"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if !bytes.Contains([]byte(logs.String()), []byte(`"staff":"ada"`)) {
		t.Error("the log does not name the first admin")
	}
}
