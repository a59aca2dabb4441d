package dashboard_test

import (
	"github.com/cropshield/cropshield/dashboard"
	"github.com/cropshield/cropshield/store"
)

// The store implements every interface the dashboard declares for it, the composed Store and
// each of its parts.
var (
	_ dashboard.Store              = (*store.Store)(nil)
	_ dashboard.SessionStore       = (*store.Store)(nil)
	_ dashboard.ConversationReader = (*store.Store)(nil)
	_ dashboard.PhotoReader        = (*store.Store)(nil)
	_ dashboard.ReviewStore        = (*store.Store)(nil)
	_ dashboard.StaffAdmin         = (*store.Store)(nil)
	_ dashboard.Cache              = (*store.Store)(nil)
	_ dashboard.StatsReader        = (*store.Store)(nil)
)
