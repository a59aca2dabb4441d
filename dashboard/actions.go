package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

func platformOf(p string) bot.Platform { return bot.Platform(p) }

// reply sends a staff reply through the adapter the conversation came from, to the chat the
// conversation continues in if it moved; through the replica that runs the channel if it does not
// run here (bot.SendStaffReply).
func (s *Server) reply(w http.ResponseWriter, r *http.Request, sess *session) {
	id, sum, ok := s.conversation(w, r) // staff only answer conversations that exist: never a broadcast
	if !ok {
		return
	}
	platform, chatID := sum.Platform, sum.ChatID
	if sum.MovedTo != "" {
		// The chat continues under a new id (a Telegram group became a supergroup): the reply
		// goes there and is logged in that conversation.
		chatID, id = sum.MovedTo, conversationID(platform, sum.MovedTo)
		var err error
		if sum, err = s.st.GetSummary(r.Context(), platform, chatID); s.failed(w, r, err) {
			return
		}
	}
	// Back to the thread where the staff member was: the reply box, or the new message (the
	// thread's latest), not the top of a long page.
	back := "/conversations/" + id
	out, ok := s.opts.Responders[platformOf(platform)]
	if !ok {
		http.Redirect(w, r, back+"?done=no_channel#reply", http.StatusSeeOther)
		return
	}
	chat := bot.ChatRef{Platform: platformOf(platform), ID: chatID, Kind: bot.ChatKind(sum.Kind), Title: sum.Title}
	// Signed for the farmer, in the chat's language: the support team, with the first name the
	// agent chose to give, if any.
	text := bot.SignStaffReply(s.opts.Locales, sum.Language, r.PostFormValue("sign"), r.PostFormValue("text"))
	err := bot.SendStaffReply(r.Context(), s.st, out, chat, sess.name, text, s.opts.Now())
	switch {
	case errors.Is(err, bot.ErrEmptyReply):
		http.Redirect(w, r, back+"#reply", http.StatusSeeOther)
	case errors.Is(err, bot.ErrReplyQueued):
		// The channel runs on another replica, or on none now (WhatsApp being relinked): the
		// reply waits in the shared outbox and goes out once a replica runs the channel.
		s.log.Info("dashboard: staff reply queued for the replica running its channel", "staff", sess.name, "platform", platform, "chat", chatID, "err", err)
		http.Redirect(w, r, back+"?done=queued#latest", http.StatusSeeOther)
	case errors.Is(err, bot.ErrNotDelivered):
		s.log.Warn("dashboard: staff reply not delivered", "staff", sess.name, "platform", platform, "chat", chatID, "err", err)
		http.Redirect(w, r, back+"?done=not_sent#latest", http.StatusSeeOther)
	case err != nil:
		s.fail(w, r, err)
	default:
		s.log.Info("dashboard: staff reply sent", "staff", sess.name, "platform", platform, "chat", chatID)
		http.Redirect(w, r, back+"?done=reply#latest", http.StatusSeeOther)
	}
}

// resolve marks a conversation resolved (resolved=1) or open again (resolved=0).
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	platform, chatID, ok := parseConversationID(id)
	if !ok {
		http.NotFound(w, r)
		return
	}
	resolved := r.PostFormValue("resolved") == "1"
	err := s.st.SetResolved(r.Context(), platform, chatID, resolved, sess.name, s.opts.Now())
	if s.failed(w, r, err) {
		return
	}
	done := "reopened"
	if resolved {
		done = "resolved"
	}
	s.log.Info("dashboard: conversation "+done, "staff", sess.name, "platform", platform, "chat", chatID)
	http.Redirect(w, r, "/conversations/"+id+"?done="+done, http.StatusSeeOther)
}

// correct stores a staff verdict on a photo: action=confirm takes the model's top-1, otherwise
// class is one of the model's classes.
func (s *Server) correct(w http.ResponseWriter, r *http.Request, sess *session) {
	hash, ok := photoHash(w, r)
	if !ok {
		return
	}
	a, err := s.st.StoredAnalysis(r.Context(), hash)
	if s.failed(w, r, err) {
		return
	}
	c := store.Correction{PhotoHash: hash, ModelVersion: a.ModelVersion, By: sess.name, At: s.opts.Now()}
	if len(a.Top) > 0 {
		c.ModelClass = a.Top[0].Class
	}
	if r.PostFormValue("action") == "confirm" {
		if c.ModelClass == "" || a.Rejected || a.OtherCrop {
			http.Error(w, "there is no diagnosis to confirm: choose the right class", http.StatusBadRequest)
			return
		}
		c.Class, c.Confirmed = c.ModelClass, true
	} else {
		c.Class = r.PostFormValue("class")
		if !slices.Contains(s.opts.Classes, c.Class) {
			http.Error(w, "unknown class", http.StatusBadRequest)
			return
		}
		c.Confirmed = c.Class == c.ModelClass && !a.Rejected && !a.OtherCrop
	}
	convID := r.PostFormValue("c")
	platform, chatID, ok := parseConversationID(convID)
	if !ok {
		platform, chatID, convID = "", "", ""
	}
	err = s.st.PutCorrection(r.Context(), c, platform, chatID)
	if errors.Is(err, store.ErrNotFound) { // the conversation is unknown: keep the verdict anyway
		convID = ""
		err = s.st.PutCorrection(r.Context(), c, "", "")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	done := "corrected"
	if c.Confirmed {
		done = "confirmed"
	}
	s.log.Info("dashboard: diagnosis "+done, "staff", sess.name, "photo", hash, "class", c.Class, "model_class", c.ModelClass)
	q := url.Values{"done": {done}}
	if convID != "" {
		q.Set("c", convID)
	}
	http.Redirect(w, r, "/photos/"+hash+"?"+q.Encode(), http.StatusSeeOther)
}
