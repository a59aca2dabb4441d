package whatsapp

import "errors"

// Errors of this package, to be checked with errors.Is; the errors returned wrap them with the
// details.
var (
	// ErrNotLinked: the device store holds no linked device.
	ErrNotLinked = errors.New("whatsapp: no phone linked")
	// ErrLoggedOut: the phone removed the linked device, or it stayed offline too long.
	ErrLoggedOut = errors.New("whatsapp: logged out")
	// ErrStreamReplaced: another client connected with the same device keys.
	ErrStreamReplaced = errors.New("whatsapp: session taken over by another client")
	// ErrTemporaryBan: WhatsApp banned the number for a while.
	ErrTemporaryBan = errors.New("whatsapp: number temporarily banned")
	// ErrClientOutdated: WhatsApp refuses this whatsmeow version.
	ErrClientOutdated = errors.New("whatsapp: client version outdated")
	// ErrConnectRefused: WhatsApp refused the connection for another reason and will not be retried.
	ErrConnectRefused = errors.New("whatsapp: connection refused")
	// ErrStore: the SQL database failed.
	ErrStore = errors.New("whatsapp store")
	// ErrNotRunning: a reply while the adapter is not connected.
	ErrNotRunning = errors.New("whatsapp: adapter not running")
	// ErrNoConversation: a reply to a chat that has not written to the bot within the reply window.
	ErrNoConversation = errors.New("whatsapp: the chat has not written to the bot")
	// ErrMediaExpired: the photo left WhatsApp's servers and the sender's phone did not upload it again.
	ErrMediaExpired = errors.New("whatsapp: photo no longer downloadable")

	// Linking a phone (Link).

	// ErrAlreadyLinked: the store holds a linked device already.
	ErrAlreadyLinked = errors.New("whatsapp: a phone is already linked")
	// ErrBadPhone: the --phone number is not an international number.
	ErrBadPhone = errors.New("whatsapp: badly formatted phone number")
	// ErrLinkTimeout: nobody scanned the QR code or typed the pairing code in time.
	ErrLinkTimeout = errors.New("whatsapp: linking timed out")
	// ErrRateLimited: WhatsApp refuses more link attempts for now.
	ErrRateLimited = errors.New("whatsapp: too many link attempts")
	// ErrLinkFailed: the phone or WhatsApp rejected the link.
	ErrLinkFailed = errors.New("whatsapp: linking failed")

	// Internal.

	// errFileLimit is memFile's refusal to grow past its limit.
	errFileLimit = errors.New("whatsapp: download larger than the photo size limit")
	// errNotFound: no such row in the SQL store.
	errNotFound = errors.New("not found")
)
