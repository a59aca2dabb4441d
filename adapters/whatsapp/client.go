package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// Client is the part of *whatsmeow.Client the adapter uses, so that tests can stand in for
// WhatsApp's servers. WrapClient adapts a real client.
type Client interface {
	// OwnID is the linked account's phone-number JID and LID (empty before linking).
	OwnID() (pn, lid types.JID)
	// PhoneOf is the phone-number JID whatsmeow knows for a LID (empty if none).
	PhoneOf(ctx context.Context, lid types.JID) (types.JID, error)
	Connect() error
	Disconnect()
	AddEventHandlerWithSuccessStatus(handler whatsmeow.EventHandlerWithSuccessStatus) uint32
	RemoveEventHandler(id uint32) bool

	// DownloadToFile streams an attachment into file and decrypts it there.
	DownloadToFile(ctx context.Context, msg whatsmeow.DownloadableMessage, file whatsmeow.File) error
	SendMediaRetryReceipt(ctx context.Context, message *types.MessageInfo, mediaKey []byte) error
	Upload(ctx context.Context, plaintext []byte, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	SendMessage(ctx context.Context, to types.JID, message *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error)
	MarkRead(ctx context.Context, ids []types.MessageID, timestamp time.Time, chat, sender types.JID, receiptTypeExtra ...types.ReceiptType) error
	SendChatPresence(ctx context.Context, jid types.JID, state types.ChatPresence, media types.ChatPresenceMedia) error
	GetGroupInfo(ctx context.Context, jid types.JID) (*types.GroupInfo, error)
}

// realClient is a *whatsmeow.Client as a Client.
type realClient struct{ *whatsmeow.Client }

func (c realClient) OwnID() (types.JID, types.JID) {
	if c.Store == nil || c.Store.ID == nil {
		return types.EmptyJID, types.EmptyJID
	}
	return c.Store.ID.ToNonAD(), c.Store.LID.ToNonAD()
}

func (c realClient) PhoneOf(ctx context.Context, lid types.JID) (types.JID, error) {
	if c.Store == nil || c.Store.LIDs == nil {
		return types.EmptyJID, nil
	}
	return c.Store.LIDs.GetPNForLID(ctx, lid)
}

// WrapClient adapts a whatsmeow client (from NewWhatsmeowClient) to Client.
func WrapClient(c *whatsmeow.Client) Client { return realClient{c} }

// NewWhatsmeowClient builds the whatsmeow client of a device with the settings the adapter relies
// on: automatic reconnects (also when the first connection fails), acknowledgements sent only
// after the event handler returned (it returns true once the message is in the inbox), and the
// decrypted-event buffer, so that a message decrypted but not acknowledged before a crash is
// handed in again instead of failing to decrypt a second time.
func NewWhatsmeowClient(device *store.Device, log *slog.Logger) *whatsmeow.Client {
	c := whatsmeow.NewClient(device, newWALogger(log, "Client", false))
	c.EnableAutoReconnect = true
	c.InitialAutoReconnect = true
	c.SynchronousAck = true
	c.EnableDecryptedEventBuffer = true
	return c
}

// waLogger sends whatsmeow's log to slog. whatsmeow's debug lines are dropped unless debug is
// set: they contain protocol dumps and QR code contents.
type waLogger struct {
	log   *slog.Logger
	debug bool
}

func newWALogger(log *slog.Logger, module string, debug bool) waLog.Logger {
	return waLogger{log: log.With("whatsmeow", module), debug: debug}
}

func (l waLogger) Errorf(msg string, args ...any) { l.log.Error(fmt.Sprintf(msg, args...)) }
func (l waLogger) Warnf(msg string, args ...any)  { l.log.Warn(fmt.Sprintf(msg, args...)) }
func (l waLogger) Infof(msg string, args ...any)  { l.log.Info(fmt.Sprintf(msg, args...)) }
func (l waLogger) Debugf(msg string, args ...any) {
	if l.debug {
		l.log.Debug(fmt.Sprintf(msg, args...))
	}
}
func (l waLogger) Sub(module string) waLog.Logger {
	return waLogger{log: l.log.With("module", module), debug: l.debug}
}
