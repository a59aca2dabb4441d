package telegram

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

// job is what a worker hands to the handler: one update, or the updates of one album.
type job struct {
	chat    int64
	updates []update
}

func (j job) ids() []int64 {
	ids := make([]int64, len(j.updates))
	for i, u := range j.updates {
		ids[i] = u.id
	}
	return ids
}

// pool runs jobs on n workers, in order within each chat and first come, first served across
// chats: a chat with work waits in a FIFO of ready chats; a worker takes the first ready chat,
// runs its next job, and puts the chat back at the end if it has more.
type pool struct {
	run func(job)

	mu      sync.Mutex
	cond    *sync.Cond
	queues  map[int64][]job // per chat, jobs not started
	busy    map[int64]bool  // chats with a job running
	ready   []int64         // chats with jobs and none running, oldest first
	pending int             // jobs queued or running
	ended   chan struct{}   // closed (and replaced) when a job ends
	stopped bool
	wg      sync.WaitGroup
}

func newPool(n int, run func(job)) *pool {
	p := &pool{run: run, queues: map[int64][]job{}, busy: map[int64]bool{}, ended: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	for range n {
		p.wg.Go(p.work)
	}
	return p
}

// submit queues j behind the chat's earlier jobs. It never blocks; it reports false after close.
func (p *pool) submit(j job) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	q := p.queues[j.chat]
	p.queues[j.chat] = append(q, j)
	p.pending++
	if len(q) == 0 && !p.busy[j.chat] {
		p.ready = append(p.ready, j.chat)
		p.cond.Signal()
	}
	return true
}

func (p *pool) work() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for len(p.ready) == 0 && !p.stopped {
			p.cond.Wait()
		}
		if p.stopped {
			return
		}
		chat := p.ready[0]
		p.ready = p.ready[1:]
		q := p.queues[chat]
		j := q[0]
		p.queues[chat] = q[1:]
		p.busy[chat] = true
		p.mu.Unlock()

		p.run(j)

		p.mu.Lock()
		delete(p.busy, chat)
		if len(p.queues[chat]) > 0 {
			p.ready = append(p.ready, chat)
			p.cond.Signal()
		} else {
			delete(p.queues, chat)
		}
		p.pending--
		close(p.ended)
		p.ended = make(chan struct{})
	}
}

// waitSpace blocks while more than limit jobs are pending, or until ctx ends.
func (p *pool) waitSpace(ctx context.Context, limit int) error {
	for {
		p.mu.Lock()
		n, ended := p.pending, p.ended
		p.mu.Unlock()
		if n <= limit {
			return nil
		}
		select {
		case <-ended:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close stops starting jobs; the queued ones are dropped (they stay in the inbox).
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.cond.Broadcast()
}

// wait returns when the workers have ended: after close, once the running jobs are done.
func (p *pool) wait() { p.wg.Wait() }

// albumKey identifies an album being collected.
type albumKey struct {
	chat  int64
	group string
}

type album struct {
	updates []update
	sender  int64
	gen     int // which timer is the live one
	timer   *time.Timer
}

// parseUpdates decodes raw updates and returns the highest update id seen. An update that does
// not decode is reported and skipped (and so confirmed: what cannot be read now cannot be read
// later either).
func (a *Adapter) parseUpdates(raws []json.RawMessage) (all []update, maxID int64) {
	maxID = -1
	for _, raw := range raws {
		var id struct {
			UpdateID int64 `json:"update_id"`
		}
		if err := json.Unmarshal(raw, &id); err != nil {
			a.log.Error("telegram: cannot decode an update; skipping it", "err", err)
			continue
		}
		maxID = max(maxID, id.UpdateID)
		var u tgbotapi.Update
		if err := json.Unmarshal(raw, &u); err != nil {
			a.log.Error("telegram: cannot decode an update; skipping it", "update", id.UpdateID, "err", err)
			continue
		}
		if u.CallbackQuery != nil {
			all = append(all, update{id: id.UpdateID, raw: raw, msg: callbackMessage(u.CallbackQuery), cb: u.CallbackQuery})
			continue
		}
		all = append(all, update{id: id.UpdateID, raw: raw, msg: u.Message})
	}
	return all, maxID
}

// keep filters the updates the inbox keeps.
func (a *Adapter) keep(all []update) []update {
	var out []update
	for _, u := range all {
		// A tapped button is an answer to the bot (in groups too): the handler decides.
		if u.cb != nil && u.msg != nil || u.cb == nil && a.wanted(u.msg) {
			out = append(out, u)
		}
	}
	return out
}

func inboxUpdates(us []update) []store.InboxUpdate {
	out := make([]store.InboxUpdate, len(us))
	for i, u := range us {
		out[i] = store.InboxUpdate{ID: u.id, Data: u.raw}
	}
	return out
}

func senderID(m *tgbotapi.Message) int64 {
	switch {
	case m.SenderChat != nil:
		return m.SenderChat.ID
	case m.From != nil:
		return m.From.ID
	}
	return 0
}

// accept hands saved updates to the workers: albums are collected first, and a message from
// the same sender in the same chat completes that sender's albums before it (order kept).
// Updates already queued or being handled are skipped (a webhook delivered twice).
func (a *Adapter) accept(us []update) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	for _, u := range us {
		if a.active[u.id] {
			continue
		}
		a.active[u.id] = true
		m := u.msg
		if u.cb != nil {
			a.submitLocked(job{chat: m.Chat.ID, updates: []update{u}})
			continue
		}
		if _, to, ok := migration(m); ok {
			// In the supergroup's queue: the group's language is carried over before the
			// supergroup's next message is handled.
			a.submitLocked(job{chat: to, updates: []update{u}})
			continue
		}
		if m.MediaGroupID != "" && hasImage(m) {
			k := albumKey{chat: m.Chat.ID, group: m.MediaGroupID}
			al := a.albums[k]
			if al == nil {
				al = &album{sender: senderID(m)}
				a.albums[k] = al
			}
			al.updates = append(al.updates, u)
			al.gen++
			if al.timer != nil {
				al.timer.Stop()
			}
			gen := al.gen
			// The batch is accepted under a.mu, so an album that arrived in one batch is whole
			// before any of its timers can take the lock.
			al.timer = time.AfterFunc(a.opts.AlbumWait, func() { a.albumQuiet(k, gen) })
			continue
		}
		var earlier []albumKey
		for k, al := range a.albums {
			if k.chat == m.Chat.ID && al.sender == senderID(m) {
				earlier = append(earlier, k)
			}
		}
		slices.SortFunc(earlier, func(x, y albumKey) int { return cmp.Compare(a.albums[x].updates[0].id, a.albums[y].updates[0].id) })
		for _, k := range earlier {
			a.flushAlbumLocked(k)
		}
		a.submitLocked(job{chat: m.Chat.ID, updates: []update{u}})
	}
}

func (a *Adapter) albumQuiet(k albumKey, gen int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if al := a.albums[k]; al != nil && al.gen == gen && !a.stopped {
		a.flushAlbumLocked(k)
	}
}

func (a *Adapter) flushAlbumLocked(k albumKey) {
	al := a.albums[k]
	delete(a.albums, k)
	al.timer.Stop()
	slices.SortFunc(al.updates, func(x, y update) int { return cmp.Compare(x.msg.MessageID, y.msg.MessageID) })
	a.submitLocked(job{chat: k.chat, updates: al.updates})
}

func (a *Adapter) submitLocked(j job) {
	if !a.pool.submit(j) {
		for _, id := range j.ids() {
			delete(a.active, id)
		}
	}
}

// stopIntake ends the intake: no more jobs start, albums being collected stay in the inbox.
func (a *Adapter) stopIntake() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	for k, al := range a.albums {
		al.timer.Stop()
		delete(a.albums, k)
	}
	a.pool.close()
}

// resume hands the updates left in the inbox by an earlier run to the workers; albums are
// regrouped.
func (a *Adapter) resume(ctx context.Context) error {
	pending, err := a.opts.Inbox.PendingInbox(ctx, platform)
	if err != nil {
		return fmt.Errorf("telegram: read the inbox: %w", err)
	}
	if len(pending) == 0 {
		return nil
	}
	raws := make([]json.RawMessage, len(pending))
	for i, p := range pending {
		raws[i] = p.Data
	}
	all, _ := a.parseUpdates(raws)
	var bad []int64
	var kept []update
	for _, u := range all {
		if u.msg == nil || u.msg.Chat == nil {
			bad = append(bad, u.id)
			continue
		}
		kept = append(kept, u)
	}
	if len(bad) > 0 {
		if err := a.opts.Inbox.DoneInbox(ctx, platform, bad...); err != nil {
			a.log.Warn("telegram: cannot drop unusable inbox entries", "err", err)
		}
	}
	a.log.Info("telegram: resuming updates left from the last run", "updates", len(kept))
	a.accept(kept)
	return nil
}

// handleJob translates a job into one message, hands it to the handler, and has its updates
// marked done when the handler returned nil without being interrupted. A panic is recovered and the
// update dropped: it would panic again at every start.
func (a *Adapter) handleJob(ctx context.Context, h bot.MessageHandler, j job) {
	ids := j.ids()
	log := a.log.With("chat", j.chat, "updates", ids)
	done := false
	defer func() {
		if p := recover(); p != nil {
			log.Error("telegram: panic while handling an update; dropping it", "panic", p, "stack", string(debug.Stack()))
			done = true
		}
		a.mu.Lock()
		if done {
			a.marker.add(ids)
		}
		for _, id := range ids {
			delete(a.active, id)
		}
		a.mu.Unlock()
	}()

	if m := j.updates[0].msg; isMigration(m) {
		// A service message, not a farmer's: recorded here, never handed to the handler (no
		// reply, no turn against the chat's rate limit).
		from, to, _ := migration(m)
		at := a.opts.Now()
		if m.Date != 0 {
			at = time.Unix(int64(m.Date), 0)
		}
		if err := a.migrate(ctx, from, to, at); err != nil {
			log.Error("telegram: the group's move not recorded; it stays in the inbox and is handed over again at the next start", "err", err)
			return
		}
		done = true
		return
	}
	if cb := j.updates[0].cb; cb != nil {
		// Stop the button's spinner. Best effort: after a restart the query may be too old to
		// answer, and the tap is handled all the same.
		if err := a.answerCallback(ctx, cb.ID); err != nil {
			log.Info("telegram: callback query not answered", "err", err)
		}
	}
	msg, ok := a.jobMessage(j)
	if !ok {
		done = true // a group album nobody addressed to the bot
		return
	}
	if msg.Chat.Kind == bot.Group && !msg.Sender.IsAdmin && isLanguageCommand(msg.Text) {
		m := j.updates[0].msg
		if m.From != nil {
			admin, err := a.isAdmin(ctx, m.Chat.ID, m.From.ID)
			if err != nil {
				log.Warn("telegram: cannot tell whether the sender is a group admin; treating as not", "err", err)
			}
			msg.Sender.IsAdmin = admin
		}
	}
	err := h.Handle(ctx, msg, a)
	switch {
	case ctx.Err() != nil:
		log.Info("telegram: handling interrupted; the update is resumed at the next start")
	case err != nil:
		log.Error("telegram: update not handled; it stays in the inbox and is handed over again at the next start", "err", err)
	default:
		done = true
	}
}

// jobMessage builds the handler's message for a job; ok is false for a group album that is not
// addressed to the bot.
func (a *Adapter) jobMessage(j job) (bot.Message, bool) {
	first := j.updates[0].msg
	if cb := j.updates[0].cb; cb != nil {
		// Unique per tap: a second tap of the same button is a new message, a redelivery of the
		// same tap is not.
		return bot.Message{ID: "cb" + cb.ID, Chat: chatRef(first.Chat), Sender: sender(first), Choice: cb.Data, Time: a.opts.Now()}, true
	}
	msg := a.message(first)
	if len(j.updates) == 1 && first.MediaGroupID == "" {
		return msg, true
	}
	addressed := !isGroup(first.Chat) || a.opts.GroupPhotos == GroupPhotosAll
	msg.Photo = nil
	for _, u := range j.updates {
		if p := a.photo(u.msg); p != nil {
			msg.Album = append(msg.Album, p)
		}
		if msg.Text == "" {
			msg.Text = cmp.Or(u.msg.Caption, u.msg.Text)
		}
		addressed = addressed || a.addressed(u.msg)
	}
	if len(msg.Album) == 1 {
		msg.Photo, msg.Album = msg.Album[0], nil
	}
	return msg, addressed
}

// isLanguageCommand: /language or /lang, or /crop (a group's choices only admins make), with or
// without @bot and an argument.
func isLanguageCommand(text string) bool {
	c, ok := bot.ParseCommand(text)
	return ok && (c.Name == "language" || c.Name == "lang" || c.Name == "crop")
}

// chatID parses the handler's chat id.
func chatID(c bot.ChatRef) (int64, error) {
	if c.Platform != bot.Telegram {
		return 0, fmt.Errorf("%w: reply for platform %q", ErrConfig, c.Platform)
	}
	id, err := strconv.ParseInt(c.ID, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: chat id %q", ErrConfig, c.ID)
	}
	return id, nil
}

// marker deletes handled updates from the inbox off the workers' path, many in one commit: while
// one commit is being written, the ids of the updates finished meanwhile gather for the next.
// Deleting late is safe: an update handled again after a crash is not answered twice (the
// handler knows it), it only costs a store lookup.
type marker struct {
	inbox Inbox
	log   *slog.Logger

	mu       sync.Mutex
	ids      []int64
	wake     chan struct{} // capacity 1: "there are ids"
	stop     chan struct{}
	finished chan struct{}
}

func newMarker(inbox Inbox, log *slog.Logger) *marker {
	m := &marker{inbox: inbox, log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), finished: make(chan struct{})}
	go m.loop()
	return m
}

func (m *marker) add(ids []int64) {
	m.mu.Lock()
	m.ids = append(m.ids, ids...)
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
	ids := m.ids
	m.ids = nil
	m.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	if err := m.inbox.DoneInbox(context.Background(), platform, ids...); err != nil {
		m.log.Error("telegram: cannot mark updates done; they are handed over again at the next start (and not answered twice)",
			"updates", ids, "err", err)
	}
}

// close writes what is left and ends the loop.
func (m *marker) close() {
	close(m.stop)
	<-m.finished
}
