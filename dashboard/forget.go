package dashboard

import (
	"net/http"

	"github.com/cropshield/cropshield/store"
)

// forget deletes, at the farmer's request made to staff, what the store holds about the farmer of
// a private conversation (store.ForgetUser: their messages, the photos only they sent with their
// analyses, questions, preferences and user record). The form must carry confirm=yes. The
// conversation stays listed as a marker: forgotten, on that date, by that staff member.
func (s *Server) forget(w http.ResponseWriter, r *http.Request, sess *session) {
	id, sum, ok := s.conversation(w, r)
	if !ok {
		return
	}
	platform, chatID := sum.Platform, sum.ChatID
	back := "/conversations/" + id
	if sum.Kind == "group" {
		http.Error(w, "a group is not one farmer: forget the farmer from their private conversation", http.StatusBadRequest)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		http.Redirect(w, r, back+"?done=forget_unconfirmed", http.StatusSeeOther)
		return
	}
	// A private chat's id is its farmer's id on every platform.
	rep, err := s.st.ForgetUser(r.Context(), platform, chatID, s.opts.Now(), store.ForgetOptions{By: sess.name})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// No chat id in the log: it is the farmer's (a phone number on WhatsApp).
	s.log.Info("dashboard: farmer forgotten on request", "staff", sess.name, "platform", platform,
		"messages", rep.Messages, "photos", rep.Photos, "users", rep.Users)
	http.Redirect(w, r, back+"?done=forgotten", http.StatusSeeOther)
}
