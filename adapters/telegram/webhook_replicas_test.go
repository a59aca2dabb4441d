package telegram_test

import (
	"bytes"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/adapters/telegram"
)

// TestWebhookReplicasShareTheSecret: several replicas behind one load balancer set the same
// webhook (one public URL) with the same secret_token, derived from the bot token, so an update
// routed to any of them is taken, not only by the one that called setWebhook last; a replica
// that stops leaves the webhook set for the others; the secret is neither the token nor logged.
func TestWebhookReplicasShareTheSecret(t *testing.T) {
	first, hook := startWebhook(t)
	_, secret1, _ := first.api.webhook()

	// A second replica: the same bot, the same public URL, its own listener and store.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr2 := "http://" + ln.Addr().String() + "/telegram/webhook"
	second := newEnv(t, func(o *telegram.Options) {
		o.APIEndpoint, o.WebhookURL, o.WebhookListener = first.api.URL(), hook, ln
	})
	second.start()
	first.api.waitFor(t, "the second setWebhook", func() bool {
		n := 0
		for _, c := range first.api.calls {
			if c == "setWebhook" {
				n++
			}
		}
		return n == 2
	})
	url, secret, _ := first.api.webhook()
	if url != hook || secret != secret1 {
		t.Errorf("the second replica set the webhook to %q with another secret (same: %v); want %q with the same", url, secret == secret1, hook)
	}
	if len(secret) < 32 || strings.Contains(secret, tokenPart) || strings.Contains(testToken, secret) {
		t.Fatalf("secret_token of %d characters, or the token itself", len(secret))
	}

	post := func(to string, chat int64, text string) int {
		t.Helper()
		body := first.api.update(first.text(privateChat(chat), farmer(chat), text))
		req, err := http.NewRequest(http.MethodPost, to, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret) // what Telegram sends: the last setWebhook's
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	answered := func(chat int64) {
		t.Helper()
		first.api.waitFor(t, "the /help answer", func() bool { return slices.ContainsFunc(first.api.sentToLocked(chat), first.isHelp) })
	}
	for i, to := range []string{hook, addr2} { // the load balancer routes to either
		chat := int64(61 + i)
		if got := post(to, chat, "/help"); got != http.StatusOK {
			t.Fatalf("replica %d answered %d to an update with the webhook's secret, want 200", i+1, got)
		}
		answered(chat)
	}

	// The second replica stops (a deploy, a scale-down): the webhook stays, the first takes on.
	second.stop()
	if url, s, _ := first.api.webhook(); url != hook || s != secret {
		t.Errorf("after a replica stopped the webhook is %q (secret kept: %v); want it left as it was", url, s == secret)
	}
	if n := first.api.countCalls("deleteWebhook"); n != 0 {
		t.Errorf("deleteWebhook called %d times", n)
	}
	if got := post(hook, 63, "/help"); got != http.StatusOK {
		t.Fatalf("the remaining replica answered %d, want 200", got)
	}
	answered(63)
	first.stop()

	sink.mu.Lock()
	logged := strings.Contains(sink.buf.String(), secret)
	sink.mu.Unlock()
	if logged {
		t.Error("the webhook's secret_token appears in the log")
	}
}
