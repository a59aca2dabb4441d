package dashboard

import (
	"context"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

// Store is the persistence the dashboard needs, composed of the small interfaces each of its
// parts uses (as whatsmeow composes its device store); *store.Store implements it.
type Store interface {
	SessionStore
	ConversationReader
	PhotoReader
	ReviewStore
	StaffAdmin
	Cache
	bot.Forgetter
	StatsReader
}

// SessionStore is what logins and sessions need (auth.go): the staff accounts and the sessions,
// kept by the hash of their token.
type SessionStore interface {
	GetStaff(ctx context.Context, name string) (store.StaffAccount, error)
	PutStaffSession(ctx context.Context, s store.StaffSession) error
	GetStaffSession(ctx context.Context, idHash string) (store.StaffSession, error)
	TouchStaffSession(ctx context.Context, idHash string, seen time.Time) error
	DeleteStaffSession(ctx context.Context, idHash string) error
	DeleteStaffSessionsWhere(ctx context.Context, expired func(store.StaffSession) bool) (int, error)
}

// ConversationReader is the conversations as the list, the thread and the exports read them
// (pages.go, export.go): summaries, message logs, the staff's actions and their replies still
// queued in the staff outbox.
type ConversationReader interface {
	ListConversations(ctx context.Context, o store.ListOptions) (store.Page, error)
	EachConversation(ctx context.Context, f store.ConversationFilter, fn func(store.Summary) error) error
	GetSummary(ctx context.Context, platform, chatID string) (store.Summary, error)
	Messages(ctx context.Context, platform, chatID string, afterSeq uint64, limit int) ([]store.Record, error)
	MessagesBefore(ctx context.Context, platform, chatID string, beforeSeq uint64, limit int) ([]store.Record, error)
	StaffActions(ctx context.Context, platform, chatID string, limit int) ([]store.StaffAction, error)
	QueuedStaffReplies(ctx context.Context, platform, chatID string) ([]store.StaffReply, error)
}

// PhotoReader is a farmer's photo with what the model made of it, whatever the model version.
type PhotoReader interface {
	StoredAnalysis(ctx context.Context, photoHash string) (store.Analysis, error)
	Overlay(ctx context.Context, photoHash string) ([]byte, error)
	GetPhoto(ctx context.Context, photoHash string) ([]byte, string, error)
}

// ReviewStore is what the staff's review writes and reads (actions.go): corrections of a
// diagnosis, a conversation resolved or reopened, and their replies logged (bot.StaffLog).
type ReviewStore interface {
	bot.StaffLog
	PutCorrection(ctx context.Context, c store.Correction, platform, chatID string) error
	GetCorrection(ctx context.Context, photoHash string) (store.Correction, error)
	Corrections(ctx context.Context) ([]store.Correction, error)
	SetResolved(ctx context.Context, platform, chatID string, resolved bool, by string, at time.Time) error
}

// StatsReader is the daily statistics (stats.go).
type StatsReader interface {
	Stats(ctx context.Context, from, to time.Time) ([]store.DayStats, error)
}
