package bot

import "errors"

// Errors of this package, to be checked with errors.Is; the errors returned wrap them with the
// details. (ErrBadName, of Pages.SetName, is in page.go.)
var (
	// The intake (Intake.Accept, TryAccept).

	// ErrBusy: the chat's queue or the whole intake's is full; nothing was stored. The adapter
	// does not acknowledge the message (the platform delivers it again), keeps it until there is
	// room (WhatsApp) or tells the user to try again (the web chat).
	ErrBusy = errors.New("intake: busy, try again")
	// ErrStopped: the intake has stopped taking messages (shutdown) or the channel is closed;
	// nothing was stored.
	ErrStopped = errors.New("intake: stopped")
	// ErrNotOpen: Accept for a platform whose channel was never opened.
	ErrNotOpen = errors.New("intake: channel not open")
	// ErrPanic: handling a message panicked before the message was recorded (Handler.Handle).
	// The intake logs it and drops the message instead of retrying it: it would panic again.
	ErrPanic = errors.New("bot: panic while handling a message")

	// Staff replies (SendStaffReply).

	// ErrEmptyReply: a staff reply has no text.
	ErrEmptyReply = errors.New("bot: empty staff reply")
	// ErrNotDelivered: the platform did not take the staff reply (it is logged as not delivered).
	ErrNotDelivered = errors.New("bot: staff reply not delivered")
	// ErrReplyQueued: the staff reply waits in the shared outbox for the replica that runs its
	// channel (none does now); it goes out, and is logged, when one does.
	ErrReplyQueued = errors.New("bot: staff reply queued for the replica running its channel")

	// The handler's own.

	// errTurnUnwritten: a turn's write failed; Handle returns it so the intake hands the message
	// in again.
	errTurnUnwritten = errors.New("turn not finished: a write failed, the message is to be handed in again")
	// errFetch: the photo could not be downloaded from its platform.
	errFetch = errors.New("download photo")
)

// Reasons noted on a message the bot did not answer as asked (store.Record.Error): a stored
// record is matched by these, never by other text.
const (
	// reasonRateLimited: the farmer's message came over the chat's rate limit (Config.Burst).
	reasonRateLimited = "rate limited"
	// reasonNotDelivered: the platform did not take the reply (an outbound record).
	reasonNotDelivered = "not delivered"
)
