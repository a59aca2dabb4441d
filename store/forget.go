package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ForgetOptions says what ForgetUser keeps and how it works.
type ForgetOptions struct {
	// KeepChat and KeepSeq name one logged message that stays (the farmer's "/forget yes", whose
	// turn is still being answered); zero for none.
	KeepChat string
	KeepSeq  uint64
	// Batch bounds the records removed per transaction (DefaultBatch).
	Batch int
	// By is the staff member who acted on the farmer's request, shown on the marker ("" when the
	// farmer asked the bot).
	By string
}

// ForgetReport counts what ForgetUser removed.
type ForgetReport struct {
	Messages      int // the farmer's messages and the bot's and staff's replies in their chat
	Photos        int // photos only they sent, with analyses, overlays and corrections
	Conversations int // their private conversations, now marked forgotten
	Users         int // user records (the id and its alternates)
	ContentIDs    int
	CropQuestions int
	Summaries     int
	Transactions  int
}

// ForgetUser deletes, on the farmer's request, what the store holds about user id on platform and
// its alternate ids (MigrateUser): every message of their private chat with the replies, their
// messages in groups with the bot's replies to them, the photos (with analyses, overlays and
// staff corrections) that no one else sent, their open crop questions, their preferences and the
// user and chat records. The private conversation's summary becomes a marker: forgotten at at,
// without content. It works in transactions of at most o.Batch removals, so serving goes on; if
// it stops half-way (an error, ctx), calling it again finishes the work.
func (s *Store) ForgetUser(ctx context.Context, platform, id string, at time.Time, o ForgetOptions) (ForgetReport, error) {
	var rep ForgetReport
	if err := checkIDs("platform", platform, "user id", id); err != nil {
		return rep, err
	}
	batch := o.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	ids, err := s.userIDs(ctx, platform, id)
	if err != nil {
		return rep, err
	}
	isUser := func(v string) bool { return slices.Contains(ids, v) }
	// 1. Their messages, chat by chat on the platform.
	candidates := map[string]bool{} // photos they sent
	var privates, groups [][]byte   // chats touched
	prefix := append([]byte(platform), 0)
	var chats [][]byte
	err = s.view(ctx, "forget: chats", func(tx Tx) error {
		mb, err := bucket(tx, bucketMessages)
		if err != nil {
			return err
		}
		c := mb.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if v == nil {
				chats = append(chats, bytes.Clone(k))
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	for _, id := range ids { // a private chat without a log still has records to remove
		if k := compositeKey(platform, id); !slices.ContainsFunc(chats, func(c []byte) bool { return bytes.Equal(c, k) }) {
			chats = append(chats, k)
		}
	}
	for _, ck := range chats {
		chatID := string(ck[len(prefix):])
		private := isUser(chatID)
		var keep uint64
		if o.KeepChat == chatID {
			keep = o.KeepSeq
		}
		n, touched, err := s.forgetInChat(ctx, ck, private, isUser, keep, batch, candidates, &rep)
		rep.Messages += n
		if err != nil {
			return rep, err
		}
		switch {
		case private:
			privates = append(privates, ck)
		case touched:
			groups = append(groups, ck)
		}
	}
	// The photos of messages removed by this run or by one cut short before it.
	if err := s.view(ctx, "forget: pending photos", func(tx Tx) error {
		if b := tx.Bucket([]byte(bucketForgetPending)); b != nil {
			return b.ForEach(func(k, _ []byte) error { candidates[string(k)] = true; return nil })
		}
		return nil
	}); err != nil {
		return rep, err
	}
	pending := maps.Clone(candidates)
	// 2. Photos someone else sent too stay: read every log (every platform) for them; a message
	// that names one after this read began is seen in the removing transaction (photoSent).
	var since uint64
	if err := s.view(ctx, "forget: start", func(tx Tx) error { since = tx.ID(); return nil }); err != nil {
		return rep, err
	}
	if len(candidates) > 0 {
		err := s.eachChatLog(ctx, batch, func(_ []byte, cb Bucket) error {
			return cb.ForEach(func(_, v []byte) error {
				var m msgRec
				if err := json.Unmarshal(v, &m); err != nil {
					return fmt.Errorf("decode message: %w", err)
				}
				if m.PhotoHash != "" {
					delete(candidates, m.PhotoHash)
				}
				for _, h := range m.Album {
					delete(candidates, h)
				}
				return nil
			})
		})
		if err != nil {
			return rep, err
		}
	}
	hashes := make([]string, 0, len(candidates))
	for h := range candidates {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	for len(hashes) > 0 {
		part := hashes[:min(batch, len(hashes))]
		err := s.update(ctx, "forget: photos", func(tx Tx) error {
			cb, err := bucket(tx, bucketCorrections)
			if err != nil {
				return err
			}
			for _, h := range part {
				if _, id := photoSent(tx, h); id > since {
					continue // sent again (by someone else) while the logs were read
				}
				if err := deletePhoto(tx, h); err != nil {
					return err
				}
				if err := cb.Delete([]byte(h)); err != nil {
					return err
				}
			}
			rep.Transactions++
			return nil
		})
		if err != nil {
			return rep, err
		}
		rep.Photos += len(part)
		hashes = hashes[len(part):]
	}
	var sweep SweepReport
	err = s.dropPhotoRefs(ctx, candidates, batch, &sweep)
	rep.ContentIDs, rep.CropQuestions, rep.Summaries = sweep.ContentIDs, sweep.CropQuestions, sweep.Summaries
	rep.Transactions += sweep.Transactions
	if err != nil {
		return rep, err
	}
	// Every pending photo is removed with what names it, or found to be someone else's too: a
	// few are cleared with the records below, many in transactions of their own.
	if len(pending) > batch {
		if err := s.clearPending(ctx, bucketForgetPending, pending, batch, &rep.Transactions); err != nil {
			return rep, err
		}
		pending = nil
	}
	// 3. Records, preferences, questions and summaries, one transaction.
	err = s.update(ctx, "forget: records", func(tx Tx) error {
		rep.Transactions++
		if len(pending) > 0 {
			pb, err := bucket(tx, bucketForgetPending)
			if err != nil {
				return err
			}
			for h := range pending {
				if err := pb.Delete([]byte(h)); err != nil {
					return err
				}
			}
		}
		for _, ck := range privates {
			if err := forgetPrivate(tx, ck, at, o.By); err != nil {
				return err
			}
			rep.Conversations++
		}
		for _, ck := range groups {
			if err := forgetInGroup(tx, ck, isUser); err != nil {
				return err
			}
		}
		ub, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		for _, uid := range ids {
			key := compositeKey(platform, uid)
			if ub.Get(key) != nil {
				rep.Users++
				if err := ub.Delete(key); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return rep, err
}

// userIDs returns id and the ids the user moved from or to (MigrateUser), transitively.
func (s *Store) userIDs(ctx context.Context, platform, id string) ([]string, error) {
	ids := []string{id}
	err := s.view(ctx, "forget: user ids", func(tx Tx) error {
		ub, err := bucket(tx, bucketUsers)
		if err != nil {
			return err
		}
		for i := 0; i < len(ids); i++ {
			v := ub.Get(compositeKey(platform, ids[i]))
			if v == nil {
				continue
			}
			var u userRec
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("decode user: %w", err)
			}
			for _, other := range []string{u.MovedTo, u.MovedFrom} {
				if other != "" && !slices.Contains(ids, other) {
					ids = append(ids, other)
				}
			}
		}
		return nil
	})
	return ids, err
}

// forgetInChat removes from a chat's log everything but keep in a private chat; elsewhere the
// messages the user sent and the replies to them: a read transaction finds at most batch (of
// scanFactor*batch records), a write transaction removes them, and none is opened for a chat
// without any. It adds the photos of the user's messages to photos and says whether it removed
// anything.
func (s *Store) forgetInChat(ctx context.Context, chatKey []byte, private bool, isUser func(string) bool, keep uint64,
	batch int, photos map[string]bool, rep *ForgetReport) (int, bool, error) {
	theirs := map[string]bool{} // message ids the user sent: replies to them go too
	// goes says whether a record is removed, and whether it is one of the user's messages.
	goes := func(seq uint64, v []byte) (gone, mine bool, m msgRec, err error) {
		if err := json.Unmarshal(v, &m); err != nil {
			return false, false, m, fmt.Errorf("decode message: %w", err)
		}
		mine = m.Direction == Inbound && (isUser(m.SenderID) || private)
		if seq == keep || !(mine || private || m.Direction == Outbound && m.ReplyTo != "" && theirs[m.ReplyTo]) {
			return false, false, m, nil
		}
		if mine && m.MessageID != "" {
			theirs[m.MessageID] = true
		}
		return true, mine, m, nil
	}
	var after uint64
	total := 0
	for done := false; !done; {
		var keys [][]byte
		err := s.view(ctx, "forget: read messages", func(tx Tx) error {
			keys = nil
			mb, err := bucket(tx, bucketMessages)
			if err != nil {
				return err
			}
			cb := mb.Bucket(chatKey)
			if cb == nil {
				done = true
				return nil
			}
			c := cb.Cursor()
			k, v := c.Seek(seqKey(after + 1))
			for seen := 0; k != nil && seen < scanFactor*batch && len(keys) < batch; k, v = c.Next() {
				seen++
				if len(k) != 8 {
					return fmt.Errorf("malformed message key %x", k)
				}
				after = binary.BigEndian.Uint64(k)
				gone, _, _, err := goes(after, v)
				if err != nil {
					return err
				}
				if gone {
					keys = append(keys, bytes.Clone(k))
				}
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return total, total > 0, err
		}
		if len(keys) == 0 {
			continue // nothing of theirs here: no write transaction
		}
		n := 0
		err = s.update(ctx, "forget: messages", func(tx Tx) error {
			n = 0
			mb, err := bucket(tx, bucketMessages)
			if err != nil {
				return err
			}
			cb := mb.Bucket(chatKey)
			if cb == nil {
				return nil
			}
			for _, k := range keys {
				v := cb.Get(k)
				if v == nil {
					continue
				}
				gone, mine, m, err := goes(binary.BigEndian.Uint64(k), v) // as it is now
				if err != nil {
					return err
				}
				if !gone {
					continue
				}
				if mine {
					notePhotos(photos, m)
					// Durable with the message's removal: a forget cut short after this
					// transaction still finds the photo the next time (forgetPending).
					if err := markForgetPending(tx, m); err != nil {
						return err
					}
				}
				if err := forgetTurnOf(tx, chatKey, v); err != nil {
					return err
				}
				if err := cb.Delete(k); err != nil {
					return err
				}
				n++
			}
			if k, _ := cb.Cursor().First(); done && k == nil {
				if err := mb.DeleteBucket(chatKey); err != nil {
					return err
				}
			}
			rep.Transactions++
			return nil
		})
		if err != nil {
			return total, total > 0, err
		}
		total += n
	}
	return total, total > 0, nil
}

// forgetPrivate removes a private chat's record (its preferences), open question and staff action
// log, and turns its summary into a marker: forgotten at at (by staff member by, if not ""),
// without content. A chat without a summary gets none.
func forgetPrivate(tx Tx, chatKey []byte, at time.Time, by string) error {
	for _, name := range []string{bucketChats, bucketCropQuestions} {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		if err := b.Delete(chatKey); err != nil {
			return err
		}
	}
	if err := dropStaffActions(tx, chatKey); err != nil {
		return err
	}
	if err := dropStaffReplies(tx, chatKey); err != nil {
		return err
	}
	sb, old, found, err := summaryOf(tx, chatKey)
	if err != nil || !found {
		return err
	}
	at = utc(at)
	remaining := 0
	if mb := tx.Bucket([]byte(bucketMessages)); mb != nil {
		if cb := mb.Bucket(chatKey); cb != nil {
			c := cb.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				remaining++
			}
		}
	}
	marker := summaryRec{Kind: old.Kind, Language: old.Language, First: at, Last: at, Forgotten: at, Messages: remaining, LastStaff: by}
	if err := putJSON(sb, chatKey, marker); err != nil {
		return err
	}
	return reindex(tx, chatKey, old.Last, true, at)
}

// forgetInGroup removes from a group's summary what names the user or quotes anyone's texts
// (some were theirs), and the user's open crop question there.
func forgetInGroup(tx Tx, chatKey []byte, isUser func(string) bool) error {
	if err := deleteCropQuestionIf(tx, chatKey, func(q cropQuestionRec) bool { return isUser(q.SenderID) }); err != nil {
		return err
	}
	sb, sum, found, err := summaryOf(tx, chatKey)
	if err != nil || !found {
		return err
	}
	if isUser(sum.SenderID) {
		sum.Name, sum.SenderID = "", ""
	}
	sum.Texts, sum.LastText = nil, ""
	return putJSON(sb, chatKey, sum)
}

// forgetTurnOf turns the turn of an inbound message into a tombstone (done, forgotten): a turn
// holds no content, and without it the message delivered again (its inbox entry not yet marked
// done at a crash, a handling still running) would be answered, and stored, again.
func forgetTurnOf(tx Tx, chatKey, v []byte) error {
	var m msgRec
	if err := json.Unmarshal(v, &m); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	if m.Direction != Inbound || m.MessageID == "" {
		return nil
	}
	tb, err := bucket(tx, bucketTurns)
	if err != nil {
		return err
	}
	key := append(append(bytes.Clone(chatKey), 0), m.MessageID...)
	if tb.Get(key) == nil {
		return nil
	}
	return putJSON(tb, key, turnRec{Done: true, Forgotten: true})
}

// bucketForgetPending: photo hash → nothing. The photos of a forgotten farmer's messages, noted in
// the transaction that removes each message and cleared once the photo is removed with what
// names it (or found to be someone else's too): a forget cut short (an error, shutdown, a
// dashboard request cancelled) leaves them here, and the next forget finishes them.
const bucketForgetPending = "forget_pending"

func markForgetPending(tx Tx, m msgRec) error {
	hashes := notePhotosList(m)
	if len(hashes) == 0 {
		return nil
	}
	b, err := bucket(tx, bucketForgetPending)
	if err != nil {
		return err
	}
	for _, h := range hashes {
		if err := b.Put([]byte(h), nil); err != nil {
			return err
		}
	}
	return nil
}

// notePhotosList is the photos a message names.
func notePhotosList(m msgRec) []string {
	set := map[string]bool{}
	notePhotos(set, m)
	return slices.Collect(maps.Keys(set))
}
