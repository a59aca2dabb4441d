package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"time"

	"github.com/disintegration/imaging"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot"
)

// thumbSide is the largest side of the JPEG thumbnail WhatsApp shows before the image loads.
const thumbSide = 72

// sendTail bounds the rest of a reply once its first part went out: a reply is not cut in half by
// a shutdown.
const sendTail = 2 * time.Minute

// Send delivers a reply: each image as an image message (the caption on the first), then the
// text, all quoting the farmer's message. Only chats that wrote to the bot within ReplyWindow get
// replies, and messages are paced.
func (a *Adapter) Send(ctx context.Context, r bot.Reply) error {
	if r.Chat.Platform != bot.WhatsApp {
		return fmt.Errorf("whatsapp: reply for platform %q", r.Chat.Platform)
	}
	if !a.running.Load() {
		return ErrNotRunning
	}
	to, err := a.destination(ctx, r.Chat.ID)
	if err != nil {
		return err
	}
	quote := a.quote(ctx, r.Chat.ID, r.ReplyTo)
	images := r.Images
	if r.Image != nil {
		images = [][]byte{r.Image}
	}
	var parts []*waE2E.Message
	for i, img := range images {
		caption := ""
		if i == 0 {
			caption = r.Caption
		}
		m, err := a.imageMessage(ctx, img, caption, quote)
		if err != nil {
			return err
		}
		parts = append(parts, m)
	}
	text := r.Text
	if len(images) == 0 {
		text = r.FullText()
	}
	if text != "" {
		parts = append(parts, textMessage(text, quote))
	}
	for i, m := range parts {
		if i == 1 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), sendTail)
			defer cancel()
		}
		if err := a.sendOne(ctx, r.Chat.ID, to, m); err != nil {
			return fmt.Errorf("whatsapp: send part %d of %d of a %s reply: %w", i+1, len(parts), r.Kind, err)
		}
	}
	return nil
}

// destination is where replies to a chat go: the JID the chat last wrote from, if it wrote
// within the reply window.
func (a *Adapter) destination(ctx context.Context, chatID string) (types.JID, error) {
	jid, last, err := a.st.lastReceived(ctx, chatID)
	if err != nil {
		return types.EmptyJID, err
	}
	if last.IsZero() || a.opts.Now().Sub(last) > a.opts.ReplyWindow {
		return types.EmptyJID, fmt.Errorf("%w: %s (the bot only replies, never writes first)", ErrNoConversation, chatID)
	}
	return jid, nil
}

// quote is the context that quotes the farmer's message, nil if it is unknown.
func (a *Adapter) quote(ctx context.Context, chatID, msgID string) *waE2E.ContextInfo {
	if msgID == "" {
		return nil
	}
	row, err := a.st.inboxMessage(ctx, chatID, msgID)
	if err != nil {
		if !errors.Is(err, errNotFound) {
			a.log.Warn("cannot read the message to quote", "msg", msgID, "err", err)
		}
		return nil
	}
	var quoted waE2E.Message
	if err := proto.Unmarshal(row.Message, &quoted); err != nil {
		a.log.Warn("cannot decode the message to quote", "msg", msgID, "err", err)
		return nil
	}
	quoted.MessageContextInfo = nil // holds the message's secret: never echoed back
	return &waE2E.ContextInfo{
		StanzaID:      proto.String(msgID),
		Participant:   proto.String(row.Meta.Sender),
		QuotedMessage: &quoted,
	}
}

// imageMessage uploads a JPEG and describes it with every field WhatsApp clients expect.
func (a *Adapter) imageMessage(ctx context.Context, img []byte, caption string, quote *waE2E.ContextInfo) (*waE2E.Message, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("whatsapp: reply image is not a JPEG: %w", err)
	}
	thumb, err := thumbnail(img)
	if err != nil {
		return nil, err
	}
	up, err := a.client.Upload(ctx, img, whatsmeow.MediaImage)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: upload image: %w", err)
	}
	im := &waE2E.ImageMessage{
		URL:           proto.String(up.URL),
		DirectPath:    proto.String(up.DirectPath),
		MediaKey:      up.MediaKey,
		FileEncSHA256: up.FileEncSHA256,
		FileSHA256:    up.FileSHA256,
		FileLength:    proto.Uint64(up.FileLength),
		Width:         proto.Uint32(uint32(cfg.Width)),
		Height:        proto.Uint32(uint32(cfg.Height)),
		Mimetype:      proto.String("image/jpeg"),
		JPEGThumbnail: thumb,
		ContextInfo:   cloneContext(quote),
	}
	if caption != "" {
		im.Caption = proto.String(caption)
	}
	return &waE2E.Message{ImageMessage: im}, nil
}

func textMessage(text string, quote *waE2E.ContextInfo) *waE2E.Message {
	if quote == nil {
		return &waE2E.Message{Conversation: proto.String(text)}
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text), ContextInfo: cloneContext(quote)}}
}

func cloneContext(c *waE2E.ContextInfo) *waE2E.ContextInfo {
	if c == nil {
		return nil
	}
	return proto.Clone(c).(*waE2E.ContextInfo)
}

// thumbnail is a JPEG of at most thumbSide pixels a side.
func thumbnail(img []byte) ([]byte, error) {
	src, err := jpeg.Decode(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("whatsapp: decode reply image: %w", err)
	}
	small := imaging.Fit(src, thumbSide, thumbSide, imaging.Linear)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, small, &jpeg.Options{Quality: 60}); err != nil {
		return nil, fmt.Errorf("whatsapp: encode thumbnail: %w", err)
	}
	return buf.Bytes(), nil
}

// sendOne paces and sends one message, trying again while whatsmeow reconnects.
func (a *Adapter) sendOne(ctx context.Context, chatID string, to types.JID, m *waE2E.Message) error {
	if err := a.pace.wait(ctx, chatID); err != nil {
		return err
	}
	// How long to wait before each new try while WhatsApp is reconnecting.
	sendBackoff := [...]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i := 0; ; i++ {
		_, err := a.client.SendMessage(ctx, to, m)
		if err == nil {
			return nil
		}
		if i == len(sendBackoff) || !(errors.Is(err, whatsmeow.ErrNotConnected) || errors.Is(err, whatsmeow.ErrNotLoggedIn)) {
			return err
		}
		t := time.NewTimer(sendBackoff[i])
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while reconnecting: %w)", ctx.Err(), err)
		}
	}
}

// Typing shows "typing…" in the chat while a photo is analysed.
func (a *Adapter) Typing(ctx context.Context, chat bot.ChatRef) error {
	if !a.running.Load() {
		return ErrNotRunning
	}
	to, err := a.destination(ctx, chat.ID)
	if err != nil {
		return err
	}
	if err := a.client.SendChatPresence(ctx, to, types.ChatPresenceComposing, types.ChatPresenceMediaText); err != nil {
		return fmt.Errorf("whatsapp: typing: %w", err)
	}
	return nil
}
