package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cropshield/cropshield/store"
)

// StaffLog is what a staff reply needs from the store: the conversation's log, and the shared
// outbox for a reply another replica sends (staffoutbox.go); *store.Store implements it.
type StaffLog interface {
	AppendMessage(ctx context.Context, r store.Record) (uint64, error)
	EnqueueStaffReply(ctx context.Context, r store.StaffReply) (uint64, error)
	StaffReplyOutcome(ctx context.Context, platform string, id uint64) (store.StaffReply, error)
}

// MaxStaffReply is the longest staff reply in runes (Telegram's message limit).
const MaxStaffReply = 4096

// SendStaffReply sends text written by the support staff member staff to a conversation through
// out, the adapter the conversation came from, and logs it in the conversation as an outbound
// message of kind "staff" marked with who wrote it. A reply the adapter refuses is logged as not
// delivered and the error wraps ErrNotDelivered.
//
// If out cannot send in this process now (RemoteSender: WhatsApp runs on another replica) the
// reply goes through the store's shared outbox to the replica that runs the channel, which sends
// and logs it (DeliverStaffReplies); SendStaffReply waits for the outcome up to 10 s, while ctx
// lasts, and returns an error wrapping ErrReplyQueued if it is still pending then.
func SendStaffReply(ctx context.Context, log StaffLog, out Responder, chat ChatRef, staff, text string, now time.Time) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return ErrEmptyReply
	}
	if n := len([]rune(text)); n > MaxStaffReply {
		return fmt.Errorf("bot: staff reply of %d characters, at most %d", n, MaxStaffReply)
	}
	if staff == "" {
		return errors.New("bot: a staff reply needs the staff member's name")
	}
	if r, ok := out.(RemoteSender); ok && !r.SendsHere() {
		return relayStaffReply(ctx, log, chat, staff, text, now)
	}
	rec := store.Record{Time: now, Platform: string(chat.Platform), ChatID: chat.ID, Direction: store.Outbound,
		Text: text, Kind: string(KindStaff), Staff: staff}
	sendErr := out.Send(ctx, Reply{Chat: chat, Text: text, Kind: KindStaff})
	if sendErr != nil {
		rec.Error = reasonNotDelivered
		sendErr = fmt.Errorf("%w: %w", ErrNotDelivered, sendErr)
	}
	if _, err := log.AppendMessage(context.WithoutCancel(ctx), rec); err != nil {
		return errors.Join(sendErr, fmt.Errorf("bot: log staff reply: %w", err))
	}
	return sendErr
}
