package bot

import (
	"context"
	"time"

	"github.com/cropshield/cropshield/store"
)

// Store is the persistence the handler needs, composed of the small interfaces each of its parts
// uses (as whatsmeow composes its device store); *store.Store implements it.
type Store interface {
	TurnStore
	AnalysisStore
	PreferenceStore
	CropQuestionStore
	ConversationLog
	PageStore
	HandoffStore
}

// TurnStore is what the turn machine (turn.go) writes so that each message is answered exactly
// once: the inbound record with its chat and user, each reply's attempt and delivery, the end.
type TurnStore interface {
	GetTurn(ctx context.Context, platform, chatID, msgID string) (store.Turn, error)
	RecordInbound(ctx context.Context, r store.Record, chat *store.Chat, user *store.User) (store.Arrival, error)
	BeginReply(ctx context.Context, r store.Record, chat *store.Chat, user *store.User, k int) (store.Arrival, error)
	BeginDone(ctx context.Context, r store.Record, chat *store.Chat, user *store.User) (store.Arrival, error)
	AttemptReply(ctx context.Context, platform, chatID, msgID string, k int, inbound *store.Record) error
	ReplySent(ctx context.Context, msgID string, k int, out store.Record, finish bool) error
	FinishTurn(ctx context.Context, platform, chatID, msgID string, inbound *store.Record) error
	// UpdateMessage rewrites the inbound record (what handling found) outside a reply's write.
	UpdateMessage(ctx context.Context, r store.Record) error
	// AppendMessage logs a reply the platform did not take (Error "not delivered").
	AppendMessage(ctx context.Context, r store.Record) (uint64, error)
}

// AnalysisStore is the photo path's cache (photo.go): analyses by photo hash and model version,
// stored with their photo, and the platforms' content ids of photos already seen.
type AnalysisStore interface {
	GetAnalysis(ctx context.Context, photoHash, modelVersion string) (store.Analysis, error)
	PutAnalysis(ctx context.Context, a store.Analysis, photo []byte, mime string) error
	PutContentID(ctx context.Context, platform, contentID, photoHash string) error
	LookupContentID(ctx context.Context, platform, contentID string) (string, error)
}

// PreferenceStore is what chats and users chose (/language, /crop) and the rest the bot knows of
// them (store.ErrNotFound for one never seen).
type PreferenceStore interface {
	GetChat(ctx context.Context, platform, id string) (store.Chat, error)
	GetUser(ctx context.Context, platform, id string) (store.User, error)
	SetChatLanguage(ctx context.Context, platform, id, lang string) error
	SetUserLanguage(ctx context.Context, platform, id, lang string) error
	SetChatCrop(ctx context.Context, platform, id, crop string) error
	SetUserCrop(ctx context.Context, platform, id, crop string) error
}

// CropQuestionStore keeps the open "which crop?" question of each chat (crop.go).
type CropQuestionStore interface {
	PutCropQuestion(ctx context.Context, q store.CropQuestion) error
	GetCropQuestion(ctx context.Context, platform, chatID string, notBefore time.Time) (store.CropQuestion, error)
	DeleteCropQuestion(ctx context.Context, platform, chatID, photoHash string) error
}

// ConversationLog is the conversation as /history, the staff handoff and the pages read it.
type ConversationLog interface {
	RecentMessages(ctx context.Context, platform, chatID string, limit int) ([]store.Record, error)
	// GetCorrection is support staff's verdict on a photo (store.ErrNotFound if none).
	GetCorrection(ctx context.Context, photoHash string) (store.Correction, error)
}
