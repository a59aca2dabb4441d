package bot

import (
	"context"
	"errors"
	"time"

	"github.com/cropshield/cropshield/store"
)

// IDStore moves what the bot keeps under a chat or user id that changed; *store.Store
// implements it.
type IDStore interface {
	MigrateChat(ctx context.Context, platform, from, to string, at time.Time) (store.Chat, error)
	MigrateUser(ctx context.Context, platform, from, to string, at time.Time) (store.User, error)
}

// Moves is what adapters call when a platform tells them an id changed (a Telegram group became
// a supergroup, a WhatsApp farmer known by LID shows a phone number): the language, crop, record
// and conversation move to the new id in one transaction. Adapters never see the store.
type Moves struct{ st IDStore }

// NewMoves builds Moves on the store.
func NewMoves(st IDStore) *Moves { return &Moves{st: st} }

// MoveChat moves chat from to chat to. moved is false when the bot kept nothing under from (a
// group it never talked in); language is the moved chat's.
func (m *Moves) MoveChat(ctx context.Context, p Platform, from, to string, at time.Time) (moved bool, language string, err error) {
	c, err := m.st.MigrateChat(ctx, string(p), from, to, at)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, "", nil
	case err != nil:
		return false, "", err
	}
	return true, c.Language, nil
}

// MoveUser moves user from (and their private chat) to user to, as MoveChat.
func (m *Moves) MoveUser(ctx context.Context, p Platform, from, to string, at time.Time) (moved bool, language string, err error) {
	u, err := m.st.MigrateUser(ctx, string(p), from, to, at)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, "", nil
	case err != nil:
		return false, "", err
	}
	return true, u.Language, nil
}
