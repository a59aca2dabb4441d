package telegram

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
)

// allowedUpdates: the bot reads messages and the taps of its inline keyboard buttons (no edits,
// channel posts...).
var allowedUpdates = []string{"message", "callback_query"}

// runPolling receives updates with getUpdates until ctx ends. Each batch is accepted by the
// intake with its new offset (both stored in one transaction) before that offset is sent (by the
// next getUpdates), which is what confirms the batch to Telegram. While the intake's queues are
// full, Accept waits and so does polling.
func (a *Adapter) runPolling(ctx context.Context, in *bot.Intake, offset int64) error {
	err := a.persist(ctx, "deleteWebhook", func() error {
		_, err := a.call(ctx, 0, "deleteWebhook", retryIdempotent, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
			return api.Request(tgbotapi.DeleteWebhookConfig{})
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("telegram: remove the webhook before polling: %w", err)
	}
	timeout := max(1, int(a.opts.PollTimeout/time.Second))
	conflicts, failures, quick := 0, 0, 0
	for {
		cfg := tgbotapi.UpdateConfig{Offset: int(offset), Timeout: timeout, AllowedUpdates: allowedUpdates}
		asked := a.opts.Now()
		resp, err := a.call(ctx, 0, "getUpdates", retryFlood, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
			return api.Request(cfg)
		})
		if ctx.Err() != nil {
			return nil
		}
		var raws []json.RawMessage
		if err == nil {
			if derr := decodeResult(resp, &raws); derr != nil {
				err = fmt.Errorf("%w: getUpdates: %w", ErrAPI, derr)
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, ErrUnauthorized):
				return err
			case errors.Is(err, ErrConflict):
				conflicts++
				if conflicts > a.opts.ConflictRetries {
					return fmt.Errorf("%w; stop the other instance (or remove its webhook) and start again", err)
				}
				a.log.Error("telegram: 409 Conflict: another instance is receiving this bot's updates (polling with the same token, or a webhook was set); retrying",
					"consecutive", conflicts, "err", err)
			default:
				a.log.Warn("telegram: getUpdates failed, retrying", "err", err)
			}
			delay := min(a.opts.RetryDelay<<min(failures, 5), 30*time.Second)
			failures++
			if sleep(ctx, delay) != nil {
				return nil
			}
			continue
		}
		conflicts, failures = 0, 0
		if len(raws) == 0 {
			// A server that answers at once instead of holding the long poll would have us spin:
			// pause, longer with each such answer in a row.
			if a.opts.Now().Sub(asked) >= a.opts.PollTimeout/2 {
				quick = 0
				continue
			}
			delay := min(a.opts.EmptyPollDelay<<min(quick, 5), 30*time.Second)
			quick++
			if a.pause(ctx, delay) != nil {
				return nil
			}
			continue
		}
		quick = 0
		all, maxID := a.parseUpdates(raws)
		next := offset
		if maxID >= 0 {
			next = maxID + 1
		}
		msgs, err := a.receive(ctx, all)
		if err == nil {
			err = in.Accept(ctx, bot.Telegram, msgs, next)
		}
		switch {
		case errors.Is(err, bot.ErrStopped) || ctx.Err() != nil:
			return nil // not confirmed: Telegram delivers the batch again after the restart
		case err != nil:
			a.log.Error("telegram: cannot save received updates; not confirming them (Telegram sends them again)", "err", err)
			if sleep(ctx, a.opts.RetryDelay) != nil {
				return nil
			}
			continue
		}
		offset = next
	}
}

// webhookSecretLabel is the message of the HMAC that derives the webhook's secret_token from
// the bot token (webhookSecret).
const webhookSecretLabel = "cropshield telegram webhook secret_token v1"

// webhookSecret is the secret_token of the webhook: HMAC-SHA256 of a fixed label keyed with the
// bot token, in hex (64 of the characters Telegram allows). Every replica of one bot derives the
// same secret without configuration, so whichever replica the load balancer picks accepts the
// update, whichever replica called setWebhook last; a new token gives a new secret; the secret
// tells nothing about the token. It is never logged.
func webhookSecret(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(webhookSecretLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// runWebhook serves the webhook until ctx ends. The listener is up before setWebhook, so the
// first delivery finds it. setWebhook is idempotent (every replica sets the same URL, secret and
// allowed updates), and a stop leaves the webhook set: the other replicas keep receiving.
func (a *Adapter) runWebhook(ctx context.Context, in *bot.Intake) error {
	secret := webhookSecret(a.opts.Token)
	u, _ := url.Parse(a.opts.WebhookURL) // checked by New
	path := u.Path
	if path == "" {
		path = "/"
	}
	ln := a.opts.WebhookListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.opts.WebhookAddr); err != nil {
			return fmt.Errorf("telegram: webhook listener: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+path, a.webhookHandler(secret, in))
	// Telegram posts one update of at most 1 MB per request from its data centres; the answer
	// waits at most for the inbox's fsync and for room in the queue.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: webhookMaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			a.log.Warn("telegram: webhook server shutdown", "err", err)
		}
	}()
	allowed, _ := json.Marshal(allowedUpdates)
	params := tgbotapi.Params{"url": a.opts.WebhookURL, "secret_token": secret, "allowed_updates": string(allowed)}
	err := a.persist(ctx, "setWebhook", func() error {
		_, err := a.call(ctx, 0, "setWebhook", retryIdempotent, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
			return api.MakeRequest("setWebhook", params)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("telegram: set the webhook: %w", err)
	}
	a.log.Info("telegram: webhook set", "listen", ln.Addr().String())
	select {
	case <-ctx.Done():
		return nil
	case err := <-served:
		return fmt.Errorf("telegram: webhook server: %w", err)
	}
}

// maxWebhookBody bounds an update's JSON.
const maxWebhookBody = 1 << 20

// webhookMaxHeaderBytes bounds a webhook request's headers (Telegram sends a handful).
const webhookMaxHeaderBytes = 16 << 10

// webhookHandler takes one update per request: 401 without the secret token, 200 once the
// intake has the update durably (or it is not for us), 503 while the intake is full or stopped
// and 500 when it could not be saved (Telegram delivers it again).
func (a *Adapter) webhookHandler(secret string, in *bot.Intake) http.Handler {
	want := sha256.Sum256([]byte(secret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("X-Telegram-Bot-Api-Secret-Token")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			a.log.Warn("telegram webhook: request without the right secret token refused", "remote", r.RemoteAddr)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			http.Error(w, "cannot read the update", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		up, err := a.base.HandleUpdate(r)
		if err != nil {
			http.Error(w, "not an update", http.StatusBadRequest)
			return
		}
		u := update{id: int64(up.UpdateID), msg: up.Message}
		if up.CallbackQuery != nil {
			u.msg, u.cb = callbackMessage(up.CallbackQuery), up.CallbackQuery
		}
		msgs, err := a.receive(r.Context(), []update{u})
		if err == nil {
			err = in.Accept(r.Context(), bot.Telegram, msgs, 0)
		}
		switch {
		case errors.Is(err, bot.ErrStopped) || errors.Is(err, bot.ErrBusy):
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case err != nil:
			a.log.Error("telegram webhook: cannot save the update; Telegram will deliver it again", "err", err)
			http.Error(w, "cannot save the update", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}
