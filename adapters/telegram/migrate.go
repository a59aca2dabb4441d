package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
)

// Chats is where the adapter records that a group continues under a new chat id; *bot.Moves
// implements it.
type Chats interface {
	MoveChat(ctx context.Context, p bot.Platform, from, to string, at time.Time) (moved bool, language string, err error)
}

// migration reads a group's migration notice: when a group is upgraded to a supergroup, the
// group gets a service message with migrate_to_chat_id and the supergroup one with
// migrate_from_chat_id. Either is enough, in whichever order they come.
func migration(m *tgbotapi.Message) (from, to int64, ok bool) {
	switch {
	case m == nil || !isGroup(m.Chat):
		return 0, 0, false
	case m.MigrateToChatID != 0 && m.MigrateToChatID != m.Chat.ID:
		return m.Chat.ID, m.MigrateToChatID, true
	case m.MigrateFromChatID != 0 && m.MigrateFromChatID != m.Chat.ID:
		return m.MigrateFromChatID, m.Chat.ID, true
	}
	return 0, 0, false
}

func isMigration(m *tgbotapi.Message) bool {
	_, _, ok := migration(m)
	return ok
}

// migrate records that chat from continues as chat to (Chats.MigrateChat): the group's language
// and the rest of its record go with it. A group the bot never talked in has nothing to carry.
func (a *Adapter) migrate(ctx context.Context, from, to int64, at time.Time) error {
	moved, lang, err := a.opts.Chats.MoveChat(ctx, bot.Telegram, strconv.FormatInt(from, 10), strconv.FormatInt(to, 10), at)
	switch {
	case err != nil:
		return fmt.Errorf("telegram: record that chat %d moved to %d: %w", from, to, err)
	case !moved:
		a.log.Info("telegram: a group the bot has not talked in became a supergroup; nothing to carry over", "from", from, "to", to)
		return nil
	}
	a.log.Info("telegram: group upgraded to a supergroup: its chat moved", "from", from, "to", to, "language", lang)
	return nil
}

// movedTo is the chat id a refused request names as the group's new one (400 with
// parameters.migrate_to_chat_id), 0 if none.
func movedTo(err error) int64 {
	var te *tgbotapi.Error
	if errors.As(err, &te) {
		return te.MigrateToChatID
	}
	return 0
}

// send makes one sending request to *chat. When Telegram refuses it because the group became a
// supergroup (400 with migrate_to_chat_id), the move is recorded, *chat becomes the new id (for
// the reply's later parts too) and the request is made once more, there. The refused request
// delivered nothing, so nothing is sent twice.
func (a *Adapter) send(ctx context.Context, chat *int64, method string, fn func(api *tgbotapi.BotAPI, chat int64) (*tgbotapi.APIResponse, error)) error {
	try := func(chat int64) error {
		_, err := a.call(ctx, chat, method, retrySend, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
			return fn(api, chat)
		})
		return err
	}
	err := try(*chat)
	moved := movedTo(err)
	if moved == 0 || moved == *chat {
		return err
	}
	a.log.Info("telegram: the group became a supergroup; sending there", "method", method, "from", *chat, "to", moved)
	// Learned from Telegram: kept even if ctx has ended meanwhile.
	if err := a.migrate(context.WithoutCancel(ctx), *chat, moved, a.opts.Now()); err != nil {
		a.log.Error("telegram: cannot record the group's move; the reply goes out anyway", "err", err)
	}
	*chat = moved
	return try(moved)
}
