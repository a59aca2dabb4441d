package bot

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/cropshield/cropshield/store"
)

// InboxStore is the durable inbox the intake keeps messages in until they are answered, shared
// by every replica (process) of the bot, with the per-chat leases that hand each chat's messages
// to one replica at a time (store/leases.go); *store.Store implements it.
type InboxStore interface {
	// AcceptInbox stores messages with new ids (and the platform's cursor) and takes the leases
	// of their chats that no live replica holds; it returns the ids and the pending entries of
	// the chats the replica holds that it did not hold yet, in id order.
	AcceptInbox(ctx context.Context, l store.Lessee, platform string, updates []store.InboxUpdate, offset int64) (ids []int64, take []store.InboxUpdate, err error)
	// FinishInbox removes handled entries and, for each chat named, releases its lease if the
	// chat has nothing pending or returns the entries stored for it meanwhile by others.
	FinishInbox(ctx context.Context, l store.Lessee, platform string, done map[string][]int64) ([]store.InboxUpdate, error)
	// AdoptInbox takes the chats with pending entries and no live lease and returns their
	// entries, with those of the replica's own chats it does not hold.
	AdoptInbox(ctx context.Context, l store.Lessee, platform string) ([]store.InboxUpdate, error)
	// ReleaseInbox lets go the replica's chats of a platform except those keep reports.
	ReleaseInbox(ctx context.Context, l store.Lessee, platform string, keep func(chat string) bool) error
	// Heartbeat keeps the replica's leases live; Retire ends them.
	Heartbeat(ctx context.Context, l store.Lessee) error
	Retire(ctx context.Context, l store.Lessee) error
	InboxOffset(ctx context.Context, platform string) (int64, error)
}

// Channel is an adapter as the intake sees it: replies go out through it, and the photos of its
// messages are fetched through it by their Photo.Ref.
type Channel interface {
	Platform() Platform
	Responder
	// FetchPhoto downloads the photo ref names (Photo.Ref), reading at most limit bytes.
	FetchPhoto(ctx context.Context, ref string, limit int64) ([]byte, error)
}

// Preparer is an optional Channel ability: Prepare is called on the worker just before the
// handler gets a message (in the chat's order, also after a restart), for what is known only
// then: whether the sender is a group admin now, an id that moved while the message waited, a
// receipt or a button's spinner on the platform. It changes m in place; it does not fail (what it
// cannot learn stays as it was).
type Preparer interface {
	Prepare(ctx context.Context, m *Message)
}

// LegacyInbox is an optional Channel ability: it translates an inbox entry the intake cannot
// read as a Message, one an earlier version of the adapter stored in its own format (Telegram's
// raw Bot API updates), so that an upgrade loses none. DecodeLegacy reports ok false for an entry
// it does not know (or cannot translate now): the entry stays in the inbox. With ok true the
// entry is the messages returned: none (nothing to handle: the entry is removed) or one, handed
// to the handler as if accepted now and removed once handled. More than one is not allowed (one
// entry, one message): the entry stays.
type LegacyInbox interface {
	DecodeLegacy(ctx context.Context, data []byte) (msgs []Message, ok bool)
}

// IntakeConfig tunes the intake; zero fields take the defaults in parentheses.
type IntakeConfig struct {
	// Workers is how many messages are handled at once, across chats (8); the handler bounds
	// the analyses itself.
	Workers int
	// ChatQueue is how many messages one chat may have waiting or being handled (20); more are
	// refused with ErrBusy (or wait, with Accept). A batch larger than the bound is taken when
	// the chat has nothing waiting, so that no batch is refused for ever. The photos joining an
	// album still being collected are not counted against it (only against Queue), so that an
	// album is not split.
	ChatQueue int
	// Queue is the same bound for all chats together (1000).
	Queue int
	// Retries is how many times a message whose handling failed (the handler returned an
	// error: a store or network failure) is handed in again before it is left in the inbox for
	// the next start (5); its chat stays with this replica meanwhile (Intake), so no other
	// replica retries it until this one stops or dies.
	Retries int
	// RetryDelay is the first wait before a retry; it doubles with each retry up to a minute
	// (1 s).
	RetryDelay time.Duration
	// AlbumWait is how long the photos of an album are collected after the last one arrived
	// (1.5 s).
	AlbumWait time.Duration
	// MaxPhotoBytes is the limit passed to Channel.FetchPhoto (20 MB, the handler's default).
	MaxPhotoBytes int64

	// Replica names this process among those sharing the store ("main"). One process runs per
	// name at a time: a process started under the name of one that died takes its chats back at
	// once.
	Replica string
	// HeartbeatEvery is how often the replica records that it is alive (2 s); LeaseTTL is how
	// long after its last heartbeat a replica's chats are taken by the others (10 s). The clocks
	// of the replicas must agree to well within LeaseTTL.
	HeartbeatEvery, LeaseTTL time.Duration
	// AdoptEvery is how often the replica looks for chats with messages nobody hands in (their
	// replica stopped or died) and for messages other replicas stored for its chats (1 s).
	AdoptEvery time.Duration
	// Clock tells the time for heartbeats and leases (time.Now): tests set it.
	Clock func() time.Time
}

func (c IntakeConfig) withDefaults() IntakeConfig {
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.ChatQueue <= 0 {
		c.ChatQueue = 20
	}
	if c.Queue <= 0 {
		c.Queue = 1000
	}
	if c.Retries <= 0 {
		c.Retries = 5
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.AlbumWait <= 0 {
		c.AlbumWait = 1500 * time.Millisecond
	}
	if c.MaxPhotoBytes <= 0 {
		c.MaxPhotoBytes = DefaultMaxPhotoBytes
	}
	c.Replica = cmp.Or(c.Replica, "main")
	if c.HeartbeatEvery <= 0 {
		c.HeartbeatEvery = 2 * time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.AdoptEvery <= 0 {
		c.AdoptEvery = time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Intake is the one way in for every channel. An adapter hands it the messages it received
// (Accept); the intake stores them in the durable inbox, with the platform's cursor (Telegram's
// getUpdates offset) in the same transaction, and returns only then, so the adapter acknowledges
// the platform only for what is durable. It hands each chat's messages to the handler in order,
// one at a time, on a bounded pool of workers shared by all chats; it bounds what may wait per
// chat and in all (back-pressure: ErrBusy); it retries a message whose handling failed with
// exponential backoff; it collects the photos of an album into one message; and on Stop it
// takes no more messages, lets those being handled finish and leaves the rest in the inbox for
// the next start, when Open hands them in again. The handler answers each message once (its turn
// log), so a message handed in twice is not answered twice.
//
// Several processes (replicas) may share one store, each with its intake, and any of them may
// receive any message. The store numbers the inbox entries (in the order they became durable)
// and leases each chat to one replica (store/leases.go). The replica that stores a chat's
// message while no live replica holds the chat takes it, and hands in the chat's messages,
// also those the others store meanwhile (they only store them: it finds them when it accepts or
// finishes one of the chat's messages, or at its next look, every AdoptEvery), until the chat
// has nothing pending; then it lets the chat go. A replica that stops lets its chats go at once;
// one that dies (no heartbeat for LeaseTTL) loses them to the others, which look for chats
// nobody hands in every AdoptEvery; one restarted under the same name takes its chats back at
// once. A message that still fails after the retries keeps its chat with this replica until it
// stops or dies, so the others do not retry it in a loop. Consequences: the bounds (ChatQueue,
// Queue) are this replica's: a message stored for a chat another replica holds counts there
// once it is handed in there, and the messages stored by other replicas are handed in without
// waiting for room; WaitHandled returns at once for a message stored for a chat another replica
// holds; an album whose photos reach several replicas is collected by the chat's holder, which
// gets the others' photos within AdoptEvery (shorter than AlbumWait): a photo later than
// AlbumWait is answered as a second album, as on one replica.
type Intake struct {
	cfg         IntakeConfig
	log         *slog.Logger
	inbox       InboxStore
	h           MessageHandler
	incarnation string // this process's, among those of the replica's name

	jobCtx     context.Context // the handler's context: cancelled when a stop's drain times out
	cancelJobs context.CancelFunc
	stopCh     chan struct{} // closed by Stop: ends retry waits
	mark       *marker
	wg         sync.WaitGroup
	tendCtx    context.Context // the heartbeats' and looks' context, cancelled with them
	endTending context.CancelFunc
	tendDone   chan struct{}

	mu       sync.Mutex
	cond     *sync.Cond
	stopping bool
	killed   bool      // a test's kill -9: Stop does nothing
	beatAt   time.Time // the time of the last heartbeat recorded
	channels map[Platform]*channelState
	queues   map[queueKey][]*job // per chat, jobs not started
	busy     map[queueKey]bool   // chats with a job running
	ready    []queueKey          // chats with jobs and none running, oldest first
	perChat  map[queueKey]int    // messages accepted and not finished, per chat
	total    int                 // the same, in all
	active   map[msgKey]int64    // messages accepted and not finished → their inbox id (reserved while an Accept stores them)
	held     map[heldKey]bool    // inbox entries taken in (queued, running, kept, or done and not yet marked)
	albums   map[albumKey]*album
	space    chan struct{}              // closed (and replaced) when messages finish
	waiters  map[msgKey][]chan struct{} // WaitHandled callers
}

// reserved is the inbox id of a message in active while its Accept stores it.
const reserved = -1

type channelState struct {
	// accepting is held by an Accept from its reservation to its queueing, so that a platform's
	// messages are queued in the order they were accepted (and numbered).
	accepting sync.Mutex
	ch        Channel
	// open: Open returned (the backlog handed in) and Close was not called since.
	open   bool
	closed bool
}

type queueKey struct {
	platform Platform
	chat     string
}

type msgKey struct {
	platform Platform
	chat, id string
}

type heldKey struct {
	platform Platform
	id       int64
}

func keyOf(m Message) msgKey { return msgKey{m.Chat.Platform, m.Chat.ID, m.ID} }

// job is what a worker hands to the handler: one message, or the photos of an album as one.
type job struct {
	chat   queueKey
	ids    []int64  // inbox ids
	leases []string // the chat each id is leased under (store.InboxUpdate.Chat)
	keys   []msgKey // the messages it finishes
	msg    Message
	album  bool
}

type albumKey struct {
	chat  queueKey
	album string
}

type album struct {
	parts []part
	gen   int
	timer *time.Timer
}

type part struct {
	id    int64
	lease string
	msg   Message
}

// NewIntake starts the intake's workers and heartbeats; messages come once a channel is opened.
func NewIntake(cfg IntakeConfig, log *slog.Logger, inbox InboxStore, h MessageHandler) *Intake {
	cfg = cfg.withDefaults()
	in := &Intake{cfg: cfg, log: log, inbox: inbox, h: h, incarnation: rand.Text(), stopCh: make(chan struct{}),
		channels: map[Platform]*channelState{}, queues: map[queueKey][]*job{}, busy: map[queueKey]bool{},
		perChat: map[queueKey]int{}, active: map[msgKey]int64{}, held: map[heldKey]bool{}, albums: map[albumKey]*album{},
		space: make(chan struct{}), waiters: map[msgKey][]chan struct{}{}, tendDone: make(chan struct{})}
	in.cond = sync.NewCond(&in.mu)
	in.jobCtx, in.cancelJobs = context.WithCancel(context.Background())
	in.tendCtx, in.endTending = context.WithCancel(context.Background())
	in.mark = newMarker(in)
	for range cfg.Workers {
		in.wg.Go(in.work)
	}
	go in.tend()
	return in
}

// lessee is this replica as the inbox's leases know it, now, for platform p's entries.
func (in *Intake) lessee(p Platform) store.Lessee {
	return store.Lessee{Replica: in.cfg.Replica, Incarnation: in.incarnation, Now: in.cfg.Clock(), TTL: in.cfg.LeaseTTL,
		Held: func(id int64) bool {
			in.mu.Lock()
			defer in.mu.Unlock()
			return in.held[heldKey{p, id}]
		}}
}

// Open registers a channel (an adapter) for its platform, hands in the messages of that platform
// left in the inbox by an earlier run (of this replica, or of one that stopped or died), and
// returns the platform's cursor (0 if none was saved). Replies to the platform's messages go
// through ch from now on. Opening an open platform again replaces its channel (an adapter's Run
// started again). An entry that is not a Message is translated by the channel if it is a
// LegacyInbox; one nobody can read stays in the inbox and is logged.
func (in *Intake) Open(ctx context.Context, ch Channel) (cursor int64, err error) {
	p := ch.Platform()
	cursor, err = in.inbox.InboxOffset(ctx, string(p))
	if err != nil {
		return 0, fmt.Errorf("intake: read the %s cursor: %w", p, err)
	}
	// The heartbeat first: it ends an earlier incarnation's leases, which are taken back below.
	l := in.lessee(p)
	if err := in.inbox.Heartbeat(ctx, l); err != nil {
		return 0, fmt.Errorf("intake: record the heartbeat: %w", err)
	}
	in.beaten(l.Now)
	in.mu.Lock()
	if in.stopping {
		in.mu.Unlock()
		return 0, ErrStopped
	}
	cs := in.channels[p]
	if cs == nil {
		cs = &channelState{}
		in.channels[p] = cs
	}
	cs.ch, cs.closed, cs.open = ch, false, false
	in.mu.Unlock()
	pending, err := in.inbox.AdoptInbox(ctx, in.lessee(p), string(p))
	if err != nil {
		in.Close(p)
		return 0, fmt.Errorf("intake: read the %s inbox: %w", p, err)
	}
	if n := in.handIn(ctx, p, pending, nil); n > 0 {
		in.log.Info("intake: handing in the messages left from the last run", "platform", p, "messages", n)
	}
	in.mu.Lock()
	cs.open = !cs.closed
	in.mu.Unlock()
	return cursor, nil
}

// Accepting reports whether p's channel is open: its Open returned and neither Close nor Stop
// was called since. /healthz reports a channel not yet open as starting.
func (in *Intake) Accepting(p Platform) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	cs := in.channels[p]
	return cs != nil && cs.open && !cs.closed && !in.stopping
}

// readEntry reads an inbox entry the intake stored: a platform's Message.
func readEntry(p Platform, data []byte) (Message, bool) {
	var m Message
	if err := json.Unmarshal(data, &m); err != nil || m.Chat.Platform != p || m.Chat.ID == "" || m.ID == "" {
		return Message{}, false
	}
	return m, true
}

// entry is an inbox entry the store handed this replica, read.
type entry struct {
	id    int64
	lease string
	msg   Message
	ok    bool // msg is the entry
	drop  bool // nothing to handle (a LegacyInbox said so)
}

// readEntries reads entries; one that is not a Message is translated by the channel if it is a
// LegacyInbox (which may write: call it outside in.mu and outside the store's transactions).
func readEntries(ctx context.Context, p Platform, ch Channel, us []store.InboxUpdate, known map[int64]Message) []entry {
	legacy, _ := ch.(LegacyInbox)
	es := make([]entry, 0, len(us))
	for _, u := range us {
		e := entry{id: u.ID, lease: u.Chat}
		if m, ok := known[u.ID]; ok {
			e.msg, e.ok = m, true
		} else if m, ok := readEntry(p, u.Data); ok {
			e.msg, e.ok = m, true
		} else if legacy != nil {
			switch ms, ok := legacy.DecodeLegacy(ctx, u.Data); {
			case !ok || len(ms) > 1:
			case len(ms) == 0:
				e.drop = true
			case ms[0].Chat.Platform == p && ms[0].Chat.ID != "" && ms[0].ID != "":
				e.msg, e.ok = ms[0], true
			}
		}
		es = append(es, e)
	}
	return es
}

// handIn takes in the entries the store handed this replica (pending entries of the chats it
// holds, in id order) and queues them. It returns how many messages it queued. Stopping, or the
// channel closed, it takes none: they stay in the inbox for the next start (or another replica).
func (in *Intake) handIn(ctx context.Context, p Platform, us []store.InboxUpdate, known map[int64]Message) int {
	if len(us) == 0 {
		return 0
	}
	in.mu.Lock()
	cs := in.channels[p]
	var ch Channel
	if cs != nil {
		ch = cs.ch
	}
	in.mu.Unlock()
	if ch == nil {
		return 0
	}
	es := readEntries(ctx, p, ch, us, known)
	in.mu.Lock()
	if in.stopping || cs.closed {
		in.mu.Unlock()
		in.letGo(p)
		return 0
	}
	defer in.mu.Unlock()
	parts := in.takeLocked(p, es, nil)
	in.queueLocked(parts)
	return len(parts)
}

// letGo lets go the chats of p this replica holds while p's channel is closed here (Close), but
// for those with a message still in hand (being handled): another replica running the channel
// takes them at once, instead of never (this replica's heartbeat keeps its leases live, and it
// hands nothing of p in). With the channel open, or stopping (Stop's Retire lets every chat go),
// it does nothing.
func (in *Intake) letGo(p Platform) {
	in.mu.Lock()
	cs := in.channels[p]
	closed := cs != nil && cs.closed && !in.stopping
	in.mu.Unlock()
	if !closed {
		return
	}
	keep := func(chat string) bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		if !cs.closed || in.stopping {
			return true // opened again meanwhile: its chats are its own
		}
		if chat != "" {
			return in.perChat[queueKey{p, chat}] > 0
		}
		for k := range in.perChat {
			if k.platform == p {
				return true
			}
		}
		return false
	}
	if err := in.inbox.ReleaseInbox(context.Background(), in.lessee(p), string(p), keep); err != nil {
		in.log.Warn("intake: cannot let go the chats of a closed channel; the others take them once this replica stops",
			"platform", p, "err", err)
	}
}

// takeLocked takes entries in (held from now on) and returns the messages to queue, in the
// entries' order. An entry held already is skipped; one whose message is accepted already is
// dropped (stored twice: one is enough), unless an Accept is storing it (it hands it in, and the
// chat's later entries are left for after it); one nobody can read stays in the inbox and is
// logged. The entries whose ids are in mine are the
// messages an Accept reserved room for.
func (in *Intake) takeLocked(p Platform, es []entry, mine map[int64]bool) []part {
	var parts []part
	var unread []int64
	later := map[string]bool{} // chats left to an Accept storing one of their messages
	for _, e := range es {
		hk := heldKey{p, e.id}
		if in.held[hk] || later[e.lease] {
			continue
		}
		if e.ok && !mine[e.id] {
			if id, dup := in.active[keyOf(e.msg)]; dup {
				if id == reserved {
					// The Accept hands it in; the chat's later entries come after it (its job's
					// finish, or the next look, finds them).
					later[e.lease] = true
					continue
				}
				in.held[hk] = true
				in.mark.add(p, e.lease, e.id)
				continue
			}
		}
		in.held[hk] = true
		switch {
		case e.drop:
			in.mark.add(p, e.lease, e.id)
		case !e.ok:
			unread = append(unread, e.id)
		default:
			if !mine[e.id] {
				in.perChat[queueKey{p, e.msg.Chat.ID}]++
				in.total++
			}
			in.active[keyOf(e.msg)] = e.id
			parts = append(parts, part{id: e.id, lease: e.lease, msg: e.msg})
		}
	}
	if len(unread) > 0 {
		// Kept: an entry is removed only once handled. An operator can read it (store's inbox).
		in.log.Error("intake: inbox entries cannot be read; they stay in the inbox", "platform", p, "entries", unread)
	}
	return parts
}

// Close ends a channel's run (its adapter stopped): it takes no more messages, and its messages
// not started yet stay in the inbox for the next Open (here, or on the replica that runs the
// channel now: the chats are let go, each once nothing of it is being handled here). Those being
// handled finish.
func (in *Intake) Close(p Platform) {
	if in.closeLocal(p) {
		in.letGo(p)
	}
}

// closeLocal is Close without the store; it reports whether p was open.
func (in *Intake) closeLocal(p Platform) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	cs := in.channels[p]
	if cs == nil {
		return false
	}
	cs.closed, cs.open = true, false
	in.dropLocked(func(q Platform) bool { return q == p })
	return true
}

// dropLocked leaves in the inbox the messages waiting here (queued, or photos of albums being
// collected) of the platforms of reports, not held any more: they are handed in again by the
// next Open or look (here, or by another replica once it holds their chats). Those being handled
// finish.
func (in *Intake) dropLocked(of func(Platform) bool) {
	for k, al := range in.albums {
		if of(k.chat.platform) {
			al.timer.Stop()
			delete(in.albums, k)
			for _, pt := range al.parts {
				delete(in.held, heldKey{k.chat.platform, pt.id})
				in.finishLocked(k.chat, []msgKey{keyOf(pt.msg)})
			}
		}
	}
	for k, q := range in.queues {
		if !of(k.platform) {
			continue
		}
		for _, j := range q {
			for _, id := range j.ids {
				delete(in.held, heldKey{k.platform, id})
			}
			in.finishLocked(k, j.keys)
		}
		delete(in.queues, k)
	}
	in.ready = slices.DeleteFunc(in.ready, func(k queueKey) bool { return of(k.platform) })
}

// beaten notes a heartbeat recorded as of now. One that came later than the lease TTL after the
// one before (the database stalled, the process was paused) may have let the other replicas adopt
// this one's chats meanwhile: the messages waiting here are left to the inbox, so that each is
// handed in again by whichever replica holds its chat now (this one's next look takes back those
// still its own, in order), instead of being handled here too, at the same time as there.
func (in *Intake) beaten(now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	prev := in.beatAt
	if now.After(prev) {
		in.beatAt = now
	}
	if prev.IsZero() || now.Sub(prev) < in.cfg.LeaseTTL || in.stopping {
		return
	}
	in.log.Warn("intake: the heartbeat came later than the lease TTL; the messages waiting here go back to the inbox, for whichever replica holds their chats now",
		"late", now.Sub(prev), "ttl", in.cfg.LeaseTTL)
	in.dropLocked(func(Platform) bool { return true })
}

// Accept stores a batch of messages received from one platform durably, with the platform's
// cursor if it is positive (0 leaves it), in one transaction, and queues them (those of chats
// another replica holds are only stored: that replica hands them in). It returns nil only once
// they are durable: then the adapter acknowledges them. A message already accepted and not
// finished is not stored twice. While the queues are full Accept waits for room until ctx ends,
// and then returns an error wrapping ErrBusy; after Stop (or Close) it returns ErrStopped. An
// empty batch with a cursor saves the cursor.
func (in *Intake) Accept(ctx context.Context, p Platform, batch []Message, cursor int64) error {
	return in.accept(ctx, p, batch, cursor, true)
}

// TryAccept is Accept without waiting: ErrBusy at once when the queues are full.
func (in *Intake) TryAccept(ctx context.Context, p Platform, batch []Message, cursor int64) error {
	return in.accept(ctx, p, batch, cursor, false)
}

func (in *Intake) accept(ctx context.Context, p Platform, batch []Message, cursor int64, wait bool) error {
	for _, m := range batch {
		if m.Chat.Platform != p || m.Chat.ID == "" || m.ID == "" {
			return fmt.Errorf("intake: message %q of chat %q (%s) is not a %s message with ids", m.ID, m.Chat.ID, m.Chat.Platform, p)
		}
	}
	in.mu.Lock()
	cs := in.channels[p]
	in.mu.Unlock()
	if cs == nil {
		return fmt.Errorf("%w: %s", ErrNotOpen, p)
	}
	cs.accepting.Lock()
	defer cs.accepting.Unlock()
	// Reserve room, then write outside the lock; the store gives the ids.
	var fresh []Message
	for {
		in.mu.Lock()
		if in.stopping || cs.closed {
			in.mu.Unlock()
			return ErrStopped
		}
		fresh = in.freshLocked(batch)
		if in.fitsLocked(fresh) {
			for _, m := range fresh {
				in.active[keyOf(m)] = reserved
				in.perChat[queueKey{p, m.Chat.ID}]++
				in.total++
			}
			in.mu.Unlock()
			break
		}
		space := in.space
		in.mu.Unlock()
		if !wait {
			return ErrBusy
		}
		select {
		case <-space:
		case <-in.stopCh:
			return ErrStopped
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
		}
	}
	updates := make([]store.InboxUpdate, 0, len(fresh))
	for _, m := range fresh {
		data, err := json.Marshal(m)
		if err != nil {
			in.unreserve(fresh)
			return fmt.Errorf("intake: encode message %s: %w", m.ID, err)
		}
		updates = append(updates, store.InboxUpdate{Chat: m.Chat.ID, Data: data})
	}
	// Once received a batch is saved even if ctx just ended: it is handled instead of fetched
	// again.
	ids, take, err := in.inbox.AcceptInbox(context.WithoutCancel(ctx), in.lessee(p), string(p), updates, cursor)
	if err != nil {
		in.unreserve(fresh)
		return fmt.Errorf("intake: store %d %s messages: %w", len(updates), p, err)
	}
	mine := make(map[int64]Message, len(ids))
	for i, id := range ids {
		mine[id] = fresh[i]
	}
	// The others' entries of this replica's chats are read before the lock (as Open does).
	in.mu.Lock()
	ch := cs.ch
	in.mu.Unlock()
	es := readEntries(ctx, p, ch, take, mine)
	in.mu.Lock()
	if in.stopping || cs.closed {
		// Durable: handled after the next start (or by another replica). Nothing starts after a
		// stop.
		in.unreserveLocked(fresh)
		in.mu.Unlock()
		in.letGo(p)
		return nil
	}
	defer in.mu.Unlock()
	taken := map[int64]bool{}
	for _, e := range es {
		if _, ok := mine[e.id]; ok {
			taken[e.id] = true
		}
	}
	for id, m := range mine {
		if !taken[id] {
			// Stored for a chat another replica holds: it hands it in.
			in.finishLocked(queueKey{p, m.Chat.ID}, []msgKey{keyOf(m)})
		}
	}
	in.queueLocked(in.takeLocked(p, es, taken))
	return nil
}

// freshLocked is the batch without the messages already accepted and not finished (a platform
// delivering again) and without repeats within the batch.
func (in *Intake) freshLocked(batch []Message) []Message {
	seen := map[msgKey]bool{}
	var out []Message
	for _, m := range batch {
		k := keyOf(m)
		if _, dup := in.active[k]; dup || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m)
	}
	return out
}

// fitsLocked tells whether msgs fit in the bounds: per chat and in all, a batch that does not fit
// waits unless what it would wait for is empty. The photos joining an album still being
// collected do not count against the chat's bound (only in all), up to an album's size: waiting,
// they would miss it and be answered apart as a second album.
func (in *Intake) fitsLocked(msgs []Message) bool {
	if len(msgs) == 0 {
		return true
	}
	if in.total > 0 && in.total+len(msgs) > in.cfg.Queue {
		return false
	}
	n := map[queueKey]int{}
	joining := map[albumKey]int{}
	for _, m := range msgs {
		ck := queueKey{m.Chat.Platform, m.Chat.ID}
		if m.AlbumID != "" && m.Photo != nil {
			k := albumKey{ck, m.AlbumID}
			if al := in.albums[k]; al != nil && len(al.parts)+joining[k] < maxAlbumImages {
				joining[k]++
				continue
			}
		}
		n[ck]++
	}
	for k, c := range n {
		if have := in.perChat[k]; have > 0 && have+c > in.cfg.ChatQueue {
			return false
		}
	}
	return true
}

func (in *Intake) unreserve(msgs []Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.unreserveLocked(msgs)
}

func (in *Intake) unreserveLocked(msgs []Message) {
	for _, m := range msgs {
		in.finishLocked(queueKey{m.Chat.Platform, m.Chat.ID}, []msgKey{keyOf(m)})
	}
}

// finishLocked forgets messages that are done or left to the inbox, gives their room back and
// wakes who waits for them.
func (in *Intake) finishLocked(chat queueKey, keys []msgKey) {
	for _, k := range keys {
		if _, ok := in.active[k]; !ok {
			continue
		}
		delete(in.active, k)
		in.perChat[chat]--
		in.total--
		for _, w := range in.waiters[k] {
			close(w)
		}
		delete(in.waiters, k)
	}
	if in.perChat[chat] <= 0 {
		delete(in.perChat, chat)
	}
	close(in.space)
	in.space = make(chan struct{})
}

// queueLocked hands accepted messages to the chats' queues: the photos of an album wait for the
// rest of it; any other message first completes the albums its sender began in the chat (order
// kept).
func (in *Intake) queueLocked(parts []part) {
	for _, pt := range parts {
		m := pt.msg
		ck := queueKey{m.Chat.Platform, m.Chat.ID}
		if m.AlbumID != "" && m.Photo != nil {
			k := albumKey{ck, m.AlbumID}
			al := in.albums[k]
			if al == nil {
				al = &album{}
				in.albums[k] = al
			}
			al.parts = append(al.parts, pt)
			al.gen++
			if al.timer != nil {
				al.timer.Stop()
			}
			gen := al.gen
			al.timer = time.AfterFunc(in.cfg.AlbumWait, func() { in.albumQuiet(k, gen) })
			continue
		}
		in.flushAlbumsLocked(ck, m.Sender.ID, pt.id)
		in.submitLocked(&job{chat: ck, ids: []int64{pt.id}, leases: []string{pt.lease}, keys: []msgKey{keyOf(m)}, msg: m})
	}
}

// flushAlbumsLocked queues the albums the sender began in the chat before the entry before,
// oldest first.
func (in *Intake) flushAlbumsLocked(ck queueKey, sender string, before int64) {
	var earlier []albumKey
	for k, al := range in.albums {
		if k.chat == ck && al.parts[0].msg.Sender.ID == sender && al.first() < before {
			earlier = append(earlier, k)
		}
	}
	slices.SortFunc(earlier, func(x, y albumKey) int { return cmp.Compare(in.albums[x].first(), in.albums[y].first()) })
	for _, k := range earlier {
		in.flushAlbumLocked(k)
	}
}

// first is the lowest inbox id of the album's photos.
func (al *album) first() int64 {
	return slices.MinFunc(al.parts, func(x, y part) int { return cmp.Compare(x.id, y.id) }).id
}

// albumQuiet queues an album whose wait is over, after the albums its sender began before it in
// the chat: albums handed in together (a batch, a restart, another replica's) end their waits at
// about the same moment, on timers that fire in any order.
//
// First the chat is looked at in the store: photos of the album that other replicas stored join
// it (and start its wait again), so that an album is not split because its photos reached
// several replicas.
func (in *Intake) albumQuiet(k albumKey, gen int) {
	in.mu.Lock()
	al := in.albums[k]
	if al == nil || al.gen != gen || in.stopping {
		in.mu.Unlock()
		return
	}
	lease := al.parts[0].lease
	in.mu.Unlock()
	p := k.chat.platform
	take, err := in.inbox.FinishInbox(in.tendCtx, in.lessee(p), string(p), map[string][]int64{lease: nil})
	if err != nil {
		in.log.Warn("intake: cannot look for an album's photos stored by other replicas", "platform", p, "chat", k.chat.chat, "err", err)
	}
	in.handIn(in.tendCtx, p, take, nil)
	in.mu.Lock()
	defer in.mu.Unlock()
	if al := in.albums[k]; al != nil && al.gen == gen && !in.stopping {
		in.flushAlbumsLocked(k.chat, al.parts[0].msg.Sender.ID, al.first())
		in.flushAlbumLocked(k)
	}
}

// flushAlbumLocked queues a complete album as one message: the first photo's ids, sender and
// time, every photo, the first caption. An album none of whose photos is addressed to the bot is
// finished without handling.
func (in *Intake) flushAlbumLocked(k albumKey) {
	al := in.albums[k]
	delete(in.albums, k)
	al.timer.Stop()
	slices.SortFunc(al.parts, func(x, y part) int { return cmp.Compare(x.id, y.id) })
	j := &job{chat: k.chat, album: true, msg: al.parts[0].msg}
	j.msg.Photo, j.msg.Text, j.msg.AlbumID = nil, "", ""
	addressed := false
	for _, pt := range al.parts {
		j.ids = append(j.ids, pt.id)
		j.leases = append(j.leases, pt.lease)
		j.keys = append(j.keys, keyOf(pt.msg))
		j.msg.Album = append(j.msg.Album, pt.msg.Photo)
		j.msg.Text = cmp.Or(j.msg.Text, pt.msg.Text)
		addressed = addressed || !pt.msg.Unaddressed
	}
	j.msg.Unaddressed = !addressed
	if len(j.msg.Album) == 1 {
		j.msg.Photo, j.msg.Album = j.msg.Album[0], nil
	}
	if !addressed {
		for i, id := range j.ids {
			in.mark.add(k.chat.platform, j.leases[i], id)
		}
		in.finishLocked(k.chat, j.keys)
		return
	}
	in.submitLocked(j)
}

func (in *Intake) submitLocked(j *job) {
	q := in.queues[j.chat]
	in.queues[j.chat] = append(q, j)
	if len(q) == 0 && !in.busy[j.chat] {
		in.ready = append(in.ready, j.chat)
		in.cond.Signal()
	}
}

// work runs jobs until the intake stops: it takes the first ready chat, runs its next job, and
// puts the chat back at the end if it has more.
func (in *Intake) work() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for {
		for len(in.ready) == 0 && !in.stopping {
			in.cond.Wait()
		}
		if in.stopping {
			return
		}
		ck := in.ready[0]
		in.ready = in.ready[1:]
		q := in.queues[ck]
		j := q[0]
		in.queues[ck] = q[1:]
		in.busy[ck] = true
		ch := in.channels[ck.platform].ch
		in.mu.Unlock()

		done := in.run(ch, j)

		in.mu.Lock()
		delete(in.busy, ck)
		if len(in.queues[ck]) > 0 {
			in.ready = append(in.ready, ck)
			in.cond.Signal()
		} else {
			delete(in.queues, ck)
		}
		for i, id := range j.ids {
			if done {
				in.mark.add(ck.platform, j.leases[i], id)
			} else {
				// Left in the inbox (held: not handed in again here); the chat is looked at for
				// what other replicas stored meanwhile.
				in.mark.add(ck.platform, j.leases[i])
			}
		}
		in.finishLocked(ck, j.keys)
	}
}

// run hands a job to the handler, retrying a failure with backoff, and reports whether the
// job's messages are done (answered, or never to be handled). Interrupted (a stop), or still
// failing after the retries, they stay in the inbox for the next start.
func (in *Intake) run(ch Channel, j *job) (done bool) {
	log := in.log.With("platform", j.chat.platform, "chat", j.chat.chat, "msg", j.msg.ID)
	for attempt := 0; ; attempt++ {
		err, panicked := in.handle(ch, j)
		switch {
		case panicked:
			return true // it would panic again at every start
		case errors.Is(err, ErrPanic):
			log.Error("intake: the handler panicked on the message; dropping it (it would panic again)", "err", err)
			return true
		case in.jobCtx.Err() != nil:
			log.Info("intake: handling interrupted; the message is handed in again at the next start")
			return false
		case err == nil:
			return true
		case attempt >= in.cfg.Retries:
			log.Error("intake: handling still fails after the retries; the message stays in the inbox for the next start",
				"attempts", attempt+1, "err", err)
			return false
		}
		delay := min(in.cfg.RetryDelay<<min(attempt, 16), time.Minute)
		log.Warn("intake: handling failed; retrying", "attempt", attempt+1, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-in.stopCh:
			t.Stop()
			log.Info("intake: stopping; the message is handed in again at the next start")
			return false
		}
	}
}

// handle is one attempt: the channel prepares the message, the handler answers it. A panic is
// recovered and reported.
func (in *Intake) handle(ch Channel, j *job) (err error, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			in.log.Error("intake: panic while handling a message; dropping it", "platform", j.chat.platform,
				"chat", j.chat.chat, "msg", j.msg.ID, "panic", p, "stack", string(debug.Stack()))
			err, panicked = fmt.Errorf("panic: %v", p), true
		}
	}()
	m := j.msg
	m.Photo = in.withFetch(ch, m.Photo)
	if m.Album != nil {
		m.Album = make([]*Photo, len(j.msg.Album))
		for i, p := range j.msg.Album {
			m.Album[i] = in.withFetch(ch, p)
		}
	}
	if pr, ok := ch.(Preparer); ok {
		pr.Prepare(in.jobCtx, &m)
	}
	return in.h.Handle(in.jobCtx, m, ch), false
}

// withFetch gives a stored photo its Fetch: its inline data, or the channel's FetchPhoto.
func (in *Intake) withFetch(ch Channel, p *Photo) *Photo {
	if p == nil {
		return nil
	}
	c := *p
	switch {
	case c.Data != nil:
		data := c.Data
		c.Fetch = func(ctx context.Context) ([]byte, error) { return data, ctx.Err() }
	case c.Ref != "":
		ref, limit := c.Ref, in.cfg.MaxPhotoBytes
		c.Fetch = func(ctx context.Context) ([]byte, error) { return ch.FetchPhoto(ctx, ref, limit) }
	default:
		c.Fetch = nil // the handler says it cannot read the photo
	}
	return &c
}

// WaitHandled blocks until the message (platform, chat, id) is no longer waiting or being
// handled (answered, or left in the inbox by a stop: after Stop it returns at once), or ctx
// ends.
func (in *Intake) WaitHandled(ctx context.Context, p Platform, chat, id string) error {
	k := msgKey{p, chat, id}
	in.mu.Lock()
	if _, ok := in.active[k]; !ok || in.stopping {
		in.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	in.waiters[k] = append(in.waiters[k], w)
	in.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		in.mu.Lock()
		defer in.mu.Unlock()
		if ws := slices.DeleteFunc(in.waiters[k], func(x chan struct{}) bool { return x == w }); len(ws) > 0 {
			in.waiters[k] = ws
		} else {
			delete(in.waiters, k)
		}
		return ctx.Err()
	}
}

// Busy is the text telling the sender of m that the bot is busy and to try again, in their
// language when the handler knows it (English otherwise).
func (in *Intake) Busy(ctx context.Context, m Message) string {
	if b, ok := in.h.(interface {
		BusyText(ctx context.Context, m Message) string
	}); ok {
		return b.BusyText(ctx, m)
	}
	return "The bot is busy right now. Please try again in a minute."
}

// Stopping is closed once Stop has closed the gate: no message starts after that.
func (in *Intake) Stopping() <-chan struct{} { return in.stopCh }

// Stop is the stop gate of a shutdown: from now on Accept returns ErrStopped and no message
// starts; those being handled finish until ctx ends, when their context is cancelled (they are
// resumed at the next start); the rest stays in the inbox. It returns once every worker is done
// and the finished messages are marked in the inbox; then the replica's chats are let go (its
// heartbeat removed), so that another replica hands in what it left. Stop is for once.
func (in *Intake) Stop(ctx context.Context) error {
	in.mu.Lock()
	if in.killed {
		in.mu.Unlock()
		return nil
	}
	in.closeGateLocked()
	in.mu.Unlock()
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("intake: messages still being handled at the drain deadline were interrupted (resumed at the next start): %w", ctx.Err())
		in.cancelJobs()
		<-done
	}
	in.cancelJobs()
	in.mark.close()
	// The heartbeats run until everything is marked: the chats are not taken while handled here.
	in.stopTending()
	if rerr := in.inbox.Retire(context.WithoutCancel(ctx), in.lessee("")); rerr != nil {
		err = errors.Join(err, fmt.Errorf("intake: let this replica's chats go (the others take them after the lease TTL): %w", rerr))
	}
	return err
}

// kill stops the intake as kill -9 would (a test's hook): no message starts or is marked done
// from now on, nothing is drained or let go, the heartbeats end. It returns once the workers
// are gone.
func (in *Intake) kill() {
	in.mark.kill()
	in.mu.Lock()
	in.killed = true
	in.closeGateLocked()
	in.mu.Unlock()
	in.cancelJobs()
	in.stopTending()
	in.wg.Wait()
}

func (in *Intake) stopTending() {
	in.endTending()
	<-in.tendDone
}

// closeGateLocked takes no more messages and starts none.
func (in *Intake) closeGateLocked() {
	if !in.stopping {
		in.stopping = true
		close(in.stopCh)
		for k, al := range in.albums {
			al.timer.Stop()
			delete(in.albums, k)
		}
		for k, ws := range in.waiters {
			for _, w := range ws {
				close(w)
			}
			delete(in.waiters, k)
		}
		in.cond.Broadcast()
	}
}

// tend records the replica's heartbeat every HeartbeatEvery and looks every AdoptEvery for the
// chats nobody hands in and for what other replicas stored for this replica's chats, until the
// intake stops. The heartbeats have a loop of their own: a look takes longer the more chats have
// messages waiting, and a heartbeat waiting for it could come later than the lease TTL.
func (in *Intake) tend() {
	defer close(in.tendDone)
	var beating sync.WaitGroup
	defer beating.Wait()
	beating.Go(in.beat)
	look := time.NewTicker(in.cfg.AdoptEvery)
	defer look.Stop()
	for {
		select {
		case <-in.tendCtx.Done():
			return
		case <-look.C:
			in.mu.Lock()
			var open []Platform
			for p, cs := range in.channels {
				if !cs.closed && !in.stopping {
					open = append(open, p)
				}
			}
			in.mu.Unlock()
			for _, p := range open {
				pending, err := in.inbox.AdoptInbox(in.tendCtx, in.lessee(p), string(p))
				if err != nil {
					if in.tendCtx.Err() == nil {
						in.log.Warn("intake: cannot look for messages nobody hands in", "platform", p, "err", err)
					}
					continue
				}
				if n := in.handIn(in.tendCtx, p, pending, nil); n > 0 {
					in.log.Info("intake: handing in messages of chats another replica left or stored", "platform", p, "messages", n)
				}
			}
		}
	}
}

// beat records the replica's heartbeat every HeartbeatEvery until the intake stops.
func (in *Intake) beat() {
	t := time.NewTicker(in.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-in.tendCtx.Done():
			return
		case <-t.C:
			l := in.lessee("")
			err := in.inbox.Heartbeat(in.tendCtx, l)
			if err == nil {
				in.beaten(l.Now)
			} else if in.tendCtx.Err() == nil {
				in.log.Warn("intake: cannot record the heartbeat; the other replicas take this one's chats if it stays missing",
					"ttl", in.cfg.LeaseTTL, "err", err)
			}
		}
	}
}

// marker deletes handled messages from the inbox off the workers' path, many in one commit:
// while one commit is written, the ids finished meanwhile gather for the next. Deleting late is
// safe: a message handed in again after a crash is not answered twice (the handler knows it). In
// the same commit it looks at the chats of the finished messages: what other replicas stored for
// them meanwhile is handed in, and a chat with nothing pending is let go.
type marker struct {
	in *Intake

	mu       sync.Mutex
	done     map[Platform]map[string][]int64 // by platform and lease: ids done (none: just look)
	dead     bool                            // killed: nothing is written
	wake     chan struct{}                   // capacity 1: "there are ids"
	stop     chan struct{}
	finished chan struct{}
	once     sync.Once
}

func newMarker(in *Intake) *marker {
	m := &marker{in: in, done: map[Platform]map[string][]int64{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), finished: make(chan struct{})}
	go m.loop()
	return m
}

// add notes ids as done under their chat's lease, or without ids the chat to be looked at.
func (m *marker) add(p Platform, lease string, ids ...int64) {
	m.mu.Lock()
	if m.done[p] == nil {
		m.done[p] = map[string][]int64{}
	}
	m.done[p][lease] = append(m.done[p][lease], ids...)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *marker) loop() {
	defer close(m.finished)
	for {
		select {
		case <-m.wake:
			m.flush()
		case <-m.stop:
			m.flush()
			return
		}
	}
}

func (m *marker) flush() {
	m.mu.Lock()
	all := m.done
	m.done = map[Platform]map[string][]int64{}
	dead := m.dead
	m.mu.Unlock()
	for p, done := range all {
		if dead {
			return
		}
		in := m.in
		take, err := in.inbox.FinishInbox(context.Background(), in.lessee(p), string(p), done)
		if err != nil {
			// Still held: not handed in again here; after a restart they are (and not answered
			// twice).
			in.log.Error("intake: cannot mark messages done; they are handed in again at the next start (and not answered twice)",
				"platform", p, "entries", done, "err", err)
			continue
		}
		in.mu.Lock()
		for _, ids := range done {
			for _, id := range ids {
				delete(in.held, heldKey{p, id})
			}
		}
		in.mu.Unlock()
		if in.handIn(context.Background(), p, take, nil) == 0 {
			in.letGo(p) // a closed channel's chats, now that their messages are done here
		}
	}
}

// close writes what is left and ends the loop.
func (m *marker) close() {
	m.once.Do(func() { close(m.stop) })
	<-m.finished
}

// kill drops what is left and writes nothing more.
func (m *marker) kill() {
	m.mu.Lock()
	m.dead = true
	m.done = map[Platform]map[string][]int64{}
	m.mu.Unlock()
	m.close()
}
