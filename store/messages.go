package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Direction tells whether a message came from the user or from the bot.
type Direction string

// Message directions.
const (
	Inbound  Direction = "in"
	Outbound Direction = "out"
)

// Record is one logged message of a chat.
type Record struct {
	Seq        uint64 // assigned by AppendMessage, increasing per chat
	Time       time.Time
	Platform   string
	ChatID     string
	Direction  Direction
	SenderID   string
	SenderName string
	MessageID  string // the platform's message id, if any
	Text       string
	PhotoHash  string
	Album      []string // photo hashes of an album, the first also in PhotoHash
	ReplyTo    string   // the platform message id this answers, if any
	Error      string   // set on inbound messages whose handling failed (short, user-safe)
	// Staff names the support staff member who wrote an outbound message ("" for the bot).
	Staff string
	// Kind is an outbound message's reply kind (bot.Reply.Kind: "diagnosis", "unsure",
	// "not_leaf", "command", "error", "staff").
	Kind string
	// Lang is the language the chat is answered in.
	Lang string
	// CacheHit marks an answer whose photo analyses all came from the cache.
	CacheHit bool
	// Crop is the crop the farmer stated for the photo this message is about (a crop id such as
	// "corn": by /crop, in the caption, or answering the bot's question), "" if none.
	Crop string
}

// msgRec is the JSON stored under a big-endian Seq in a chat's nested
// bucket. Platform and chat id are the nested bucket's key, Seq is the
// record's key.
type msgRec struct {
	Time       time.Time `json:"time"`
	Direction  Direction `json:"dir"`
	SenderID   string    `json:"sender_id,omitempty"`
	SenderName string    `json:"sender_name,omitempty"`
	MessageID  string    `json:"message_id,omitempty"`
	Text       string    `json:"text,omitempty"`
	PhotoHash  string    `json:"photo_hash,omitempty"`
	Album      []string  `json:"album,omitempty"`
	ReplyTo    string    `json:"reply_to,omitempty"`
	Error      string    `json:"error,omitempty"`
	Staff      string    `json:"staff,omitempty"`
	Kind       string    `json:"kind,omitempty"`
	Lang       string    `json:"lang,omitempty"`
	CacheHit   bool      `json:"cache_hit,omitempty"`
	Crop       string    `json:"crop,omitempty"`
}

func newMsgRec(r Record) msgRec {
	return msgRec{
		Time: utc(r.Time), Direction: r.Direction,
		SenderID: r.SenderID, SenderName: r.SenderName, MessageID: r.MessageID,
		Text: r.Text, PhotoHash: r.PhotoHash, Album: r.Album, ReplyTo: r.ReplyTo, Error: r.Error,
		Staff: r.Staff, Kind: r.Kind, Lang: r.Lang, CacheHit: r.CacheHit, Crop: r.Crop,
	}
}

func (m msgRec) record(platform, chatID string, seq uint64) Record {
	return Record{
		Seq: seq, Time: m.Time, Platform: platform, ChatID: chatID, Direction: m.Direction,
		SenderID: m.SenderID, SenderName: m.SenderName, MessageID: m.MessageID,
		Text: m.Text, PhotoHash: m.PhotoHash, Album: m.Album, ReplyTo: m.ReplyTo, Error: m.Error,
		Staff: m.Staff, Kind: m.Kind, Lang: m.Lang, CacheHit: m.CacheHit, Crop: m.Crop,
	}
}

// checkRecord validates the fields every stored record needs.
func checkRecord(r Record) error {
	if err := checkIDs("platform", r.Platform, "chat id", r.ChatID); err != nil {
		return err
	}
	if r.Direction != Inbound && r.Direction != Outbound {
		return fmt.Errorf("%w: direction %q", ErrInvalid, r.Direction)
	}
	return nil
}

// AppendMessage stores r in its chat's log (a nested bucket per chat) and
// returns the Seq it assigned; r.Seq is ignored. Seqs start at 1 and
// increase per chat.
func (s *Store) AppendMessage(ctx context.Context, r Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkRecord(r); err != nil {
		return 0, err
	}
	v, err := json.Marshal(newMsgRec(r))
	if err != nil {
		return 0, fmt.Errorf("%w: encode message: %w", ErrInvalid, err)
	}
	var seq uint64
	err = s.update(ctx, "append message", func(tx Tx) error {
		seq, err = appendMessage(tx, r, v)
		return err
	})
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// appendMessage is AppendMessage's transaction: r, checked and encoded as v, appended to its
// chat's log and noted in the chat's summary.
func appendMessage(tx Tx, r Record, v []byte) (uint64, error) {
	mb, err := bucket(tx, bucketMessages)
	if err != nil {
		return 0, err
	}
	cb, err := mb.CreateBucketIfNotExists(compositeKey(r.Platform, r.ChatID))
	if err != nil {
		return 0, err
	}
	seq, err := cb.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := cb.Put(seqKey(seq), v); err != nil {
		return 0, err
	}
	return seq, noteMessage(tx, r, nil) // the chat's summary, in the same transaction
}

// UpdateMessage replaces the record with r.Seq in r's chat, for instance to
// attach the photo hash or an error after handling. It returns ErrNotFound
// if there is no such record.
func (s *Store) UpdateMessage(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := encodeUpdate(&r)
	if err != nil {
		return err
	}
	return s.update(ctx, "update message", func(tx Tx) error { return applyUpdate(tx, &r, v) })
}

// encodeUpdate checks and encodes a record that replaces a stored one (nil for nil).
func encodeUpdate(r *Record) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	if err := checkRecord(*r); err != nil {
		return nil, err
	}
	v, err := json.Marshal(newMsgRec(*r))
	if err != nil {
		return nil, fmt.Errorf("%w: encode message: %w", ErrInvalid, err)
	}
	return v, nil
}

// applyUpdate replaces the stored record r.Seq of r's chat with v (encodeUpdate(r)) and
// keeps the chat's summary in step; nothing for a nil r.
func applyUpdate(tx Tx, r *Record, v []byte) error {
	if r == nil {
		return nil
	}
	cb, err := chatLog(tx, r.Platform, r.ChatID)
	if err != nil {
		return err
	}
	key := seqKey(r.Seq)
	var prev []byte
	if cb != nil {
		prev = cb.Get(key)
	}
	if prev == nil {
		return fmt.Errorf("%w: message %d of chat %s on %s", ErrNotFound, r.Seq, r.ChatID, r.Platform)
	}
	prev = bytes.Clone(prev) // Put may reuse the page prev points into
	if err := cb.Put(key, v); err != nil {
		return err
	}
	return noteMessage(tx, *r, prev)
}

// Messages returns up to limit records of a chat with Seq > afterSeq,
// oldest first. An unknown chat has no messages: the result is empty, not
// ErrNotFound. limit must be positive.
func (s *Store) Messages(ctx context.Context, platform, chatID string, afterSeq uint64, limit int) ([]Record, error) {
	if err := checkChatRead(ctx, platform, chatID, limit); err != nil {
		return nil, err
	}
	if afterSeq == math.MaxUint64 {
		return []Record{}, nil
	}
	return s.readChatLog(ctx, "messages", platform, chatID, limit, func(c Cursor) ([]byte, []byte) {
		return c.Seek(seqKey(afterSeq + 1))
	}, (Cursor).Next)
}

// checkChatRead checks the arguments of a read of one chat's records.
func checkChatRead(ctx context.Context, platform, chatID string, limit int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
		return err
	}
	if limit <= 0 {
		return fmt.Errorf("%w: limit %d", ErrInvalid, limit)
	}
	return nil
}

// readChatLog returns up to limit records of a chat's log in the order it reads them: from the
// one first finds, going on with step (Next or Prev). An unknown chat gives an empty result.
func (s *Store) readChatLog(ctx context.Context, what, platform, chatID string, limit int,
	first, step func(Cursor) ([]byte, []byte)) ([]Record, error) {
	out := []Record{}
	err := s.view(ctx, what, func(tx Tx) error {
		cb, err := chatLog(tx, platform, chatID)
		if err != nil || cb == nil {
			return err
		}
		c := cb.Cursor()
		for k, v := first(c); k != nil && len(out) < limit; k, v = step(c) {
			r, err := decodeMessage(platform, chatID, k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecentMessages returns the last limit records of a chat, oldest first. It
// reads only those records, walking a cursor back from the end. An unknown
// chat gives an empty result; limit must be positive.
func (s *Store) RecentMessages(ctx context.Context, platform, chatID string, limit int) ([]Record, error) {
	return s.MessagesBefore(ctx, platform, chatID, 0, limit)
}

// chatLog returns a chat's nested message bucket, or nil if the chat has
// never logged a message.
func chatLog(tx Tx, platform, chatID string) (Bucket, error) {
	mb, err := bucket(tx, bucketMessages)
	if err != nil {
		return nil, err
	}
	return mb.Bucket(compositeKey(platform, chatID)), nil
}

func decodeMessage(platform, chatID string, k, v []byte) (Record, error) {
	if len(k) != 8 || v == nil {
		return Record{}, fmt.Errorf("malformed message key %x in chat %s on %s", k, chatID, platform)
	}
	seq := binary.BigEndian.Uint64(k)
	var m msgRec
	if err := json.Unmarshal(v, &m); err != nil {
		return Record{}, fmt.Errorf("decode message %d of chat %s on %s: %w", seq, chatID, platform, err)
	}
	return m.record(platform, chatID, seq), nil
}

// AppendMessages appends records (of any chats) in one transaction, as AppendMessage does one by
// one, and returns their Seqs. It is for imports and bulk loads.
func (s *Store) AppendMessages(ctx context.Context, rs []Record) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vals := make([][]byte, len(rs))
	for i, r := range rs {
		if err := checkRecord(r); err != nil {
			return nil, err
		}
		v, err := json.Marshal(newMsgRec(r))
		if err != nil {
			return nil, fmt.Errorf("%w: encode message: %w", ErrInvalid, err)
		}
		vals[i] = v
	}
	seqs := make([]uint64, len(rs))
	err := s.update(ctx, "append messages", func(tx Tx) error {
		mb, err := bucket(tx, bucketMessages)
		if err != nil {
			return err
		}
		for i, r := range rs {
			cb, err := mb.CreateBucketIfNotExists(compositeKey(r.Platform, r.ChatID))
			if err != nil {
				return err
			}
			if seqs[i], err = cb.NextSequence(); err != nil {
				return err
			}
			if err := cb.Put(seqKey(seqs[i]), vals[i]); err != nil {
				return err
			}
			if err := noteMessage(tx, r, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

// MessagesBefore returns up to limit records of a chat with Seq < beforeSeq (0: the newest),
// oldest first, reading only those records. An unknown chat gives an empty result.
func (s *Store) MessagesBefore(ctx context.Context, platform, chatID string, beforeSeq uint64, limit int) ([]Record, error) {
	if err := checkChatRead(ctx, platform, chatID, limit); err != nil {
		return nil, err
	}
	out, err := s.readChatLog(ctx, "read chat log", platform, chatID, limit, func(c Cursor) (k, v []byte) {
		if beforeSeq == 0 {
			return c.Last()
		}
		if k, _ = c.Seek(seqKey(beforeSeq)); k == nil {
			return c.Last()
		}
		return c.Prev()
	}, (Cursor).Prev)
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}
