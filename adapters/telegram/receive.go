package telegram

import (
	"bytes"
	"context"
	"crypto/rand"
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

	"github.com/cropshield/cropshield/store"
)

// allowedUpdates: the bot reads messages and the taps of its inline keyboard buttons (no edits,
// channel posts...).
var allowedUpdates = []string{"message", "callback_query"}

// runPolling receives updates with getUpdates until ctx ends. Each batch is saved with its new
// offset before that offset is sent (by the next getUpdates), which is what confirms the batch
// to Telegram.
func (a *Adapter) runPolling(ctx context.Context, p *pool) error {
	err := a.persist(ctx, "deleteWebhook", func() error {
		_, err := a.call(ctx, 0, "deleteWebhook", retryIdempotent, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
			return api.Request(tgbotapi.DeleteWebhookConfig{})
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("telegram: remove the webhook before polling: %w", err)
	}
	offset, err := a.opts.Inbox.InboxOffset(ctx, platform)
	if err != nil {
		return fmt.Errorf("telegram: read the inbox offset: %w", err)
	}
	if err := a.resume(ctx); err != nil {
		return err
	}
	timeout := max(1, int(a.opts.PollTimeout/time.Second))
	conflicts, failures, quick := 0, 0, 0
	for {
		if err := p.waitSpace(ctx, a.opts.MaxQueued); err != nil {
			return nil
		}
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
		keep := a.keep(all)
		// Once received the batch is saved even if ctx just ended: it is handled at the next
		// start instead of being fetched again.
		if err := a.opts.Inbox.SaveInbox(context.WithoutCancel(ctx), platform, inboxUpdates(keep), next); err != nil {
			a.log.Error("telegram: cannot save received updates; not confirming them (Telegram sends them again)", "err", err)
			if sleep(ctx, a.opts.RetryDelay) != nil {
				return nil
			}
			continue
		}
		offset = next
		a.accept(keep)
	}
}

// runWebhook serves the webhook until ctx ends. The listener is up before setWebhook, so the
// first delivery finds it.
func (a *Adapter) runWebhook(ctx context.Context, p *pool) error {
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // never fails (crypto/rand panics rather than return an error)
	secret := hex.EncodeToString(raw[:])
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
	mux.Handle("POST "+path, a.webhookHandler(secret, p))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
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
	if err := a.resume(ctx); err != nil {
		return err
	}
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

// webhookHandler takes one update per request: 401 without the secret token, 200 once the
// update is saved in the inbox (or is not for us), 5xx when it could not be saved (Telegram
// delivers it again).
func (a *Adapter) webhookHandler(secret string, p *pool) http.Handler {
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
		if !a.wanted(up.Message) {
			w.WriteHeader(http.StatusOK)
			return
		}
		if err := p.waitSpace(r.Context(), a.opts.MaxQueued); err != nil {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		u := update{id: int64(up.UpdateID), raw: raw, msg: up.Message}
		if err := a.opts.Inbox.SaveInbox(r.Context(), platform, []store.InboxUpdate{{ID: u.id, Data: raw}}, 0); err != nil {
			a.log.Error("telegram webhook: cannot save the update; Telegram will deliver it again", "err", err)
			http.Error(w, "cannot save the update", http.StatusInternalServerError)
			return
		}
		a.accept([]update{u})
		w.WriteHeader(http.StatusOK)
	})
}
