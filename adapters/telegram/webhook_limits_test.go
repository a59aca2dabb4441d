package telegram_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/adapters/telegram"
)

// startWebhook starts the adapter in webhook mode on a free 127.0.0.1 port and waits until it
// has set its webhook, whose URL it returns.
func startWebhook(t *testing.T) (*env, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := "http://" + ln.Addr().String() + "/telegram/webhook"
	e := newEnv(t, func(o *telegram.Options) { o.WebhookURL, o.WebhookListener = hook, ln })
	e.start()
	e.api.waitFor(t, "setWebhook", func() bool { return e.api.hookURL == hook })
	return e, hook
}

// TestWebhookRefusesOversizedHeaders: the webhook server bounds a request's headers (Telegram
// sends a handful); 64 KiB of them get 431, not a handler.
func TestWebhookRefusesOversizedHeaders(t *testing.T) {
	e, hook := startWebhook(t)
	req, err := http.NewRequest(http.MethodPost, hook, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: %s, want 431", resp.Status)
	}
	e.stop()
}
