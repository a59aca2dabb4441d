package dashboard

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// conversationID is a conversation's id in URLs: base64url of platform NUL chat id, so that
// any chat id (WhatsApp JIDs, negative Telegram group ids) fits one path segment.
func conversationID(platform, chatID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(platform + "\x00" + chatID))
}

func parseConversationID(id string) (platform, chatID string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return "", "", false
	}
	p, c, ok := strings.Cut(string(b), "\x00")
	if !ok || p == "" || c == "" || strings.IndexByte(c, 0) >= 0 {
		return "", "", false
	}
	return p, c, true
}

// conversation reads the summary of the conversation the path's {id} names. When it cannot it
// answers the request (not found for a malformed id or an unknown conversation) and ok is false.
func (s *Server) conversation(w http.ResponseWriter, r *http.Request) (id string, sum store.Summary, ok bool) {
	id = r.PathValue("id")
	platform, chatID, ok := parseConversationID(id)
	if !ok {
		http.NotFound(w, r)
		return "", sum, false
	}
	sum, err := s.st.GetSummary(r.Context(), platform, chatID)
	if s.failed(w, r, err) {
		return "", sum, false
	}
	return id, sum, true
}

var hashRegexp = regexp.MustCompile(`^[0-9a-f]{64}$`)

// listView is the conversations page.
type listView struct {
	Items     []store.Summary
	Filter    store.ConversationFilter
	FromDate  string
	ToDate    string
	Platforms []string
	Languages []locales.Language
	Classes   []string
	NextURL   template.URL
	FirstURL  template.URL
	CSVURL    template.URL
	Partial   bool
	Scanned   int
	Paged     bool
}

// filterFromQuery reads the list filters from the query string; the date range is inclusive of
// both days (UTC).
func filterFromQuery(q url.Values) (store.ConversationFilter, string, string) {
	f := store.ConversationFilter{
		Platform: q.Get("platform"), Kind: q.Get("kind"), Language: q.Get("lang"), Disease: q.Get("disease"),
		LowConfidence: q.Get("low") == "1", NeedsAttention: q.Get("attention") == "1",
		Status: q.Get("status"), Query: strings.TrimSpace(q.Get("q")),
	}
	if f.Status != "open" && f.Status != "resolved" {
		f.Status = ""
	}
	from, to := q.Get("from"), q.Get("to")
	if d, err := time.Parse(time.DateOnly, from); err == nil {
		f.From = d
	} else {
		from = ""
	}
	if d, err := time.Parse(time.DateOnly, to); err == nil {
		f.To = d.AddDate(0, 0, 1)
	} else {
		to = ""
	}
	return f, from, to
}

// filterQuery is the query string of the filters, without the cursor.
func filterQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"platform", "kind", "lang", "disease", "low", "attention", "status", "from", "to", "q"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

// listPage reads one page of the conversation list: one page of summaries, never the messages.
func (s *Server) listPage(r *http.Request) (listView, error) {
	q := r.URL.Query()
	f, from, to := filterFromQuery(q)
	page, err := s.st.ListConversations(r.Context(), store.ListOptions{Filter: f, Limit: s.opts.PageSize, Cursor: q.Get("cursor")})
	if errors.Is(err, store.ErrInvalid) { // a damaged cursor: start again
		page, err = s.st.ListConversations(r.Context(), store.ListOptions{Filter: f, Limit: s.opts.PageSize})
	}
	if err != nil {
		return listView{}, err
	}
	fq := filterQuery(q)
	lv := listView{Items: page.Items, Filter: f, FromDate: from, ToDate: to, Platforms: s.platforms(),
		Languages: s.opts.Locales.Languages(), Classes: s.opts.Classes, Partial: page.Partial, Scanned: page.Scanned,
		FirstURL: template.URL("/conversations?" + fq.Encode()), CSVURL: template.URL("/export/conversations.csv?" + fq.Encode()),
		Paged: q.Get("cursor") != ""}
	if page.Next != "" {
		nq := filterQuery(q)
		nq.Set("cursor", page.Next)
		lv.NextURL = template.URL("/conversations?" + nq.Encode())
	}
	return lv, nil
}

func (s *Server) conversations(w http.ResponseWriter, r *http.Request, sess *session) {
	lv, err := s.listPage(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "conversations", view{Title: "Conversations", Nav: "conversations", Session: sess, Page: lv})
}

// candidate is one of an analysis's top-3 as pages show it.
type candidate struct {
	Class string
	Prob  float64
}

// photoView is one photo with its analysis and the staff's verdict.
type photoView struct {
	Hash        string
	Photo       bool // the photo is stored (retention or /forget remove it)
	Analysis    bool // an analysis is stored (clearing the cache removes it, not the photo)
	Top         []candidate
	Rejected    bool
	NotLeaf     float64
	OtherCrop   bool // a leaf of a crop the model does not know
	UnknownCrop float64
	Model       string
	CreatedAt   time.Time
	InferenceMS float64
	Correction  *store.Correction
}

func (s *Server) photoView(r *http.Request, hash string) (photoView, error) {
	pv := photoView{Hash: hash}
	var err error
	if pv.Photo, err = s.st.HasPhoto(r.Context(), hash); err != nil {
		return pv, err
	}
	a, err := s.st.StoredAnalysis(r.Context(), hash)
	switch {
	case err == nil:
		pv.Analysis, pv.Rejected, pv.NotLeaf, pv.Model, pv.CreatedAt, pv.InferenceMS = true, a.Rejected, a.NotLeaf, a.ModelVersion, a.CreatedAt, a.InferenceMS
		pv.OtherCrop, pv.UnknownCrop = a.OtherCrop, a.UnknownCrop
		for _, c := range a.Top {
			pv.Top = append(pv.Top, candidate{c.Class, c.Prob})
		}
	case !errors.Is(err, store.ErrNotFound):
		return pv, err
	}
	c, err := s.st.GetCorrection(r.Context(), hash)
	switch {
	case err == nil:
		pv.Correction = &c
	case !errors.Is(err, store.ErrNotFound):
		return pv, err
	}
	return pv, nil
}

// threadItem is one line of a conversation: a message (with its photos) or a staff action.
type threadItem struct {
	Time   time.Time
	Rec    *store.Record
	From   string // "farmer", "bot", "staff", "action" or "queued"
	Photos []photoView
	Action *store.StaffAction
	// Queued is a staff reply still in the staff outbox (From "queued"): written on a replica
	// where WhatsApp does not run, not sent (so not logged) yet.
	Queued *store.StaffReply
	// Anchor is the item's id in the page: "latest" for the conversation's newest item, where
	// the page returns after a staff reply.
	Anchor string
	// Headline is set on a long answer of the bot (a diagnosis with its symptoms and advice):
	// the page shows this first line and folds the rest, so that a thread of many photos stays
	// readable; the photos and their top-3 stay in view.
	Headline string
}

// foldLines: a bot answer of more lines than this is folded under its first line.
const foldLines = 4

// headline returns the first non-empty line of a bot's answer longer than foldLines lines, or
// "" for a short one (shown whole).
func headline(text string) string {
	if strings.Count(text, "\n") < foldLines {
		return ""
	}
	for line := range strings.Lines(text) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

type threadView struct {
	ID        string
	Summary   store.Summary
	Items     []threadItem
	OlderURL  template.URL
	CanReply  bool
	MaxReply  int
	IsGroup   bool
	PhotoBase string
}

const threadLen = 100

func (s *Server) thread(w http.ResponseWriter, r *http.Request, sess *session) {
	id, sum, ok := s.conversation(w, r)
	if !ok {
		return
	}
	ctx, platform, chatID := r.Context(), sum.Platform, sum.ChatID
	before, _ := strconv.ParseUint(r.URL.Query().Get("before"), 10, 64)
	recs, err := s.st.MessagesBefore(ctx, platform, chatID, before, threadLen)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tv := threadView{ID: id, Summary: sum, MaxReply: 4096, IsGroup: sum.Kind == "group"}
	_, tv.CanReply = s.opts.Responders[platformOf(platform)]
	photos := map[string]photoView{}
	for i := range recs {
		rec := &recs[i]
		it := threadItem{Time: rec.Time, Rec: rec, From: "farmer"}
		if rec.Direction == store.Outbound {
			it.From = "bot"
			if rec.Staff != "" {
				it.From = "staff"
			} else {
				it.Headline = headline(rec.Text)
			}
		}
		if rec.Direction == store.Inbound {
			hashes := rec.Album
			if len(hashes) == 0 && rec.PhotoHash != "" {
				hashes = []string{rec.PhotoHash}
			}
			for _, h := range hashes {
				pv, ok := photos[h]
				if !ok {
					if pv, err = s.photoView(r, h); err != nil {
						s.fail(w, r, err)
						return
					}
					photos[h] = pv
				}
				it.Photos = append(it.Photos, pv)
			}
		}
		tv.Items = append(tv.Items, it)
	}
	if len(recs) > 0 && recs[0].Seq > 1 {
		tv.OlderURL = template.URL("/conversations/" + id + "?before=" + strconv.FormatUint(recs[0].Seq, 10))
	}
	acts, err := s.st.StaffActions(ctx, platform, chatID, 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range acts {
		a := &acts[i]
		// Each page shows the actions of its own time span.
		if len(recs) > 0 && (a.Time.Before(recs[0].Time) && recs[0].Seq > 1 || before != 0 && a.Time.After(recs[len(recs)-1].Time)) {
			continue
		}
		tv.Items = append(tv.Items, threadItem{Time: a.Time, From: "action", Action: a})
	}
	slices.SortStableFunc(tv.Items, func(a, b threadItem) int { return a.Time.Compare(b.Time) })
	if before == 0 {
		// The staff replies still waiting in the outbox come after everything logged: they are
		// logged only once sent, and until then an agent reloading the page (or another agent)
		// must see them, not write them again. They go to the chat the conversation continues in,
		// as reply sends them.
		to := chatID
		if sum.MovedTo != "" {
			to = sum.MovedTo
		}
		queued, err := s.st.QueuedStaffReplies(ctx, platform, to)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for i := range queued {
			q := &queued[i]
			tv.Items = append(tv.Items, threadItem{Time: q.Queued, From: "queued", Queued: q})
		}
	}
	if n := len(tv.Items); n > 0 && before == 0 {
		tv.Items[n-1].Anchor = "latest"
	}
	s.render(w, r, http.StatusOK, "thread", view{Title: title(sum), Nav: "conversations", Session: sess, Page: tv})
}

// title names a conversation: the group's title, else the farmer's name, else its id.
func title(s store.Summary) string {
	if name, ok := webVisitor(s); ok {
		return name
	}
	switch {
	case s.Title != "":
		return s.Title
	case s.Name != "":
		return s.Name
	}
	return s.ChatID
}

type photoPageView struct {
	Photo    photoView
	ConvID   string // the conversation the staff came from, if any
	Classes  []string
	Selected string
	Current  string // the model version serving now
}

func (s *Server) photoPage(w http.ResponseWriter, r *http.Request, sess *session) {
	hash, ok := photoHash(w, r)
	if !ok {
		return
	}
	pv, err := s.photoView(r, hash)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !pv.Analysis && pv.Correction == nil {
		if _, _, err := s.st.GetPhoto(r.Context(), hash); err != nil {
			http.NotFound(w, r)
			return
		}
	}
	pp := photoPageView{Photo: pv, Classes: s.opts.Classes, Current: s.opts.ModelVersion}
	if c := r.URL.Query().Get("c"); c != "" {
		if _, _, ok := parseConversationID(c); ok {
			pp.ConvID = c
		}
	}
	switch {
	case pv.Correction != nil:
		pp.Selected = pv.Correction.Class
	case len(pv.Top) > 0:
		pp.Selected = pv.Top[0].Class
	}
	s.render(w, r, http.StatusOK, "photo", view{Title: "Photo " + hash[:12], Nav: "conversations", Session: sess, Page: pp})
}

// photoImage serves a farmer's photo, only with a session (the route requires one).
func (s *Server) photoImage(w http.ResponseWriter, r *http.Request, _ *session) {
	hash, ok := photoHash(w, r)
	if !ok {
		return
	}
	data, mime, err := s.st.GetPhoto(r.Context(), hash)
	if s.failed(w, r, err) {
		return
	}
	serveImage(w, data, mime)
}

func (s *Server) overlayImage(w http.ResponseWriter, r *http.Request, _ *session) {
	hash, ok := photoHash(w, r)
	if !ok {
		return
	}
	data, err := s.st.Overlay(r.Context(), hash)
	if s.failed(w, r, err) {
		return
	}
	serveImage(w, data, "image/jpeg")
}

func serveImage(w http.ResponseWriter, data []byte, mime string) {
	switch mime {
	case "image/jpeg", "image/png", "image/webp":
	default:
		mime = "application/octet-stream"
	}
	w.Header().Set("Content-Type", mime)
	// Images by hash never change; they may stay in this browser's private cache a while.
	w.Header().Set("Cache-Control", "private, max-age=600")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// photoHash reads the {hash} path value, answering 404 for anything that is not a photo hash.
func photoHash(w http.ResponseWriter, r *http.Request) (string, bool) {
	hash := r.PathValue("hash")
	if !hashRegexp.MatchString(hash) {
		http.NotFound(w, r)
		return "", false
	}
	return hash, true
}

// failed answers a store error: 404 for store.ErrNotFound, the error page otherwise. It
// reports whether it answered (err != nil).
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		http.NotFound(w, r)
	default:
		s.fail(w, r, err)
	}
	return true
}
