package bot_test

import (
	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

// The store implements every interface the bot declares for it, the composed Store and each of
// its parts.
var (
	_ bot.Store             = (*store.Store)(nil)
	_ bot.TurnStore         = (*store.Store)(nil)
	_ bot.AnalysisStore     = (*store.Store)(nil)
	_ bot.PreferenceStore   = (*store.Store)(nil)
	_ bot.CropQuestionStore = (*store.Store)(nil)
	_ bot.ConversationLog   = (*store.Store)(nil)
	_ bot.PageStore         = (*store.Store)(nil)
	_ bot.HandoffStore      = (*store.Store)(nil)
	_ bot.InboxStore        = (*store.Store)(nil)
	_ bot.IDStore           = (*store.Store)(nil)
	_ bot.StaffLog          = (*store.Store)(nil)
	_ bot.Forgetter         = (*store.Store)(nil)
)
