// Package telegram is CropShield's Telegram channel: it turns Bot API updates into bot.Message
// values for the shared handler and bot.Reply values back into sendPhoto, sendMediaGroup and
// sendMessage calls. It holds no business logic (languages, commands, caching and inference are
// the handler's); it translates, and it makes delivery reliable:
//
//   - Crash safety. Every batch of updates is handed to the intake (bot.Intake.Accept) together
//     with the getUpdates offset that will confirm it; the intake stores both in one transaction
//     before the offset is sent to Telegram, hands the messages to the handler, and hands the
//     ones left at a stop in again at the next start. The handler answers each message once (a
//     delivered-again message gets no second reply, an interrupted one resumes).
//   - Modes. Long polling by default (deleteWebhook first); a webhook when a public URL is set
//     (setWebhook with a secret_token checked on every request, derived from the bot token so
//     that every replica behind a load balancer has the same one; a replica that stops leaves
//     the webhook to the others). A 409 Conflict, another instance receiving this bot's updates,
//     stops Run with ErrConflict.
//   - Flood control. A 429 is waited out for its retry_after, per chat for a chat's calls and
//     for the whole bot otherwise (or when several chats are throttled at once); a reply is
//     retried until its context ends, never dropped.
//   - Work. The intake's bounded pool of workers handles the messages, in order within each chat;
//     when its queues are full polling waits (and a webhook request gets 503).
//   - Photos. The smallest size whose shorter side reaches Options.MinPhotoSide is downloaded,
//     from a URL built from File.FilePath and the configured endpoint; images sent as files
//     (JPEG, PNG, WebP) count as photos; the photos of an album (media group) carry its id
//     (bot.Message.AlbumID) and the intake hands them over as one message.
//   - Groups. Only photos addressed to the bot (a /diagnose caption, an @mention, a reply to the
//     bot) or every photo (GroupPhotosAll), and commands for this bot, reach the handler; other
//     group chatter is neither handled, stored nor logged.
//   - Migrations. When a group is upgraded to a supergroup Telegram gives it a new chat id. The
//     notice of the move (migrate_to_chat_id in the group, migrate_from_chat_id in the
//     supergroup) is recorded with Options.Chats (bot.Moves), which carries the group's language
//     and record over, before its batch is accepted; it never reaches the handler. A reply to the old id that Telegram refuses with
//     migrate_to_chat_id is recorded the same way and sent once more, to the new id.
//   - Secrecy. The bot token is in every request URL; it never appears in an error or a log line
//     of this package (net/url errors are redacted).
package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
)

// Errors of this package, to be checked with errors.Is.
var (
	// ErrConflict: Telegram answered 409 Conflict: another process polls this bot's updates, or
	// a webhook was set behind our back. Two instances must not share a token.
	ErrConflict = errors.New("telegram: another instance is receiving this bot's updates (409 Conflict)")
	// ErrUnauthorized: Telegram refused the token (401).
	ErrUnauthorized = errors.New("telegram: the bot token was refused (401 Unauthorized)")
	// ErrAPI: the Bot API refused a request (a 4xx other than 429, or a failure that was not
	// retried).
	ErrAPI = errors.New("telegram: Bot API error")
	// ErrFileTooBig: getFile refused a file over the Bot API's download limit (20 MB); it comes
	// wrapped with ErrAPI.
	ErrFileTooBig = errors.New("telegram: file too big for the Bot API")
	// ErrConfig: the options are unusable.
	ErrConfig = errors.New("telegram: bad configuration")
)

// GroupPhotos says which photos in groups the bot answers.
type GroupPhotos string

// Group photo policies.
const (
	// GroupPhotosAddressed: photos with a /diagnose caption, an @mention of the bot, or sent as a
	// reply to one of the bot's messages (the default).
	GroupPhotosAddressed GroupPhotos = "addressed"
	// GroupPhotosAll: every photo in the group (the bot must see them: admin or privacy off).
	GroupPhotosAll GroupPhotos = "all"
)

// ParseGroupPhotos parses a GroupPhotos value ("addressed" or "all").
func ParseGroupPhotos(s string) (GroupPhotos, error) {
	switch g := GroupPhotos(strings.ToLower(strings.TrimSpace(s))); g {
	case GroupPhotosAddressed, GroupPhotosAll:
		return g, nil
	}
	return "", fmt.Errorf("%w: group photos %q: want addressed or all", ErrConfig, s)
}

// DefaultAPIEndpoint is Telegram's Bot API server.
const DefaultAPIEndpoint = "https://api.telegram.org"

// MaxDownloadBytes is the Bot API's getFile limit: larger files cannot be downloaded by a bot.
const MaxDownloadBytes = 20 << 20

// Options configure the adapter; zero fields take the defaults in parentheses.
type Options struct {
	// Token is the bot token from @BotFather (required). It is never logged.
	Token string
	// APIEndpoint is the Bot API server's base URL (DefaultAPIEndpoint); a local Bot API server
	// or a test fake goes here. Methods are called at {APIEndpoint}/bot{token}/{method} and files
	// downloaded from {APIEndpoint}/file/bot{token}/{file_path}.
	APIEndpoint string
	// HTTPClient makes the requests (a client of its own). Requests carry their own deadlines.
	HTTPClient *http.Client
	// Chats records groups that moved to a new chat id (required).
	Chats Chats

	// WebhookURL switches to webhook mode: the public HTTPS URL Telegram posts updates to. Its
	// path is the path served. Empty: long polling.
	WebhookURL string
	// WebhookAddr is the listen address of the webhook server, usually behind a TLS proxy
	// (127.0.0.1:8443).
	WebhookAddr string
	// WebhookListener, if set, is used instead of listening on WebhookAddr.
	WebhookListener net.Listener

	// PollTimeout is the long-polling timeout of getUpdates (50 s).
	PollTimeout time.Duration
	// RequestTimeout bounds every other Bot API request and each file download (60 s).
	RequestTimeout time.Duration
	// MinPhotoSide: the smallest photo size whose shorter side reaches it is downloaded, the
	// largest if none does (320 px; the model needs about 256).
	MinPhotoSide int
	// GroupPhotos: which photos in groups are answered (GroupPhotosAddressed).
	GroupPhotos GroupPhotos
	// EmptyPollDelay: when getUpdates answers an empty batch sooner than half PollTimeout (a Bot
	// API server that does not hold long polls), polling pauses this long before asking again,
	// doubling with every such answer in a row up to 30 s; a batch with updates or a poll that
	// was held resets it (1 s).
	EmptyPollDelay time.Duration
	// RetryDelay is the first wait after a network error or a 5xx; it doubles up to 30 s (1 s).
	RetryDelay time.Duration
	// Retries: how many times a failed idempotent request is retried (5). 429s are retried
	// until the context ends, whatever this says.
	Retries int
	// ConflictRetries: consecutive 409 answers tolerated (another instance shutting down)
	// before Run gives up with ErrConflict (3).
	ConflictRetries int
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.APIEndpoint == "" {
		o.APIEndpoint = DefaultAPIEndpoint
	}
	o.APIEndpoint = strings.TrimRight(o.APIEndpoint, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.WebhookAddr == "" {
		o.WebhookAddr = "127.0.0.1:8443"
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 50 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 60 * time.Second
	}
	if o.MinPhotoSide <= 0 {
		o.MinPhotoSide = 320
	}
	if o.GroupPhotos == "" {
		o.GroupPhotos = GroupPhotosAddressed
	}
	if o.EmptyPollDelay <= 0 {
		o.EmptyPollDelay = time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.ConflictRetries <= 0 {
		o.ConflictRetries = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Adapter is the Telegram channel. Send and Typing work before and after Run (staff replies).
type Adapter struct {
	opts  Options
	log   *slog.Logger
	base  *tgbotapi.BotAPI // never used directly: api(ctx) binds a copy to a context
	flood *flood

	self    atomic.Pointer[tgbotapi.User] // set by Run from getMe
	running atomic.Bool

	// pause waits between polls after an empty answer (sleep; tests count the pauses).
	pause func(ctx context.Context, d time.Duration) error
}

var (
	_ bot.Adapter     = (*Adapter)(nil)
	_ bot.Typist      = (*Adapter)(nil)
	_ bot.Preparer    = (*Adapter)(nil)
	_ bot.LegacyInbox = (*Adapter)(nil)
)

// New checks the options and builds the adapter. It does no I/O: Run asks Telegram who the bot
// is.
func New(log *slog.Logger, opts Options) (*Adapter, error) {
	opts = opts.withDefaults()
	if opts.Token == "" {
		return nil, fmt.Errorf("%w: no bot token", ErrConfig)
	}
	if strings.ContainsAny(opts.Token, "/?#% \t\r\n") {
		return nil, fmt.Errorf("%w: the bot token has characters a token never has (a stray space or newline?)", ErrConfig)
	}
	if opts.Chats == nil {
		return nil, fmt.Errorf("%w: no chats store", ErrConfig)
	}
	if _, err := url.Parse(opts.APIEndpoint); err != nil || !strings.HasPrefix(opts.APIEndpoint, "http") {
		return nil, fmt.Errorf("%w: API endpoint %q is not an http(s) URL", ErrConfig, opts.APIEndpoint)
	}
	if opts.WebhookURL != "" {
		u, err := url.Parse(opts.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%w: webhook URL %q is not an absolute https URL", ErrConfig, opts.WebhookURL)
		}
	}
	if _, err := ParseGroupPhotos(string(opts.GroupPhotos)); err != nil {
		return nil, err
	}
	// The struct is built by hand rather than with NewBotAPI, which calls getMe without a
	// context. The endpoint format is the library's: %s token, %s method.
	base := &tgbotapi.BotAPI{Token: opts.Token, Client: opts.HTTPClient, Buffer: 0}
	base.SetAPIEndpoint(opts.APIEndpoint + "/bot%s/%s")
	return &Adapter{opts: opts, log: log, base: base, flood: newFlood(opts.Now), pause: sleep}, nil
}

// Platform is bot.Telegram.
func (a *Adapter) Platform() bot.Platform { return bot.Telegram }

// Run opens the channel on the intake, receives updates and hands them in until ctx ends, and
// returns nil. It returns an error if the token is refused, another instance holds the updates
// (ErrConflict), or the intake cannot be opened. The intake drains the messages being handled.
func (a *Adapter) Run(ctx context.Context, in *bot.Intake) error {
	if !a.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Run is already running", ErrConfig)
	}
	defer a.running.Store(false)
	var me tgbotapi.User
	err := a.persist(ctx, "getMe", func() (err error) {
		me, err = a.getMe(ctx)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.self.Store(&me)
	log := a.log.With("bot", "@"+me.UserName)
	offset, err := in.Open(ctx, a)
	if err != nil {
		return fmt.Errorf("telegram: %w", err)
	}
	defer in.Close(bot.Telegram)

	var runErr error
	if a.opts.WebhookURL != "" {
		log.Info("telegram: receiving updates by webhook", "url", a.opts.WebhookURL)
		runErr = a.runWebhook(ctx, in)
	} else {
		log.Info("telegram: receiving updates by long polling")
		runErr = a.runPolling(ctx, in, offset)
	}
	log.Info("telegram: stopped")
	if runErr != nil && ctx.Err() != nil && !errors.Is(runErr, ErrConflict) && !errors.Is(runErr, ErrUnauthorized) {
		return nil // the error is the stop itself
	}
	return runErr
}

func (a *Adapter) getMe(ctx context.Context) (tgbotapi.User, error) {
	var me tgbotapi.User
	resp, err := a.call(ctx, 0, "getMe", retryIdempotent, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
		return api.MakeRequest("getMe", nil)
	})
	if err != nil {
		return me, err
	}
	if err := decodeResult(resp, &me); err != nil {
		return me, fmt.Errorf("%w: getMe: %w", ErrAPI, err)
	}
	if me.UserName == "" {
		return me, fmt.Errorf("%w: getMe returned a bot without a username", ErrAPI)
	}
	return me, nil
}
