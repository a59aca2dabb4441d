package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// ctxClient binds the library's requests (which v5.5.1 makes without a context) to one, and
// redacts the token from transport errors (their messages hold the request URL).
type ctxClient struct {
	ctx   context.Context
	c     *http.Client
	token string
}

func (d ctxClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(req.WithContext(d.ctx))
	if err != nil {
		return nil, redact(err, d.token)
	}
	return resp, nil
}

// api returns a copy of the library's client whose requests are bound to ctx.
func (a *Adapter) api(ctx context.Context) *tgbotapi.BotAPI {
	b := *a.base
	b.Client = ctxClient{ctx: ctx, c: a.opts.HTTPClient, token: a.opts.Token}
	return &b
}

// redactedError is an error whose message had the token replaced.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

const tokenMark = "<token>"

// redact removes the token from err: from a *url.Error's URL (in place: the error is fresh from
// http.Client.Do and ours alone) and, as a last resort, from the message.
func redact(err error, token string) error {
	if err == nil || token == "" {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = strings.ReplaceAll(ue.URL, token, tokenMark)
	}
	if msg := err.Error(); strings.Contains(msg, token) {
		return &redactedError{msg: strings.ReplaceAll(msg, token, tokenMark), err: err}
	}
	return err
}

// retryPolicy says which failures call retries.
type retryPolicy int

const (
	// retryIdempotent: 429s until ctx ends; network errors and 5xx Options.Retries times.
	retryIdempotent retryPolicy = iota
	// retrySend: 429s until ctx ends; network errors only when the request surely never left
	// (the connection could not be made): a message must not be delivered twice.
	retrySend
	// retryFlood: 429s only (getUpdates: the polling loop handles the rest).
	retryFlood
)

// call runs one Bot API request. It waits out flood-control pauses (the chat's, if chat is not
// 0, and the bot's), retries as policy says, and returns errors that wrap ErrAPI (and
// ErrFileTooBig: apiError), ErrUnauthorized, ErrConflict or the transport error, never holding
// the token.
func (a *Adapter) call(ctx context.Context, chat int64, method string, policy retryPolicy,
	fn func(*tgbotapi.BotAPI) (*tgbotapi.APIResponse, error)) (*tgbotapi.APIResponse, error) {
	timeout := a.opts.RequestTimeout
	if method == "getUpdates" {
		timeout += a.opts.PollTimeout
	}
	failures := 0
	for {
		if err := a.flood.wait(ctx, chat); err != nil {
			return nil, fmt.Errorf("telegram %s: waiting out flood control: %w", method, err)
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		resp, err := fn(a.api(rctx))
		cancel()
		if err == nil {
			return resp, nil
		}
		err = redact(err, a.opts.Token)
		var te *tgbotapi.Error
		transient := false
		switch {
		case errors.As(err, &te) && (te.Code == http.StatusTooManyRequests || te.RetryAfter > 0):
			wait := retryAfter(te)
			global := a.flood.pause(chat, wait)
			a.log.Warn("telegram: flood control: waiting", "method", method, "chat", chat, "retry_after", wait, "whole_bot", global)
			continue
		case errors.As(err, &te) && te.Code == http.StatusUnauthorized:
			return nil, fmt.Errorf("%w: %s: %w", ErrUnauthorized, method, err)
		case errors.As(err, &te) && te.Code == http.StatusConflict:
			return nil, fmt.Errorf("%w: %s: %w", ErrConflict, method, err)
		case errors.As(err, &te) && te.Code >= 500:
			transient = policy == retryIdempotent
		case errors.As(err, &te):
			return nil, apiError(method, te, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("telegram %s: %w", method, err)
		case policy == retryIdempotent:
			transient = true
		case policy == retrySend:
			var oe *net.OpError
			transient = errors.As(err, &oe) && oe.Op == "dial"
		}
		if !transient || failures >= a.opts.Retries {
			if te != nil {
				return nil, apiError(method, te, err)
			}
			return nil, fmt.Errorf("telegram %s: %w", method, err)
		}
		delay := min(a.opts.RetryDelay<<failures, 30*time.Second)
		failures++
		a.log.Warn("telegram: request failed, retrying", "method", method, "chat", chat, "attempt", failures, "in", delay, "err", err)
		if err := sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("telegram %s: %w", method, err)
		}
	}
}

// persist runs a start-up request (getMe, deleteWebhook, setWebhook) until it succeeds, ctx
// ends, or Telegram refuses it for good: a machine whose network comes up after CropShield, or a
// Telegram outage, only delays the channel.
func (a *Adapter) persist(ctx context.Context, what string, fn func() error) error {
	for {
		err := fn()
		var te *tgbotapi.Error
		unreachable := err != nil && ctx.Err() == nil &&
			(!errors.As(err, &te) && !errors.Is(err, ErrAPI) || te != nil && te.Code >= 500)
		if !unreachable {
			return err
		}
		delay := min(a.opts.RetryDelay<<a.opts.Retries, 30*time.Second)
		a.log.Warn("telegram: cannot reach the Bot API; retrying", "request", what, "in", delay, "err", err)
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("telegram %s: %w", what, err)
		}
	}
}

// apiErrors are the refusals the Bot API tells apart only by their description (all 400 Bad
// Request): the one place their text is read. Everything else checks the sentinel.
var apiErrors = []struct {
	description string // a part of the description, lower case
	err         error
}{
	{"too big", ErrFileTooBig}, // "Bad Request: file is too big" (getFile)
}

// apiError wraps err, the Bot API's refusal te of method, with ErrAPI and, where the
// description names one, the refusal's own sentinel.
func apiError(method string, te *tgbotapi.Error, err error) error {
	desc := strings.ToLower(te.Message)
	for _, e := range apiErrors {
		if strings.Contains(desc, e.description) {
			return fmt.Errorf("%w: %w: %s: %w", ErrAPI, e.err, method, err)
		}
	}
	return fmt.Errorf("%w: %s: %w", ErrAPI, method, err)
}

// retryAfter is how long a 429 asks to wait (a second if it does not say).
func retryAfter(te *tgbotapi.Error) time.Duration {
	if te.RetryAfter > 0 {
		return time.Duration(te.RetryAfter) * time.Second
	}
	return time.Second
}

func decodeResult(resp *tgbotapi.APIResponse, v any) error {
	if resp == nil {
		return errors.New("empty response")
	}
	return json.Unmarshal(resp.Result, v)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// floodChatsForBot: this many chats throttled at once means the bot-wide limit (about 30
// messages a second) was hit, so the whole bot pauses too.
const floodChatsForBot = 3

// flood keeps Telegram's flood-control pauses: one for the whole bot, one per chat.
type flood struct {
	now func() time.Time

	mu    sync.Mutex
	bot   time.Time
	chats map[int64]time.Time
}

func newFlood(now func() time.Time) *flood {
	return &flood{now: now, chats: map[int64]time.Time{}}
}

// pause records a 429 of a chat's call (chat 0: a call of the bot as a whole) and reports
// whether the whole bot now waits.
func (f *flood) pause(chat int64, d time.Duration) (wholeBot bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	until := now.Add(d)
	for c, t := range f.chats {
		if !t.After(now) {
			delete(f.chats, c)
		}
	}
	if chat != 0 {
		if until.After(f.chats[chat]) {
			f.chats[chat] = until
		}
		if len(f.chats) < floodChatsForBot {
			return false
		}
	}
	if until.After(f.bot) {
		f.bot = until
	}
	return true
}

// until is when a call for chat may be made.
func (f *flood) until(chat int64) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.bot
	if t := f.chats[chat]; chat != 0 && t.After(u) {
		u = t
	}
	return u
}

// paused tells whether a call for chat would have to wait now.
func (f *flood) paused(chat int64) bool {
	return f.until(chat).After(f.now())
}

// wait blocks until calls for chat may be made, or ctx ends.
func (f *flood) wait(ctx context.Context, chat int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := f.until(chat).Sub(f.now())
		if d <= 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}
