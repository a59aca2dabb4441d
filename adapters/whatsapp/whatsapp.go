// Package whatsapp is CropShield's WhatsApp channel, built on go.mau.fi/whatsmeow: the bot runs as
// a linked device of the operator's WhatsApp account (like WhatsApp Web) and answers the photos
// farmers send it in private chats, and in groups when it is addressed.
//
// Receiving: whatsmeow delivers events one at a time on its own goroutine. The adapter only
// decides there whether a message is for the bot, records it in its table of received messages
// (in the same SQL database as whatsmeow's device store: what quoting a reply and downloading its
// photo need) and hands it to the intake (bot.Intake), which keeps it durably in the bot's inbox;
// WhatsApp gets its receipt only after that, so a crash loses nothing: an unacknowledged message
// is delivered again, and an accepted one not yet answered is handed to the handler at the next
// start. The slow work (download, analysis, replies) runs on the intake's bounded pool of
// workers, one message of a chat at a time; while the intake is full, receiving waits.
//
// Sending: replies only ever go to chats that wrote to the bot (never a broadcast: numbers that
// broadcast get banned), quote the farmer's message and are paced per chat and overall.
//
// Ids: a farmer is keyed by the phone-number JID when it is known, else by the LID (WhatsApp's
// privacy id), and a private chat by its farmer's id. When the adapter learns the phone number of
// a LID, what the bot kept under the LID (language, private chat, conversation) moves to the
// phone-number id through Options.Users before the message is handed over.
//
// Permanent disconnects (logged out, stream replaced by another client, temporary ban, client
// outdated) stop Run with an error that says what happened and what to do; whatsmeow itself
// reconnects after transient drops.
package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"github.com/cropshield/cropshield/bot"
)

// Options tune the adapter; zero fields take the defaults in parentheses.
type Options struct {
	// GroupAllPhotos answers every photo in a group, not only those that mention the bot or
	// whose caption starts with DiagnoseWord.
	GroupAllPhotos bool
	// DiagnoseWord at the start of a caption asks for a diagnosis in a group ("/diagnose").
	DiagnoseWord string
	// GroupCommands are the commands answered in groups without a mention of the bot
	// (start, help, language, lang, crop, history).
	GroupCommands []string
	// ChatInterval is the least time between two messages to one chat (1 s).
	ChatInterval time.Duration
	// GlobalInterval is the least time between any two messages the bot sends (300 ms).
	GlobalInterval time.Duration
	// MaxPhotoBytes is the largest photo downloaded (20 MB, the handler's limit): a download
	// stops there, whatever size the message declares.
	MaxPhotoBytes int64
	// MediaRetryTimeout is how long to wait for the sender's phone to upload an expired photo
	// again (20 s); keep it under the handler's fetch timeout.
	MediaRetryTimeout time.Duration
	// ReplyWindow: replies go only to chats that wrote to the bot within it (7 days).
	ReplyWindow time.Duration
	// InboxRetention: received messages are kept this long for quoting staff replies and
	// downloading their photos (30 days).
	InboxRetention time.Duration
	// Users moves a farmer known until then only by a LID (their language, private chat and
	// conversation) to the phone-number id once the adapter learns the pair; *bot.Moves. Nil:
	// nothing is moved, and such a farmer starts afresh under the phone number.
	Users Users
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.DiagnoseWord == "" {
		o.DiagnoseWord = "/diagnose"
	}
	if o.GroupCommands == nil {
		o.GroupCommands = []string{"start", "help", "language", "lang", "crop", "history"}
	}
	if o.ChatInterval <= 0 {
		o.ChatInterval = time.Second
	}
	if o.GlobalInterval <= 0 {
		o.GlobalInterval = 300 * time.Millisecond
	}
	if o.MaxPhotoBytes <= 0 {
		o.MaxPhotoBytes = bot.DefaultMaxPhotoBytes
	}
	if o.MediaRetryTimeout <= 0 {
		o.MediaRetryTimeout = 20 * time.Second
	}
	if o.ReplyWindow <= 0 {
		o.ReplyWindow = 7 * 24 * time.Hour
	}
	if o.InboxRetention <= 0 {
		o.InboxRetention = 30 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Adapter is the WhatsApp channel.
type Adapter struct {
	opts    Options
	log     *slog.Logger
	client  Client
	st      *Store
	pace    *pacer
	retries retryWaiters
	groups  groupCache

	running atomic.Bool
	lastSeq atomic.Int64 // the receive order given to the last message
	mu      sync.Mutex
	run     *runState // nil while not running

	// backlogMu guards backlog: set when a message the intake could not take (full) was kept
	// pending in the inbox table and acknowledged; until feed has handed every pending row in,
	// the messages received join them there (in order) instead of going to the intake.
	backlogMu sync.Mutex
	backlog   bool
}

// runState is one Run.
type runState struct {
	ctx       context.Context
	in        *bot.Intake
	fatal     chan error
	online    chan struct{} // closed at the first logged-in connection: the intake is open then
	onlineSet sync.Once
	kick      chan struct{} // capacity 1: "messages were kept pending" (feed)
}

var (
	_ bot.Adapter  = (*Adapter)(nil)
	_ bot.Typist   = (*Adapter)(nil)
	_ bot.Preparer = (*Adapter)(nil)

	_ bot.RemoteSender = (*Adapter)(nil)
)

// New builds the adapter on a client (WrapClient(NewWhatsmeowClient(...)) in production) and the
// store that holds its device.
func New(log *slog.Logger, client Client, st *Store, opts Options) *Adapter {
	opts = opts.withDefaults()
	return &Adapter{opts: opts, log: log, client: client, st: st,
		pace: newPacer(opts.ChatInterval, opts.GlobalInterval, opts.Now)}
}

// Platform is bot.WhatsApp.
func (a *Adapter) Platform() bot.Platform { return bot.WhatsApp }

// Account is the linked phone number ("" before linking): what names the connection only one
// process may hold at a time (whatsmeow's rule), among replicas sharing a database.
func (a *Adapter) Account() string {
	pn, _ := a.client.OwnID()
	return pn.User
}

// Run connects and hands the messages received to the intake until ctx ends (nil) or WhatsApp
// ends the session for good (an error saying what happened and what to do). The channel is
// opened on the intake at the first logged-in connection (the replies to the messages left from
// the last run need it); on the way out it is closed and the client disconnected. The intake
// drains the messages being handled.
func (a *Adapter) Run(ctx context.Context, in *bot.Intake) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("whatsapp: already running")
	}
	defer a.running.Store(false)
	pn, _ := a.client.OwnID()
	if pn.IsEmpty() {
		return fmt.Errorf("%w: run `cropshield whatsapp link` to link the bot's phone", ErrNotLinked)
	}
	if n, err := a.st.pruneInbox(ctx, a.opts.Now().Add(-a.opts.InboxRetention)); err != nil {
		a.log.Warn("cannot prune the WhatsApp inbox", "err", err)
	} else if n > 0 {
		a.log.Debug("pruned received WhatsApp messages", "count", n)
	}

	feedCtx, endFeed := context.WithCancel(ctx)
	rs := &runState{ctx: ctx, in: in, fatal: make(chan error, 1), online: make(chan struct{}), kick: make(chan struct{}, 1)}
	a.mu.Lock()
	a.run = rs
	a.mu.Unlock()
	var feeding sync.WaitGroup
	feeding.Go(func() { a.feed(feedCtx, rs) })
	hid := a.client.AddEventHandlerWithSuccessStatus(a.onEvent)
	stop := func() {
		a.client.RemoveEventHandler(hid)
		a.client.Disconnect()
		in.Close(bot.WhatsApp)
		endFeed()
		feeding.Wait()
		a.mu.Lock()
		a.run = nil
		a.mu.Unlock()
	}
	if err := a.client.Connect(); err != nil {
		stop()
		return fmt.Errorf("whatsapp: connect: %w", err)
	}
	groupPhotos := "when the bot is mentioned or the caption starts with " + a.opts.DiagnoseWord
	if a.opts.GroupAllPhotos {
		groupPhotos = "all"
	}
	a.log.Info("WhatsApp adapter running", "account", "+"+pn.User, "group_photos", groupPhotos)

	select {
	case <-ctx.Done():
		stop()
		a.log.Info("WhatsApp adapter stopped")
		return nil
	case err := <-rs.fatal:
		a.log.Error("WHATSAPP ADAPTER STOPPED: the rest of the bot keeps serving", "err", err)
		stop()
		return err
	}
}

// connected opens the channel on the intake at the first logged-in connection, on whatsmeow's
// event goroutine before any message of the connection is delivered, and hands the intake what
// is pending in the adapter's inbox table: left by an older version of the adapter, or received
// while the intake was full by a run that ended before feed handed it in.
func (a *Adapter) connected(rs *runState) {
	first := false
	rs.onlineSet.Do(func() { first = true })
	if !first {
		return
	}
	defer close(rs.online)
	if _, err := rs.in.Open(rs.ctx, a); err != nil {
		a.fatal(fmt.Errorf("whatsapp: open the intake: %w", err))
		return
	}
	legacy, err := a.st.pendingInbox(rs.ctx)
	if err != nil {
		a.log.Warn("cannot read messages left pending in the old WhatsApp inbox", "err", err)
		return
	}
	for _, r := range legacy {
		msg, err := a.message(r)
		if err == nil {
			err = rs.in.Accept(rs.ctx, bot.WhatsApp, []bot.Message{msg}, 0)
		}
		if err != nil {
			a.log.Warn("a message left pending in the WhatsApp inbox not handed to the intake; retrying", "msg", r.MsgID, "err", err)
			// feed tries again, and the messages received meanwhile wait behind it.
			a.backlogMu.Lock()
			a.backlog = true
			a.backlogMu.Unlock()
			select {
			case rs.kick <- struct{}{}:
			default:
			}
			continue
		}
		if err := a.st.setInboxState(rs.ctx, r.ChatJID, r.MsgID, stateHanded); err != nil {
			a.log.Warn("cannot mark a message handed to the intake", "msg", r.MsgID, "err", err)
		}
	}
}

// SendsHere reports whether this process can send on WhatsApp now: its Run has connected (the
// connection runs on one replica at a time; on the others, standing by, staff replies go through
// the store's outbox to the one running it: bot.RemoteSender).
func (a *Adapter) SendsHere() bool {
	rs := a.current()
	if rs == nil {
		return false
	}
	select {
	case <-rs.online:
		return true
	default:
		return false
	}
}

// current is the running Run's state, or nil.
func (a *Adapter) current() *runState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.run
}

// onEvent is whatsmeow's event handler: quick, and true once an event may be acknowledged.
func (a *Adapter) onEvent(evt any) (ack bool) {
	defer func() {
		if p := recover(); p != nil {
			// Acknowledged anyway: a message that makes us panic would otherwise be delivered
			// again at every reconnect.
			a.log.Error("panic in the WhatsApp event handler", "event", fmt.Sprintf("%T", evt), "panic", p, "stack", string(debug.Stack()))
			ack = true
		}
	}()
	switch e := evt.(type) {
	case *events.Message:
		return a.receive(e)
	case *events.MediaRetry:
		if !a.retries.deliver(e) {
			a.log.Debug("media retry for a download no longer waiting", "msg", e.MessageID)
		}
	case *events.LoggedOut:
		a.fatal(fmt.Errorf("%w (%s): the phone removed this linked device, or it stayed offline too long; "+
			"run `cropshield whatsapp link` to link the phone again, then restart", ErrLoggedOut, e.Reason))
	case *events.StreamReplaced:
		a.fatal(fmt.Errorf("%w: another program connected with this device's keys (a second cropshield on the same "+
			"WhatsApp database?); stop the other one and restart this one", ErrStreamReplaced))
	case *events.TemporaryBan:
		a.fatal(fmt.Errorf("%w: %s; do not relink or retry before it ends, answer only farmers who write first, "+
			"and slow the pacing (--whatsapp-chat-interval, --whatsapp-global-interval)", ErrTemporaryBan, e))
	case *events.ClientOutdated:
		a.fatal(fmt.Errorf("%w: WhatsApp no longer accepts this build; update go.mau.fi/whatsmeow, rebuild cropshield "+
			"and restart", ErrClientOutdated))
	case *events.ConnectFailure:
		a.fatal(fmt.Errorf("%w: %s %s; restart later, or relink with `cropshield whatsapp link` if it persists",
			ErrConnectRefused, e.Reason, e.Message))
	case *events.Connected:
		a.log.Info("WhatsApp connected")
		if rs := a.current(); rs != nil {
			a.connected(rs)
		}
	case *events.Disconnected:
		a.log.Warn("WhatsApp disconnected; reconnecting")
	case *events.KeepAliveTimeout:
		a.log.Warn("WhatsApp keep-alive timed out", "errors", e.ErrorCount)
	case *events.KeepAliveRestored:
		a.log.Info("WhatsApp keep-alive restored")
	case *events.OfflineSyncCompleted:
		a.log.Info("WhatsApp delivered the messages received while offline", "count", e.Count)
	case *events.UndecryptableMessage:
		a.log.Warn("undecryptable WhatsApp message; the sender's phone is asked to send it again",
			"chat", e.Info.Chat, "msg", e.Info.ID, "unavailable", e.IsUnavailable)
	case *events.GroupInfo:
		a.groups.forget(e.JID)
	}
	return true
}

// fatal ends Run with err (the first one wins).
func (a *Adapter) fatal(err error) {
	rs := a.current()
	if rs == nil {
		a.log.Error("WhatsApp session ended", "err", err)
		return
	}
	select {
	case rs.fatal <- err:
	default:
	}
}

// isGroupCommand tells the commands answered in groups without a mention.
func (a *Adapter) isGroupCommand(name string) bool {
	return slices.Contains(a.opts.GroupCommands, name)
}
