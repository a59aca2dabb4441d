package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/adapters/telegram"
	"github.com/cropshield/cropshield/store"
)

const cmdTestToken = "7301234567:AAGz-cmdTestTokenNeverPrinted_123"

func TestTelegramOptions(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(cmdTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		enabled bool
		usage   bool
	}{
		{"not configured", nil, false, false},
		{"token flag", []string{"--telegram-token", cmdTestToken}, true, false},
		{"token file, newline trimmed", []string{"--telegram-token-file", tokenFile}, true, false},
		{"both", []string{"--telegram-token", cmdTestToken, "--telegram-token-file", tokenFile}, false, true},
		{"empty file", []string{"--telegram-token-file", empty}, false, true},
		{"missing file", []string{"--telegram-token-file", filepath.Join(dir, "nope")}, false, true},
		{"webhook without token", []string{"--telegram-webhook-url", "https://bot.example/hook"}, false, true},
		{"bad group photos", []string{"--telegram-token", cmdTestToken, "--telegram-group-photos", "some"}, false, true},
		{"all group photos", []string{"--telegram-token", cmdTestToken, "--telegram-group-photos", "all"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c telegramConfig
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			c.register(fs)
			if err := parseFlags(fs, tt.args, io.Discard); err != nil {
				t.Fatal(err)
			}
			opts, enabled, err := c.options()
			if tt.usage != errors.Is(err, errUsage) || enabled != tt.enabled {
				t.Fatalf("options() = enabled %v, %v; want enabled %v, usage error %v", enabled, err, tt.enabled, tt.usage)
			}
			if err != nil && strings.Contains(err.Error(), cmdTestToken) {
				t.Errorf("error shows the token: %v", err)
			}
			if enabled && opts.Token != cmdTestToken {
				t.Errorf("token %q", opts.Token)
			}
		})
	}
}

// TestTelegramTokenNeverPrinted: a token from the environment is used but -h does not show it.
func TestTelegramTokenNeverPrinted(t *testing.T) {
	t.Setenv("CROPSHIELD_TELEGRAM_TOKEN", cmdTestToken)
	var c telegramConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.register(fs)
	var out bytes.Buffer
	if err := parseFlags(fs, []string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if strings.Contains(out.String(), cmdTestToken) || !strings.Contains(out.String(), "telegram-token") {
		t.Errorf("help output shows the token or no Telegram flags:\n%s", out.String())
	}
	if _, enabled, err := c.options(); !enabled || err != nil || c.token != cmdTestToken {
		t.Errorf("token from the environment not used: %v %v", enabled, err)
	}
}

func TestLogAdapterError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: getUpdates: Conflict: terminated by other getUpdates request", telegram.ErrConflict), "Stop the other instance"},
		{fmt.Errorf("%w: getMe: Unauthorized", telegram.ErrUnauthorized), "token was refused"},
		{errors.New("disk on fire"), "adapter stopped with an error"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		logAdapterError(slog.New(slog.NewTextHandler(&buf, nil)), "telegram", tt.err)
		if !strings.Contains(buf.String(), tt.want) {
			t.Errorf("%v: log %q, want %q", tt.err, buf.String(), tt.want)
		}
	}
}

// miniTelegram is the least of the Bot API that serve needs to answer /help in a private chat.
// getMe waits for meGate to close when it is not nil (a platform slow to reach).
type miniTelegram struct {
	srv  *httptest.Server
	mu   sync.Mutex
	sent []string
	got  chan struct{}
}

func newMiniTelegram(t *testing.T, meGate <-chan struct{}) *miniTelegram {
	m := &miniTelegram{got: make(chan struct{}, 10)}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, ok := strings.CutPrefix(r.URL.Path, "/bot"+cmdTestToken+"/")
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
			return
		}
		_ = r.ParseForm()
		switch method {
		case "getMe":
			if meGate != nil {
				select {
				case <-meGate:
				case <-r.Context().Done():
					return
				}
			}
			_, _ = io.WriteString(w, `{"ok":true,"result":{"id":7301234567,"is_bot":true,"first_name":"CropShield","username":"CropShieldTestBot"}}`)
		case "deleteWebhook":
			_, _ = io.WriteString(w, `{"ok":true,"result":true}`)
		case "getUpdates":
			if r.PostForm.Get("offset") == "" {
				_, _ = io.WriteString(w, `{"ok":true,"result":[{"update_id":1,"message":{"message_id":9,"date":1700000000,`+
					`"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"Amina","language_code":"en"},"text":"/help"}}]}`)
				return
			}
			<-r.Context().Done() // a long poll with nothing new, until serve stops
		case "sendMessage":
			m.mu.Lock()
			m.sent = append(m.sent, r.PostForm.Get("text"))
			m.mu.Unlock()
			m.got <- struct{}{}
			_, _ = io.WriteString(w, `{"ok":true,"result":{"message_id":10,"date":1700000001,"chat":{"id":5,"type":"private"}}}`)
		default:
			_, _ = io.WriteString(w, `{"ok":true,"result":true}`)
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// TestServeTelegram: with a token, serve runs the Telegram channel next to the web chat: it is
// in /healthz, answers a private /help, leaves the inbox empty at shutdown, and never logs the
// token.
func TestServeTelegram(t *testing.T) {
	tg := newMiniTelegram(t, nil)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(cmdTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "data", "cropshield.db")
	c := testServeConfig(t, db)
	c.telegram = telegramConfig{tokenFile: tokenFile, api: tg.srv.URL, groupPhotos: "addressed", minPhotoSide: 320, albumWait: time.Second}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	base, stop := launchServe(t, c, log)
	<-tg.got
	waitStarted(t, base+"/healthz") // Telegram answered: open; the web chat opens on its own
	if code, body := get(t, browser(t), base+"/healthz"); code != 200 || !strings.Contains(string(body), "telegram: running") {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	tg.mu.Lock()
	sent := tg.sent
	tg.mu.Unlock()
	if len(sent) == 0 || !strings.Contains(sent[0], "Photograph ONE leaf") {
		t.Errorf("answer to /help: %q", sent)
	}
	st, err := store.Open(context.Background(), db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if p, err := st.PendingInbox(context.Background(), "telegram"); err != nil || len(p) != 0 {
		t.Errorf("inbox after shutdown: %d, %v", len(p), err)
	}
	if off, _ := st.InboxOffset(context.Background(), "telegram"); off != 2 {
		t.Errorf("offset %d, want 2", off)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "cmdTestTokenNeverPrinted") {
		t.Error("the token is in the log")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestHealthzStartingUntilChannelOpen: /healthz is 503 with "telegram: starting" while the Bot
// API has not answered getMe (the channel is not open on the intake yet), and 200 once it is: a
// supervisor or load balancer that waits for 200 sends traffic only to a replica whose channels
// take messages.
func TestHealthzStartingUntilChannelOpen(t *testing.T) {
	gate := make(chan struct{})
	tg := newMiniTelegram(t, gate)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(cmdTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testServeConfig(t, filepath.Join(t.TempDir(), "data", "cropshield.db"))
	c.telegram = telegramConfig{tokenFile: tokenFile, api: tg.srv.URL, groupPhotos: "addressed", minPhotoSide: 320, albumWait: time.Second}
	base, stop := launchServe(t, c, slog.New(slog.DiscardHandler))
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	hc := browser(t)
	code, body := get(t, hc, base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "telegram: starting") {
		t.Errorf("/healthz before getMe answered: %d %s, want 503 telegram: starting", code, body)
	}
	close(gate)
	for { // the channel opens once getMe is answered; the test's deadline bounds the wait
		code, body = get(t, hc, base+"/healthz")
		if code == http.StatusOK {
			break
		}
		if !strings.Contains(string(body), "starting") {
			t.Fatalf("/healthz: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(body), "telegram: running") || !strings.Contains(string(body), "webchat: running") {
		t.Errorf("/healthz once open: %s", body)
	}
	<-tg.got // the /help waiting in getUpdates is answered
}
