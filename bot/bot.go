// Package bot is CropShield's domain: the normalized message types every channel speaks, the
// Adapter interface every channel implements, and Handler, the one place where an incoming
// message becomes a reply (commands, languages, the photo cache, inference, the conversation log).
//
// Adapters translate a platform's events into Message values and hand them to the Intake, which
// keeps them durably, queues them per chat and hands them to Handler.Handle together with the
// adapter, a Responder that sends Reply values back through the same platform.
package bot

import (
	"context"
	"time"
)

// Platform names a messaging channel.
type Platform string

// The channels CropShield speaks.
const (
	Telegram Platform = "telegram"
	WhatsApp Platform = "whatsapp"
	WebChat  Platform = "webchat"
)

// ChatKind tells private chats from group chats.
type ChatKind string

// Chat kinds.
const (
	Private ChatKind = "private"
	Group   ChatKind = "group"
)

// ChatRef identifies a chat on a platform.
type ChatRef struct {
	Platform Platform
	ID       string
	Kind     ChatKind
	Title    string // group title, if any
}

// Sender is who sent a message.
type Sender struct {
	ID       string
	Name     string
	LangHint string // the platform's hint: Telegram language_code, a phone's country, Accept-Language
	IsAdmin  bool   // a group admin (only they may change a group's language)
}

// Photo is a photo attached to a message. Fetch is called only when the photo is not already
// known by its ContentID.
type Photo struct {
	// ContentID is the platform's stable id of the content (Telegram file_unique_id, WhatsApp
	// file SHA-256), "" if it has none.
	ContentID string
	// Size in bytes if the platform says so beforehand, 0 if unknown.
	Size int64
	MIME string
	// Ref is the adapter's own reference to the photo (a file id, the message holding the
	// media keys): the intake keeps it with the message in the inbox and fetches the photo
	// through the adapter's Channel.FetchPhoto, also after a restart.
	Ref string `json:",omitempty"`
	// Data is the photo itself when the channel delivered it inline (the web chat's upload): it
	// is kept in the inbox with the message. Nil otherwise.
	Data []byte `json:",omitempty"`
	// Fetch downloads the photo within the size limit; the intake sets it from Data or Ref
	// before the handler gets the message. It is not stored.
	Fetch func(ctx context.Context) ([]byte, error) `json:"-"`
}

// Message is one incoming message, normalized. The handler answers each (platform, chat, ID)
// once: a message delivered again after it was answered gets no second reply, and one whose
// handling was interrupted (a crash) is resumed without repeating the replies already sent.
type Message struct {
	ID     string // the platform's message id, unique within the chat
	Chat   ChatRef
	Sender Sender
	Text   string // text or caption
	Photo  *Photo
	// Album holds the photos of an album (Telegram media group) sent together; they are
	// diagnosed together and answered once. Photo is nil then.
	Album []*Photo
	// Choice is the data of a button the user tapped (a Telegram inline keyboard's callback, a
	// web chat button): one of the Choices of an earlier reply. Text and Photo are empty then.
	Choice string
	Time   time.Time
	// AlbumID marks one photo of an album (a Telegram media group) as the adapter received it:
	// the intake collects the photos with the same AlbumID in a chat and hands them to the
	// handler as one message with Album set (AlbumID empty then).
	AlbumID string `json:",omitempty"`
	// Unaddressed marks a group photo the adapter kept only because it may belong to an album
	// addressed to the bot: an album none of whose photos is addressed is not handled.
	Unaddressed bool `json:",omitempty"`
	// Ref is the adapter's own reference to the message, kept with it in the inbox (what its
	// Preparer needs, say).
	Ref string `json:",omitempty"`
}

// Choice is a button offered with a reply. Channels with buttons show Label and send Data back
// as Message.Choice when it is tapped; the reply's text already numbers the choices for channels
// without buttons (WhatsApp), where the user answers with the number or the name.
type Choice struct {
	Label string
	Data  string // at most 64 bytes (Telegram's callback_data limit)
}

// ReplyKind says what a reply is. Its value is also stored with the reply (store.Record.Kind),
// counted in the statistics, used as a metrics label and as the web chat's CSS class.
type ReplyKind string

// Reply kinds. The first six are the verdicts on a photo (Decide, Verdict.Kind).
const (
	KindNotLeaf      ReplyKind = "not_leaf"      // not a leaf: asks for a new photo
	KindCropQuestion ReplyKind = "crop_question" // asks which crop it is (Reply.Choices, Verdict.Crops)
	KindUnknownCrop  ReplyKind = "unknown_crop"  // a leaf of a crop the model does not know
	KindCropMismatch ReplyKind = "crop_mismatch" // the stated crop is contradicted by the photo
	KindUnsure       ReplyKind = "unsure"        // the top-1 is below the threshold: not sure, retake
	KindDiagnosis    ReplyKind = "diagnosis"     // the top-3, the disease (or healthy) and its advice
	KindCommand      ReplyKind = "command"       // the answer to a command or to text
	KindError        ReplyKind = "error"         // something went wrong: the photo, the store, a rate limit
	KindStaff        ReplyKind = "staff"         // written by support staff (SendStaffReply)
)

// ReplyKinds are all the reply kinds, in the order above.
func ReplyKinds() []ReplyKind {
	return []ReplyKind{KindNotLeaf, KindCropQuestion, KindUnknownCrop, KindCropMismatch, KindUnsure, KindDiagnosis,
		KindCommand, KindError, KindStaff}
}

// Reply is one outgoing message: text, and optionally a JPEG image (or an album of them) with a
// short caption. Channels with photo captions send Caption with the image and Text as a message
// after it; others show FullText.
type Reply struct {
	Chat    ChatRef
	ReplyTo string // the message id this answers, "" for none
	// Caption goes with Image or Images; it is kept within Telegram's 1024-character caption
	// limit in every language (a test checks the longest). Empty for text-only replies.
	Caption string
	Text    string
	Image   []byte // JPEG, nil for a text-only reply
	// Images are the overlays of an album reply (Image is nil then); Text belongs to them all.
	Images [][]byte
	// Kind says what the reply is, for logs, metrics, the conversation log and adapters that
	// render kinds differently.
	Kind ReplyKind
	// Choices are buttons to show with the reply (the crop question's), nil for none.
	Choices []Choice
}

// Responder sends replies back through the platform a message came from.
type Responder interface {
	Send(ctx context.Context, r Reply) error
}

// MessageHandler is what an adapter hands messages to; *Handler implements it.
type MessageHandler interface {
	Handle(ctx context.Context, m Message, out Responder) error
}

// Adapter is one messaging channel. Run opens the channel on the intake (Intake.Open), hands it
// the messages received until ctx is cancelled, closes the channel and returns nil after a clean
// stop; Send delivers replies (also replies that staff write later); FetchPhoto downloads the
// photos of its messages.
type Adapter interface {
	Channel
	Run(ctx context.Context, in *Intake) error
}

// VolatileOutbox is an optional Responder ability: what Send delivered does not outlive the
// process (the web chat's in-memory outbox, read by the page), so a reply attempted before a
// crash reached nobody and is sent again after it; on a platform it may have reached the user and
// is not sent twice.
type VolatileOutbox interface{ VolatileOutbox() }

// Typist is an optional Responder ability: show "working" (Telegram's upload_photo) while a photo
// is analysed.
type Typist interface {
	Typing(ctx context.Context, chat ChatRef) error
}
