package whatsapp

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot"
)

// storeTimeout bounds the inbox writes done on whatsmeow's event goroutine.
const storeTimeout = 10 * time.Second

// feedRetryDelay is the wait before feed tries again to hand in a message kept pending after a
// store error.
const feedRetryDelay = time.Second

// receive decides whether a message is for the bot, records it and hands it to the intake. It
// returns false (do not acknowledge: WhatsApp delivers it again) only when a message for the bot
// could not be recorded or the intake did not take it (stopping). A message the intake cannot take
// now (full) is kept pending in the inbox table, acknowledged, and handed in by feed once there is
// room: WhatsApp would deliver it again only at the next reconnection, possibly hours later.
func (a *Adapter) receive(e *events.Message) bool {
	info := e.Info
	switch {
	case info.IsFromMe, e.IsEdit, info.Edit != types.EditAttributeEmpty, e.Message == nil:
		return true // the operator's own messages, edits and revokes
	case info.Chat.Server != types.DefaultUserServer && info.Chat.Server != types.HiddenUserServer && info.Chat.Server != types.GroupServer:
		return true // status updates, broadcast lists, newsletters
	}
	m, ok := a.classify(e)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := a.identify(ctx, info, &m); err != nil {
		a.log.Error("cannot resolve the sender's ids; not acknowledging the message, WhatsApp delivers it again", "chat", info.Chat, "msg", info.ID, "err", err)
		return false
	}
	raw, err := proto.Marshal(e.Message)
	if err != nil {
		a.log.Error("cannot encode a WhatsApp message; dropping it", "chat", info.Chat, "msg", info.ID, "err", err)
		return true
	}
	r := inboxRow{ChatJID: info.Chat.ToNonAD().String(), MsgID: info.ID, Seq: a.nextSeq(), Meta: m, Message: raw}
	inserted, err := a.st.insertInbox(ctx, r)
	if err != nil {
		a.log.Error("cannot record a WhatsApp message; not acknowledging it, WhatsApp delivers it again", "chat", info.Chat, "msg", info.ID, "err", err)
		return false
	}
	if !inserted {
		// Delivered again (the receipt may not have reached WhatsApp): handed in again, the
		// intake and the handler answer it once.
		a.log.Info("WhatsApp message delivered again; already recorded", "chat", m.ChatID, "msg", info.ID)
	}
	msg, err := a.message(r)
	if err != nil {
		a.log.Error("cannot read a WhatsApp message; dropping it", "chat", info.Chat, "msg", info.ID, "err", err)
		return true
	}
	rs := a.current()
	if rs == nil {
		return false
	}
	a.backlogMu.Lock()
	defer a.backlogMu.Unlock()
	if !a.backlog {
		err = rs.in.TryAccept(ctx, bot.WhatsApp, []bot.Message{msg}, 0)
		if !errors.Is(err, bot.ErrBusy) {
			if err != nil {
				a.log.Warn("the intake did not take a WhatsApp message; not acknowledging it, WhatsApp delivers it again",
					"chat", m.ChatID, "msg", info.ID, "err", err)
				return false
			}
			return true
		}
	}
	if err := a.st.setInboxState(ctx, r.ChatJID, r.MsgID, statePending); err != nil {
		a.log.Error("the intake is full and a WhatsApp message cannot be kept pending; not acknowledging it, WhatsApp delivers it again",
			"chat", m.ChatID, "msg", info.ID, "err", err)
		return false
	}
	if !a.backlog {
		a.log.Warn("the intake is full: WhatsApp messages are kept pending and handed in as it frees", "chat", m.ChatID, "msg", info.ID)
	}
	a.backlog = true
	select {
	case rs.kick <- struct{}{}:
	default:
	}
	return true
}

// feed hands the messages kept pending (the intake was full) to the intake in the order received,
// waiting for room, until none is left or ctx ends (the run's end: those left are handed in by the
// next run's start).
func (a *Adapter) feed(ctx context.Context, rs *runState) {
	for {
		select {
		case <-rs.kick:
		case <-ctx.Done():
			return
		}
		for {
			rows, err := a.st.pendingInbox(ctx)
			if err != nil {
				a.log.Warn("cannot read the WhatsApp messages kept pending; retrying at the next message", "err", err)
				break
			}
			if len(rows) == 0 {
				a.backlogMu.Lock()
				// receive marks rows pending under this lock: none was marked since the read.
				rows, err = a.st.pendingInbox(ctx)
				if err == nil && len(rows) == 0 {
					a.backlog = false
					a.backlogMu.Unlock()
					break
				}
				a.backlogMu.Unlock()
				continue
			}
			for _, r := range rows {
				if err := a.handIn(ctx, rs, r); err != nil {
					if ctx.Err() != nil || errors.Is(err, bot.ErrStopped) {
						return
					}
					a.log.Warn("cannot hand a WhatsApp message kept pending to the intake; retrying", "msg", r.MsgID, "err", err)
					select {
					case <-time.After(feedRetryDelay):
					case <-ctx.Done():
						return
					}
					break
				}
			}
		}
	}
}

// handIn accepts one pending row, waiting for room, and marks it handed. A row that cannot be
// read is dropped, as receive drops such a message.
func (a *Adapter) handIn(ctx context.Context, rs *runState, r inboxRow) error {
	msg, err := a.message(r)
	if err != nil {
		a.log.Error("cannot read a WhatsApp message kept pending; dropping it", "msg", r.MsgID, "err", err)
	} else if err := rs.in.Accept(ctx, bot.WhatsApp, []bot.Message{msg}, 0); err != nil {
		return err
	}
	// Handed even if this mark fails: the intake and the handler take it once.
	return a.st.setInboxState(context.WithoutCancel(ctx), r.ChatJID, r.MsgID, stateHanded)
}

// nextSeq is the receive order of a new message: the clock in nanoseconds, strictly increasing.
func (a *Adapter) nextSeq() int64 {
	for {
		last := a.lastSeq.Load()
		seq := max(a.opts.Now().UnixNano(), last+1)
		if a.lastSeq.CompareAndSwap(last, seq) {
			return seq
		}
	}
}

// content is what a message carries, as far as the bot cares.
type content struct {
	text    string
	ctxInfo *waE2E.ContextInfo
	photo   media // an image, or a document holding an image
	known   bool  // a message type a person sends (text, media, contact, location)
}

func contentOf(m *waE2E.Message) content {
	switch {
	case m.GetImageMessage() != nil:
		im := m.GetImageMessage()
		return content{text: im.GetCaption(), ctxInfo: im.GetContextInfo(), photo: im, known: true}
	case m.GetDocumentMessage() != nil:
		d := m.GetDocumentMessage()
		c := content{text: d.GetCaption(), ctxInfo: d.GetContextInfo(), known: true}
		if strings.HasPrefix(d.GetMimetype(), "image/") {
			c.photo = d
		}
		return c
	case m.GetConversation() != "":
		return content{text: m.GetConversation(), known: true}
	case m.GetExtendedTextMessage() != nil:
		t := m.GetExtendedTextMessage()
		return content{text: t.GetText(), ctxInfo: t.GetContextInfo(), known: true}
	case m.GetVideoMessage() != nil:
		v := m.GetVideoMessage()
		return content{text: v.GetCaption(), ctxInfo: v.GetContextInfo(), known: true}
	case m.GetAudioMessage() != nil:
		return content{ctxInfo: m.GetAudioMessage().GetContextInfo(), known: true}
	case m.GetStickerMessage() != nil:
		return content{ctxInfo: m.GetStickerMessage().GetContextInfo(), known: true}
	case m.GetLocationMessage() != nil, m.GetContactMessage() != nil, m.GetLiveLocationMessage() != nil:
		return content{known: true}
	}
	return content{} // reactions, protocol messages, polls, key distribution, ...
}

// classify decides whether the bot answers a message and notes what it decided. In private
// chats every message a person sends is handed over (the handler asks for a photo where there is
// none); in groups only photos that mention the bot or whose caption starts with the diagnose
// word (every photo if so configured), commands addressed to the bot, and replies quoting one of
// the bot's messages (the answer to its "which crop?" question).
func (a *Adapter) classify(e *events.Message) (meta, bool) {
	c := contentOf(e.Message)
	if !c.known {
		return meta{}, false
	}
	pn, lid := a.client.OwnID()
	mentioned := false
	for _, j := range c.ctxInfo.GetMentionedJID() {
		if isOwn(j, pn, lid) {
			mentioned = true
		}
	}
	text := strings.TrimSpace(c.text)
	if mentioned {
		text = stripMentions(text, pn, lid)
	}
	cmd, _ := bot.ParseCommand(text)
	m := meta{Group: e.Info.IsGroup || e.Info.Chat.Server == types.GroupServer, Text: text, Command: cmd.Name,
		PushName: e.Info.PushName, FromMe: e.Info.IsFromMe, Time: e.Info.Timestamp, Addressing: string(e.Info.AddressingMode)}
	if c.photo != nil {
		im, _ := c.photo.(*waE2E.ImageMessage)
		m.ViewOnce = e.IsViewOnce || im.GetViewOnce()
	}
	if !m.Group {
		return m, true
	}
	switch {
	case c.photo != nil:
		return m, a.opts.GroupAllPhotos || mentioned || startsWithWord(text, a.opts.DiagnoseWord)
	case m.Command != "":
		return m, mentioned || a.isGroupCommand(m.Command)
	case c.ctxInfo.GetStanzaID() != "" && isOwn(c.ctxInfo.GetParticipant(), pn, lid):
		return m, true
	}
	return m, false
}

// isOwn tells whether a mentioned JID string is the bot's account (by phone number or LID).
func isOwn(s string, pn, lid types.JID) bool {
	j, err := types.ParseJID(s)
	if err != nil {
		return false
	}
	j = j.ToNonAD()
	return (!pn.IsEmpty() && j.User == pn.User && j.Server == pn.Server) ||
		(!lid.IsEmpty() && j.User == lid.User && j.Server == lid.Server)
}

// stripMentions removes the bot's @mentions from the start of a text ("@254700000001 /language
// sw" → "/language sw").
func stripMentions(text string, pn, lid types.JID) string {
	for {
		before := text
		for _, j := range []types.JID{pn, lid} {
			if !j.IsEmpty() {
				if startsWithWord(text, "@"+j.User) {
					text = strings.TrimSpace(text[len(j.User)+1:])
				}
			}
		}
		if text == before {
			return text
		}
	}
}

// startsWithWord tells whether text starts with word (case-insensitive) followed by the end or
// white space.
func startsWithWord(text, word string) bool {
	if len(text) < len(word) || !strings.EqualFold(text[:len(word)], word) {
		return false
	}
	rest := text[len(word):]
	return rest == "" || unicode.IsSpace(rune(rest[0]))
}

// identify sets the sender's canonical id (the phone-number JID when known, else the LID), phone
// number and the canonical chat id, and keeps the sender's LID↔phone pair. When it learns the pair
// of a LID, what the bot kept under the LID (the farmer's language, private chat and conversation)
// first moves to the phone-number id, so that this message is already answered in the farmer's
// language and logged in the phone-number conversation.
func (a *Adapter) identify(ctx context.Context, info types.MessageInfo, m *meta) error {
	var pn, lid types.JID
	for _, j := range []types.JID{info.Sender.ToNonAD(), info.SenderAlt.ToNonAD()} {
		switch {
		case j.Server == types.DefaultUserServer && pn.IsEmpty():
			pn = j
		case j.Server == types.HiddenUserServer && lid.IsEmpty():
			lid = j
		}
	}
	if !lid.IsEmpty() {
		known, err := a.st.phoneOf(ctx, lid)
		if err != nil {
			return err
		}
		known = known.ToNonAD()
		if pn.IsEmpty() {
			pn = known
		}
		if pn.IsEmpty() {
			// whatsmeow learns pairs from more places than messages (group member lists).
			if pn, err = a.client.PhoneOf(ctx, lid); err != nil {
				a.log.Warn("cannot look up a LID's phone number", "lid", lid, "err", err)
				pn = types.EmptyJID
			}
			pn = pn.ToNonAD()
		}
		if !pn.IsEmpty() && pn != known {
			at := m.Time
			if at.IsZero() {
				at = a.opts.Now()
			}
			// A pair new to the adapter: the LID may have been the farmer's id until now. A
			// failed move leaves the pair unremembered, so that the next message tries again.
			if !known.IsEmpty() || a.moveUser(ctx, lid, pn, at) {
				if err := a.st.rememberPair(ctx, lid, pn, a.opts.Now()); err != nil {
					return err
				}
			}
		}
	}
	m.Sender = info.Sender.ToNonAD().String()
	switch {
	case !pn.IsEmpty():
		m.SenderID, m.Phone = pn.String(), "+"+pn.User
	case !lid.IsEmpty():
		m.SenderID = lid.String()
	default:
		m.SenderID = m.Sender
	}
	m.ChatID = info.Chat.ToNonAD().String()
	if !m.Group {
		// One conversation per farmer, whether WhatsApp addressed it by phone number or LID.
		m.ChatID = m.SenderID
	}
	return nil
}

// followPair hands a message recorded from a farmer's LID over as sent by their phone-number id
// when the pair was learnt after the message arrived (it waited in the intake): the farmer's
// record moved there (identify), so the reply's language is theirs and a /language sent before
// the move lands where it is read. The chat stays the one the message was recorded in: replies
// go where the farmer wrote from. A failed lookup changes nothing.
func (a *Adapter) followPair(ctx context.Context, msg *bot.Message) {
	lid, err := types.ParseJID(msg.Sender.ID)
	if err != nil || lid.Server != types.HiddenUserServer {
		return
	}
	pn, err := a.st.phoneOf(ctx, lid)
	if err != nil {
		a.log.Warn("cannot look up a LID's phone number; the message is handled under the LID", "lid", lid, "msg", msg.ID, "err", err)
		return
	}
	if pn.IsEmpty() {
		return
	}
	pn = pn.ToNonAD()
	msg.Sender.ID, msg.Sender.LangHint = pn.String(), "+"+pn.User
}

// ref names a received message (its row) in bot.Message.Ref and bot.Photo.Ref.
type ref struct {
	Chat string `json:"c"` // the chat's JID
	ID   string `json:"m"`
}

func (r inboxRow) ref() string {
	b, _ := json.Marshal(ref{Chat: r.ChatJID, ID: r.MsgID}) // cannot fail
	return string(b)
}

// row reads the received message a Ref names.
func (a *Adapter) row(ctx context.Context, s string) (inboxRow, error) {
	var r ref
	if err := json.Unmarshal([]byte(s), &r); err != nil || r.Chat == "" || r.ID == "" {
		return inboxRow{}, fmt.Errorf("whatsapp: bad message reference %q", s)
	}
	return a.st.receivedMessage(ctx, r.Chat, r.ID)
}

// message builds the bot.Message of a recorded message: what is known when it arrives. What is
// known only when it is handled (the sender's phone-number id learnt meanwhile, the group's
// title and admins) is Prepare's.
func (a *Adapter) message(r inboxRow) (bot.Message, error) {
	var wm waE2E.Message
	if err := proto.Unmarshal(r.Message, &wm); err != nil {
		return bot.Message{}, fmt.Errorf("decode message %s: %w", r.MsgID, err)
	}
	m := r.Meta
	msg := bot.Message{
		ID:     r.MsgID,
		Chat:   bot.ChatRef{Platform: bot.WhatsApp, ID: m.ChatID, Kind: bot.Private},
		Sender: bot.Sender{ID: m.SenderID, Name: m.PushName, LangHint: m.Phone},
		Text:   m.Text,
		Time:   m.Time,
		Ref:    r.ref(),
	}
	if m.Group {
		msg.Chat.Kind = bot.Group
	}
	c := contentOf(&wm)
	if c.photo == nil {
		return msg, nil
	}
	p := &bot.Photo{MIME: mimeOf(c.photo), Ref: r.ref()}
	if !m.ViewOnce {
		if sum := c.photo.GetFileSHA256(); len(sum) == 32 {
			p.ContentID = hex.EncodeToString(sum)
		}
		if l, ok := c.photo.(interface{ GetFileLength() uint64 }); ok {
			p.Size = int64(l.GetFileLength())
		}
	}
	msg.Photo = p
	return msg, nil
}

// Prepare is called by the intake just before the handler gets a message: the sender's
// phone-number id learnt meanwhile, the group's title and (for the group choices only admins
// make) whether the sender is an admin now, and the blue ticks: the message is being handled.
func (a *Adapter) Prepare(ctx context.Context, msg *bot.Message) {
	a.followPair(ctx, msg)
	r, err := a.row(ctx, msg.Ref)
	if err != nil {
		a.log.Warn("cannot read a received message to prepare it", "msg", msg.ID, "err", err)
		return
	}
	if r.Meta.Group {
		chat, err := types.ParseJID(r.ChatJID)
		if err == nil {
			admin := r.Meta.Command == "language" || r.Meta.Command == "lang" || r.Meta.Command == "crop" // group choices: admins only
			g := a.groups.get(ctx, a.client, chat, admin, a.opts.Now())
			msg.Chat.Title = g.title
			if admin {
				msg.Sender.IsAdmin = g.isAdmin(r.Meta.Sender, r.Meta.SenderID)
			}
		}
	}
	a.markRead(ctx, r)
}

// FetchPhoto downloads the photo of the received message ref names. View-once photos are refused:
// the farmer asked that the photo not be kept, and the bot keeps every photo it diagnoses for
// staff review. The handler answers in the farmer's language that it cannot read such photos and
// asks for a normal one.
func (a *Adapter) FetchPhoto(ctx context.Context, ref string, _ int64) ([]byte, error) {
	r, err := a.row(ctx, ref)
	if err != nil {
		return nil, err
	}
	if r.Meta.ViewOnce {
		return nil, bot.PhotoUnsupported("view-once")
	}
	var wm waE2E.Message
	if err := proto.Unmarshal(r.Message, &wm); err != nil {
		return nil, fmt.Errorf("whatsapp: decode message %s: %w", r.MsgID, err)
	}
	c := contentOf(&wm)
	if c.photo == nil {
		return nil, fmt.Errorf("whatsapp: message %s has no photo", r.MsgID)
	}
	info, err := r.messageInfo()
	if err != nil {
		return nil, err
	}
	return a.download(ctx, &info, c.photo)
}

func mimeOf(m media) string {
	if t, ok := m.(interface{ GetMimetype() string }); ok && t.GetMimetype() != "" {
		return t.GetMimetype()
	}
	return "image/jpeg"
}

// messageInfo is the part of the original MessageInfo that receipts need.
func (r inboxRow) messageInfo() (types.MessageInfo, error) {
	chat, err := types.ParseJID(r.ChatJID)
	if err != nil {
		return types.MessageInfo{}, fmt.Errorf("chat %q: %w", r.ChatJID, err)
	}
	sender, err := types.ParseJID(r.Meta.Sender)
	if err != nil {
		return types.MessageInfo{}, fmt.Errorf("sender %q: %w", r.Meta.Sender, err)
	}
	return types.MessageInfo{
		MessageSource: types.MessageSource{Chat: chat, Sender: sender, IsFromMe: r.Meta.FromMe, IsGroup: r.Meta.Group,
			AddressingMode: types.AddressingMode(r.Meta.Addressing)},
		ID: r.MsgID, Timestamp: r.Meta.Time, PushName: r.Meta.PushName,
	}, nil
}

// markRead shows the farmer blue ticks: the message is recorded and being handled.
func (a *Adapter) markRead(ctx context.Context, r inboxRow) {
	info, err := r.messageInfo()
	if err != nil {
		return
	}
	sender := types.EmptyJID
	if r.Meta.Group {
		sender = info.Sender
	}
	if err := a.client.MarkRead(ctx, []types.MessageID{r.MsgID}, r.Meta.Time, info.Chat, sender); err != nil {
		a.log.Debug("cannot mark message read", "msg", r.MsgID, "err", err)
	}
}

// groupCache keeps group titles and admins; group info is fetched at most every groupTTL, and
// afresh for /language, which only admins may use.
type groupCache struct {
	mu     sync.Mutex
	groups map[types.JID]groupInfo
}

type groupInfo struct {
	title   string
	admins  map[string]bool // phone-number JIDs and LIDs
	fetched time.Time
}

const groupTTL = time.Hour

func (g *groupCache) get(ctx context.Context, c Client, jid types.JID, fresh bool, now time.Time) groupInfo {
	g.mu.Lock()
	cached, ok := g.groups[jid]
	g.mu.Unlock()
	if ok && !fresh && now.Sub(cached.fetched) < groupTTL {
		return cached
	}
	gi, err := c.GetGroupInfo(ctx, jid)
	if err != nil || gi == nil {
		return cached // the title stays unknown, nobody counts as admin
	}
	info := groupInfo{title: gi.Name, admins: map[string]bool{}, fetched: now}
	for _, p := range gi.Participants {
		if p.IsAdmin || p.IsSuperAdmin {
			for _, j := range []types.JID{p.JID, p.PhoneNumber, p.LID} {
				if !j.IsEmpty() {
					info.admins[j.ToNonAD().String()] = true
				}
			}
		}
	}
	g.mu.Lock()
	if g.groups == nil {
		g.groups = map[types.JID]groupInfo{}
	}
	g.groups[jid] = info
	g.mu.Unlock()
	return info
}

func (g *groupCache) forget(jid types.JID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.groups, jid)
}

func (gi groupInfo) isAdmin(ids ...string) bool {
	for _, id := range ids {
		if gi.admins[id] {
			return true
		}
	}
	return false
}
