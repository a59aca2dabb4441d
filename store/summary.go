package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The review dashboard's view of the conversations. The list of conversations never reads the
// message logs: every appended or updated message also updates its chat's summary in the same
// transaction, and an index ordered by last activity lets the list read one page of summaries.
// Staff corrections (corrections.go) live apart from the model's analyses, staff actions have
// their own log (staffactions.go), and daily counters feed the statistics (stats.go).
const (
	bucketSummaries    = "summaries"     // chat key → summaryRec (JSON)
	bucketSummaryIndex = "summary_index" // big-endian last activity (µs) + chat key → nothing
)

// Reply kinds the summaries and statistics understand (bot.Reply.Kind).
const (
	kindDiagnosis = "diagnosis"
	kindUnsure    = "unsure"
	kindNotLeaf   = "not_leaf"
	// kindUnknownCrop: a leaf of a crop the model does not know.
	kindUnknownCrop = "unknown_crop"
	// kindCropMismatch: the photo clearly shows another crop than the one the farmer stated.
	kindCropMismatch = "crop_mismatch"
	kindError        = "error"
)

// maxTexts and maxTextRunes bound the recent texts a summary keeps for search.
const (
	maxTexts     = 5
	maxTextRunes = 200
	maxDiseases  = 32
)

// Summary is one conversation as the dashboard lists it.
type Summary struct {
	Platform, ChatID string
	Kind             string // "private" or "group"
	Title            string // the group's title, if any
	Name             string // the last farmer who wrote
	SenderID         string // their platform id (a phone number on WhatsApp)
	Language         string // the language the chat was last answered in
	First, Last      time.Time
	LastText         string    // the last message, shortened
	LastDirection    Direction // who wrote the last message
	LastStaff        string    // the staff member who acted last, if any
	// LastFromStaff is the staff member who wrote the last message, "" when the farmer or the
	// bot did (summaries written before it existed have "" too).
	LastFromStaff    string
	Texts            []string // the farmers' last texts, shortened, for search
	Messages, Photos int
	// PhotoHash is the last photo; Disease and Prob its top-1 (or the class staff set, then
	// Corrected); NotLeaf if the model refused it, OtherCrop if it took it for a leaf of a crop
	// it does not know (neither is set once staff corrected it).
	PhotoHash string
	Disease   string
	Prob      float64
	Corrected bool
	NotLeaf   bool
	OtherCrop bool
	Diseases  []string // every top-1 (or corrected) class of the chat's photos
	// LowConfidence: the last photo's answer was "not sure". NeedsAttention: the last photo got
	// an unsure, not-a-leaf, unknown-crop, crop-mismatch or error answer (or a reply was not
	// delivered) and no staff acted since.
	LowConfidence  bool
	NeedsAttention bool
	Resolved       bool
	ResolvedBy     string
	ResolvedAt     time.Time
	// MovedTo: the chat continues under this id (Store.MigrateChat); MovedFrom: it continues
	// the chat of that id.
	MovedTo, MovedFrom string
	// Forgotten: when the farmer's conversation was deleted on request (Store.ForgetUser); what
	// the summary shows was written after.
	Forgotten time.Time
}

type summaryRec struct {
	Kind       string    `json:"kind,omitempty"`
	Title      string    `json:"title,omitempty"`
	Name       string    `json:"name,omitempty"`
	SenderID   string    `json:"sender_id,omitempty"`
	Language   string    `json:"lang,omitempty"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	LastText   string    `json:"last_text,omitempty"`
	LastDir    Direction `json:"last_dir,omitempty"`
	LastStaff  string    `json:"last_staff,omitempty"`
	LastFrom   string    `json:"last_from_staff,omitempty"`
	Texts      []string  `json:"texts,omitempty"`
	Messages   int       `json:"messages"`
	Photos     int       `json:"photos,omitempty"`
	PhotoHash  string    `json:"photo,omitempty"`
	Disease    string    `json:"disease,omitempty"`
	Prob       float64   `json:"prob,omitempty"`
	Corrected  bool      `json:"corrected,omitempty"`
	NotLeaf    bool      `json:"not_leaf,omitempty"`
	OtherCrop  bool      `json:"other_crop,omitempty"`
	Diseases   []string  `json:"diseases,omitempty"`
	Low        bool      `json:"low,omitempty"`
	Attention  bool      `json:"attention,omitempty"`
	Resolved   bool      `json:"resolved,omitempty"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	MovedTo    string    `json:"moved_to,omitempty"`
	MovedFrom  string    `json:"moved_from,omitempty"`
	Forgotten  time.Time `json:"forgotten,omitzero"`
}

// summaryOf returns the summaries bucket and chatKey's summary; found is false if the chat has none.
func summaryOf(tx Tx, chatKey []byte) (sb Bucket, sum summaryRec, found bool, err error) {
	sb, err = bucket(tx, bucketSummaries)
	if err != nil {
		return nil, sum, false, err
	}
	v := sb.Get(chatKey)
	if v == nil {
		return sb, sum, false, nil
	}
	if err := json.Unmarshal(v, &sum); err != nil {
		return nil, sum, false, fmt.Errorf("decode summary: %w", err)
	}
	return sb, sum, true, nil
}

func (r summaryRec) summary(platform, chatID string) Summary {
	return Summary{
		Platform: platform, ChatID: chatID, Kind: r.Kind, Title: r.Title, Name: r.Name, SenderID: r.SenderID,
		Language: r.Language, First: r.First, Last: r.Last, LastText: r.LastText, LastDirection: r.LastDir,
		LastStaff: r.LastStaff, LastFromStaff: r.LastFrom, Texts: r.Texts, Messages: r.Messages, Photos: r.Photos, PhotoHash: r.PhotoHash,
		Disease: r.Disease, Prob: r.Prob, Corrected: r.Corrected, NotLeaf: r.NotLeaf, OtherCrop: r.OtherCrop,
		Diseases:      r.Diseases,
		LowConfidence: r.Low, NeedsAttention: r.Attention, Resolved: r.Resolved, ResolvedBy: r.ResolvedBy,
		ResolvedAt: r.ResolvedAt, MovedTo: r.MovedTo, MovedFrom: r.MovedFrom, Forgotten: r.Forgotten,
	}
}

// summaryIndexKey orders chats by last activity: microseconds since 1970 (big-endian, clamped at
// 0), then the chat key.
func summaryIndexKey(last time.Time, chatKey []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(chatKey)), uint64(max(0, last.UnixMicro())))
	return append(k, chatKey...)
}

// shorten trims s to n runes on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// noteMessage updates the summary (and the daily statistics) of r's chat in the transaction
// that appends r (prev nil) or replaces the record prev with r.
func noteMessage(tx Tx, r Record, prev []byte) error {
	if err := notePhotoSent(tx, r); err != nil {
		return err
	}
	sb, err := bucket(tx, bucketSummaries)
	if err != nil {
		return err
	}
	key := compositeKey(r.Platform, r.ChatID)
	var s summaryRec
	found := false
	if v := sb.Get(key); v != nil {
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode summary: %w", err)
		}
		found = true
	}
	oldLast := s.Last
	if cb := tx.Bucket([]byte(bucketChats)); cb != nil {
		if v := cb.Get(key); v != nil {
			var c chatRec
			if err := json.Unmarshal(v, &c); err == nil {
				s.Kind, s.Title = cmpOr(c.Kind, s.Kind), cmpOr(c.Title, s.Title)
			}
		}
	}
	if r.Lang != "" {
		s.Language = r.Lang
	}
	if prev != nil {
		var old msgRec
		if err := json.Unmarshal(prev, &old); err != nil {
			return fmt.Errorf("decode message: %w", err)
		}
		if r.Direction == Inbound && r.PhotoHash != "" && old.PhotoHash == "" {
			s.Photos += max(1, len(r.Album))
			notePhoto(tx, &s, r.PhotoHash, r.Crop)
		}
	} else {
		t := utc(r.Time)
		s.Messages++
		if !found || t.Before(s.First) {
			s.First = t
		}
		if !found || t.After(s.Last) {
			s.Last = t
		}
		s.LastText, s.LastDir, s.LastFrom = shorten(r.Text, maxTextRunes), r.Direction, r.Staff
		switch {
		case r.Direction == Inbound:
			s.Name, s.SenderID = cmpOr(r.SenderName, s.Name), cmpOr(r.SenderID, s.SenderID)
			if txt := shorten(r.Text, maxTextRunes); txt != "" {
				s.Texts = append(s.Texts, txt)
				if over := len(s.Texts) - maxTexts; over > 0 {
					s.Texts = slices.Clone(s.Texts[over:])
				}
			}
			s.Resolved, s.ResolvedBy, s.ResolvedAt = false, "", time.Time{} // a new message reopens
			if r.PhotoHash != "" {
				s.Photos += max(1, len(r.Album))
				notePhoto(tx, &s, r.PhotoHash, r.Crop)
			}
		case r.Staff != "":
			s.LastStaff, s.Attention = r.Staff, r.Error != ""
		default:
			if err := noteAnswer(tx, &s, r); err != nil {
				return err
			}
		}
	}
	if err := putJSON(sb, key, s); err != nil {
		return err
	}
	return reindex(tx, key, oldLast, found, s.Last)
}

// reindex moves a chat's index entry from its old last activity to the new one.
func reindex(tx Tx, chatKey []byte, oldLast time.Time, existed bool, last time.Time) error {
	ib, err := bucket(tx, bucketSummaryIndex)
	if err != nil {
		return err
	}
	nk := summaryIndexKey(last, chatKey)
	if existed {
		ok := summaryIndexKey(oldLast, chatKey)
		if bytes.Equal(ok, nk) {
			return nil
		}
		if err := ib.Delete(ok); err != nil {
			return err
		}
	}
	return ib.Put(nk, nil)
}

// linkMigration marks the summaries of a chat that moved (Store.MigrateChat), the old one with
// MovedTo and the new one with MovedFrom. The new chat's summary is created if it has none, with
// its activity at the move.
func linkMigration(tx Tx, platform, from, to string, chat chatRec, at time.Time) error {
	sb, err := bucket(tx, bucketSummaries)
	if err != nil {
		return err
	}
	oldKey, newKey := compositeKey(platform, from), compositeKey(platform, to)
	if v := sb.Get(oldKey); v != nil {
		var s summaryRec
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode summary: %w", err)
		}
		s.MovedTo = to
		if err := putJSON(sb, oldKey, s); err != nil {
			return err
		}
	}
	s := summaryRec{First: at, Last: at}
	v := sb.Get(newKey)
	found := v != nil
	if found {
		s = summaryRec{}
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode summary: %w", err)
		}
	}
	// As noteMessage does: the chat record's kind and title win; the language the chat was last
	// answered in, else the one it will be answered in.
	s.Kind, s.Title, s.Language = cmpOr(chat.Kind, s.Kind), cmpOr(chat.Title, s.Title), cmpOr(s.Language, chat.Language)
	s.MovedFrom = from
	if err := putJSON(sb, newKey, s); err != nil {
		return err
	}
	if found {
		return nil
	}
	return reindex(tx, newKey, time.Time{}, false, at)
}

// noteAnswer applies a bot reply to the summary and counts it in the daily statistics.
func noteAnswer(tx Tx, s *summaryRec, r Record) error {
	if r.PhotoHash != "" && (r.PhotoHash != s.PhotoHash || r.Crop != "") {
		// An answer within a stated crop (perhaps the answer to "which crop?") shows that crop's
		// top-1, as the farmer read it.
		notePhoto(tx, s, r.PhotoHash, r.Crop)
	}
	switch r.Kind {
	case kindDiagnosis:
		s.Attention, s.Low = false, false
	case kindUnsure:
		s.Attention, s.Low = true, true
	case kindNotLeaf, kindUnknownCrop, kindCropMismatch:
		s.Attention, s.Low = true, false
	case kindError:
		s.Attention = true
	}
	if r.Error != "" {
		s.Attention = true // the farmer did not get the answer
	}
	return countAnswer(tx, s, r)
}

// notePhoto makes hash the summary's last photo, with the model's top-1 (within crop if the
// farmer stated one) or the staff's class.
func notePhoto(tx Tx, s *summaryRec, hash, crop string) {
	s.PhotoHash, s.Disease, s.Prob, s.Corrected, s.NotLeaf, s.OtherCrop = hash, "", 0, false, false, false
	if top, ok := modelTop(tx, hash, crop); ok {
		s.Disease, s.Prob, s.NotLeaf, s.OtherCrop = top.Class, top.Prob, top.rejected, top.otherCrop
	}
	if c, ok := correctionOf(tx, hash); ok {
		s.Disease, s.Corrected, s.NotLeaf, s.OtherCrop = c.Class, true, false, false
	}
	if s.Disease != "" && !s.NotLeaf && !s.OtherCrop {
		addDisease(s, s.Disease)
	}
}

func addDisease(s *summaryRec, class string) {
	if !slices.Contains(s.Diseases, class) && len(s.Diseases) < maxDiseases {
		s.Diseases = append(s.Diseases, class)
	}
}

// topClass is a stored analysis's top-1 with the model's verdicts on the photo.
type topClass struct {
	Candidate
	rejected  bool // not a leaf
	otherCrop bool // a leaf of a crop the model does not know
}

// modelTop is the stored analysis's top-1 (whatever the model version); with a crop stated
// (not "any"), the top-1 among that crop's classes (ids "crop__disease") re-normalized over them,
// when the analysis kept every class's score and the crop has some.
func modelTop(tx Tx, hash, crop string) (topClass, bool) {
	ab := tx.Bucket([]byte(bucketAnalyses))
	if ab == nil || hash == "" {
		return topClass{}, false
	}
	v := ab.Get([]byte(hash))
	if v == nil {
		return topClass{}, false
	}
	var rec analysisRec
	if err := json.Unmarshal(v, &rec); err != nil || len(rec.Top) == 0 {
		return topClass{}, false
	}
	if best, ok := topWithin(rec.Scores, crop); ok && !rec.Rejected {
		return topClass{Candidate: best}, true
	}
	return topClass{Candidate: rec.Top[0], rejected: rec.Rejected, otherCrop: rec.OtherCrop}, true
}

// topWithin is the best class of crop in scores, its probability re-normalized over the crop.
func topWithin(scores map[string]float64, crop string) (Candidate, bool) {
	if crop == "" || len(scores) == 0 {
		return Candidate{}, false
	}
	var best Candidate
	total := 0.0
	for class, p := range scores {
		if c, _, _ := strings.Cut(class, "__"); c != crop {
			continue
		}
		total += p
		if p > best.Prob || p == best.Prob && (best.Class == "" || class < best.Class) {
			best = Candidate{Class: class, Prob: p}
		}
	}
	if best.Class == "" || total <= 0 {
		return Candidate{}, false
	}
	best.Prob /= total
	return best, true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// backfillSummaries builds the summaries of a database written before they existed, from its
// message logs (once, when Open adds the buckets).
func backfillSummaries(tx Tx) error {
	mb := tx.Bucket([]byte(bucketMessages))
	if mb == nil {
		return nil
	}
	return mb.ForEachBucket(func(k []byte) error {
		platform, chatID, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return nil
		}
		cb := mb.Bucket(k)
		return cb.ForEach(func(sk, v []byte) error {
			r, err := decodeMessage(string(platform), string(chatID), sk, v)
			if err != nil {
				return err
			}
			r.Kind = "" // no statistics for old records: their answers' kinds were not kept
			return noteMessage(tx, r, nil)
		})
	})
}

// ConversationFilter selects conversations; zero fields select everything.
type ConversationFilter struct {
	Platform string
	Kind     string // "private" or "group"
	Language string
	Disease  string // a class among the chat's photos
	// LowConfidence and NeedsAttention keep only chats with that flag.
	LowConfidence  bool
	NeedsAttention bool
	Status         string    // "open", "resolved" or "" (both)
	From, To       time.Time // last activity in [From, To); zero: unbounded
	// Query matches, ignoring case, the title, the farmer's name, the chat and sender ids and
	// the farmers' last texts.
	Query string
}

// ListOptions pages through the conversations, latest activity first.
type ListOptions struct {
	Filter ConversationFilter
	Limit  int    // conversations per page (50)
	Cursor string // Page.Next of the previous page, "" for the first
	// MaxScan bounds the summaries read for one page when filters reject most of them (5000);
	// the page then ends early with Partial set and a cursor to go on.
	MaxScan int
}

// Page is one page of conversations.
type Page struct {
	Items   []Summary
	Next    string // cursor of the next (older) page, "" if none
	Partial bool   // MaxScan summaries were read before the page was full
	Scanned int    // summaries read: the page's cost (the message logs are never read)
}

func (f ConversationFilter) match(s Summary) bool {
	switch {
	case f.Kind != "" && s.Kind != f.Kind,
		f.Language != "" && s.Language != f.Language,
		f.Disease != "" && !slices.Contains(s.Diseases, f.Disease),
		f.LowConfidence && !s.LowConfidence,
		f.NeedsAttention && !s.NeedsAttention,
		f.Status == "open" && s.Resolved,
		f.Status == "resolved" && !s.Resolved:
		return false
	}
	if f.Query == "" {
		return true
	}
	q := strings.ToLower(f.Query)
	for _, field := range append([]string{s.Title, s.Name, s.ChatID, s.SenderID, s.LastText}, s.Texts...) {
		if strings.Contains(strings.ToLower(field), q) {
			return true
		}
	}
	return false
}

// ListConversations returns one page of conversation summaries, latest activity first. It walks
// the activity index from the cursor and reads a summary only for index entries within the date
// range and platform; it never reads a message log.
func (s *Store) ListConversations(ctx context.Context, o ListOptions) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	if o.Limit <= 0 {
		o.Limit = 50
	}
	if o.MaxScan <= 0 {
		o.MaxScan = 5000
	}
	var start []byte
	if o.Cursor != "" {
		k, err := base64.RawURLEncoding.DecodeString(o.Cursor)
		if err != nil || len(k) < 8 {
			return Page{}, fmt.Errorf("%w: cursor", ErrInvalid)
		}
		start = k
	}
	f := o.Filter
	if !f.To.IsZero() {
		if k := summaryIndexKey(f.To, nil); start == nil || bytes.Compare(k, start) < 0 {
			start = k
		}
	}
	var from uint64
	if !f.From.IsZero() {
		from = uint64(max(0, f.From.UnixMicro()))
	}
	page := Page{Items: []Summary{}}
	err := s.view(ctx, "list conversations", func(tx Tx) error {
		ib, err := bucket(tx, bucketSummaryIndex)
		if err != nil {
			return err
		}
		sb, err := bucket(tx, bucketSummaries)
		if err != nil {
			return err
		}
		c := ib.Cursor()
		var k []byte
		if start == nil {
			k, _ = c.Last()
		} else if k, _ = c.Seek(start); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		inRange := func(k []byte) bool { return len(k) > 8 && binary.BigEndian.Uint64(k) >= from }
		var last []byte // the last index key visited
		for ; inRange(k); k, _ = c.Prev() {
			if len(page.Items) == o.Limit {
				page.Next = base64.RawURLEncoding.EncodeToString(last)
				return nil
			}
			if page.Scanned == o.MaxScan {
				page.Next, page.Partial = base64.RawURLEncoding.EncodeToString(last), true
				return nil
			}
			chatKey := k[8:]
			platform, chatID, ok := bytes.Cut(chatKey, []byte{0})
			last = slices.Clone(k)
			if !ok || (f.Platform != "" && string(platform) != f.Platform) {
				continue
			}
			v := sb.Get(chatKey)
			if v == nil {
				continue
			}
			page.Scanned++
			var rec summaryRec
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode summary: %w", err)
			}
			if sum := rec.summary(string(platform), string(chatID)); f.match(sum) {
				page.Items = append(page.Items, sum)
			}
		}
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	return page, nil
}

// EachConversation calls fn with every summary matching f, latest activity first, reading them
// page by page in short transactions (for exports).
func (s *Store) EachConversation(ctx context.Context, f ConversationFilter, fn func(Summary) error) error {
	o := ListOptions{Filter: f, Limit: 500, MaxScan: 5000}
	for {
		p, err := s.ListConversations(ctx, o)
		if err != nil {
			return err
		}
		for _, sum := range p.Items {
			if err := fn(sum); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		o.Cursor = p.Next
	}
}

// GetSummary returns one conversation's summary, or ErrNotFound.
func (s *Store) GetSummary(ctx context.Context, platform, chatID string) (Summary, error) {
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
		return Summary{}, err
	}
	var rec summaryRec
	err := s.view(ctx, "get summary", func(tx Tx) error {
		return getJSON(tx, bucketSummaries, compositeKey(platform, chatID), &rec, "conversation "+chatID+" on "+platform)
	})
	if err != nil {
		return Summary{}, err
	}
	return rec.summary(platform, chatID), nil
}
