package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Turn is the handling state of one inbound message, keyed by its platform message id, so that
// every message is answered exactly once: a message delivered twice is recognized, and one whose
// handling was cut short (a crash) resumes without repeating the replies already sent.
type Turn struct {
	Seq       uint64 // the inbound record in the chat's log
	Attempted int    // replies whose sending began
	Sent      int    // replies known to be delivered
	Done      bool   // handling finished
	Started   time.Time
	// Forgotten: the farmer asked to be forgotten (ForgetUser) after this message came. The turn
	// stays, done, so that the message delivered again is not answered again; a handling still
	// running then writes nothing more of it (its reply's record, its end).
	Forgotten bool
}

type turnRec struct {
	Seq       uint64    `json:"seq"`
	Attempted int       `json:"attempted,omitempty"`
	Sent      int       `json:"sent,omitempty"`
	Done      bool      `json:"done,omitempty"`
	Started   time.Time `json:"started"`
	Forgotten bool      `json:"forgotten,omitempty"`
}

func turnKey(platform, chatID, msgID string) ([]byte, error) {
	if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
		return nil, err
	}
	if err := checkID("message id", msgID); err != nil {
		return nil, err
	}
	return append(append(compositeKey(platform, chatID), 0), msgID...), nil
}

// BeginTurn records an inbound message and starts its turn, in one transaction. If a turn for
// the same platform, chat and r.MessageID exists, nothing is written and that turn is returned
// with existed true. A message without a MessageID is only appended (no turn is kept).
func (s *Store) BeginTurn(ctx context.Context, r Record) (t Turn, existed bool, err error) {
	in, err := s.RecordInbound(ctx, r, nil, nil)
	return in.Turn, in.Existed, err
}

// Arrival is what RecordInbound returns: the chat and sender as stored, and the message's turn.
type Arrival struct {
	Chat    Chat
	User    User
	Turn    Turn
	Existed bool // the message was recorded before (a second delivery, or a resumed one)
}

// RecordInbound is the first write of an incoming message, in ONE transaction (one fsync): it
// upserts the chat and the sender (each optional, as TouchChat and TouchUser would, seen at
// r.Time) and begins the message's turn as BeginTurn does.
func (s *Store) RecordInbound(ctx context.Context, r Record, chat *Chat, user *User) (Arrival, error) {
	return s.recordInbound(ctx, "record inbound", r, chat, user, nil)
}

// BeginReply is RecordInbound and AttemptReply(k) in one transaction: the handler defers a
// message's first write until its first reply is about to go out, so that a reply costs one fsync
// before it is sent. If the turn exists already (another delivery of the same message began it
// meanwhile), nothing is written and the Arrival says Existed.
func (s *Store) BeginReply(ctx context.Context, r Record, chat *Chat, user *User, k int) (Arrival, error) {
	return s.recordInbound(ctx, "begin reply", r, chat, user, func(t *turnRec) { t.Attempted = k + 1 })
}

// BeginDone is RecordInbound and FinishTurn in one transaction, for a message answered without a
// reply (a group's chatter, a rate-limited message). Existed as for BeginReply.
func (s *Store) BeginDone(ctx context.Context, r Record, chat *Chat, user *User) (Arrival, error) {
	return s.recordInbound(ctx, "begin done", r, chat, user, func(t *turnRec) { t.Done = true })
}

// GetTurn reads the turn of a message (ErrNotFound if it has none): whether it was answered, or
// begun and interrupted.
func (s *Store) GetTurn(ctx context.Context, platform, chatID, msgID string) (Turn, error) {
	key, err := turnKey(platform, chatID, msgID)
	if err != nil {
		return Turn{}, err
	}
	var t Turn
	err = s.view(ctx, "get turn", func(tx Tx) error {
		tb := tx.Bucket([]byte(bucketTurns))
		var v []byte
		if tb != nil {
			v = tb.Get(key)
		}
		if v == nil {
			return fmt.Errorf("%w: turn of message %s in chat %s on %s", ErrNotFound, msgID, chatID, platform)
		}
		var rec turnRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode turn: %w", err)
		}
		t = Turn(rec)
		return nil
	})
	return t, err
}

// recordInbound is RecordInbound with then applied to a new turn before it is stored.
func (s *Store) recordInbound(ctx context.Context, op string, r Record, chat *Chat, user *User, then func(*turnRec)) (Arrival, error) {
	if err := ctx.Err(); err != nil {
		return Arrival{}, err
	}
	if r.Direction != Inbound {
		return Arrival{}, fmt.Errorf("%w: a turn begins with an inbound message", ErrInvalid)
	}
	if err := checkRecord(r); err != nil {
		return Arrival{}, err
	}
	if chat != nil {
		if err := checkIDs("platform", chat.Platform, "chat id", chat.ID); err != nil {
			return Arrival{}, err
		}
	}
	if user != nil {
		if err := checkIDs("platform", user.Platform, "user id", user.ID); err != nil {
			return Arrival{}, err
		}
	}
	var key []byte
	if r.MessageID != "" {
		var err error
		if key, err = turnKey(r.Platform, r.ChatID, r.MessageID); err != nil {
			return Arrival{}, err
		}
	}
	v, err := json.Marshal(newMsgRec(r))
	if err != nil {
		return Arrival{}, fmt.Errorf("%w: encode message: %w", ErrInvalid, err)
	}
	var in Arrival
	err = s.update(ctx, op, func(tx Tx) error {
		in = Arrival{}
		if chat != nil {
			if in.Chat, err = touchChatTx(tx, *chat, r.Time); err != nil {
				return err
			}
		}
		if user != nil {
			if in.User, err = touchUserTx(tx, *user, r.Time); err != nil {
				return err
			}
		}
		tb, err := bucket(tx, bucketTurns)
		if err != nil {
			return err
		}
		if key != nil {
			if old := tb.Get(key); old != nil {
				var rec turnRec
				if err := json.Unmarshal(old, &rec); err != nil {
					return fmt.Errorf("decode turn: %w", err)
				}
				in.Turn, in.Existed = Turn(rec), true
				return nil
			}
		}
		mb, err := bucket(tx, bucketMessages)
		if err != nil {
			return err
		}
		cb, err := mb.CreateBucketIfNotExists(compositeKey(r.Platform, r.ChatID))
		if err != nil {
			return err
		}
		seq, err := cb.NextSequence()
		if err != nil {
			return err
		}
		if err := cb.Put(seqKey(seq), v); err != nil {
			return err
		}
		if err := noteMessage(tx, r, nil); err != nil {
			return err
		}
		rec := turnRec{Seq: seq, Started: utc(r.Time)}
		if then != nil {
			then(&rec)
		}
		in.Turn = Turn(rec)
		if key == nil {
			return nil
		}
		return putJSON(tb, key, rec)
	})
	if err != nil {
		return Arrival{}, err
	}
	return in, nil
}

// changeTurn applies fn to a stored turn; ErrNotFound if there is none.
func (s *Store) changeTurn(ctx context.Context, op, platform, chatID, msgID string, fn func(tx Tx, t *turnRec) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := turnKey(platform, chatID, msgID)
	if err != nil {
		return err
	}
	return s.update(ctx, op, func(tx Tx) error {
		tb, err := bucket(tx, bucketTurns)
		if err != nil {
			return err
		}
		v := tb.Get(key)
		if v == nil {
			return fmt.Errorf("%w: turn of message %s in chat %s on %s", ErrNotFound, msgID, chatID, platform)
		}
		var rec turnRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode turn: %w", err)
		}
		if rec.Forgotten {
			return nil // forgotten meanwhile: nothing of the message is written back
		}
		if err := fn(tx, &rec); err != nil {
			return err
		}
		return putJSON(tb, key, rec)
	})
}

// AttemptReply durably notes that reply number k (from 0) of a turn is about to be sent. After a
// crash, a reply attempted but not known to be sent is not sent again: better one reply lost
// than one sent twice. A non-nil inbound replaces the turn's inbound record (with the photo hash
// or the error found while handling it) in the same transaction.
func (s *Store) AttemptReply(ctx context.Context, platform, chatID, msgID string, k int, inbound *Record) error {
	v, err := encodeUpdate(inbound)
	if err != nil {
		return err
	}
	return s.changeTurn(ctx, "attempt reply", platform, chatID, msgID, func(tx Tx, t *turnRec) error {
		t.Attempted = max(t.Attempted, k+1)
		return applyUpdate(tx, inbound, v)
	})
}

// ReplySent appends the outbound record of reply number k and marks it delivered, and with
// finish the turn done, in one transaction. For a message without an id it only appends.
func (s *Store) ReplySent(ctx context.Context, msgID string, k int, out Record, finish bool) error {
	if out.Direction != Outbound {
		return fmt.Errorf("%w: a reply is an outbound message", ErrInvalid)
	}
	if msgID == "" {
		_, err := s.AppendMessage(ctx, out)
		return err
	}
	if err := checkRecord(out); err != nil {
		return err
	}
	v, err := json.Marshal(newMsgRec(out))
	if err != nil {
		return fmt.Errorf("%w: encode message: %w", ErrInvalid, err)
	}
	return s.changeTurn(ctx, "reply sent", out.Platform, out.ChatID, msgID, func(tx Tx, t *turnRec) error {
		mb, err := bucket(tx, bucketMessages)
		if err != nil {
			return err
		}
		cb, err := mb.CreateBucketIfNotExists(compositeKey(out.Platform, out.ChatID))
		if err != nil {
			return err
		}
		seq, err := cb.NextSequence()
		if err != nil {
			return err
		}
		t.Attempted, t.Sent = max(t.Attempted, k+1), max(t.Sent, k+1)
		t.Done = t.Done || finish
		if err := cb.Put(seqKey(seq), v); err != nil {
			return err
		}
		return noteMessage(tx, out, nil)
	})
}

// FinishTurn marks a turn done: the message is answered. A non-nil inbound replaces the turn's
// inbound record in the same transaction. For a message without an id there is no turn: only
// the inbound record is replaced.
func (s *Store) FinishTurn(ctx context.Context, platform, chatID, msgID string, inbound *Record) error {
	if msgID == "" {
		if inbound == nil {
			return ctx.Err()
		}
		return s.UpdateMessage(ctx, *inbound)
	}
	v, err := encodeUpdate(inbound)
	if err != nil {
		return err
	}
	return s.changeTurn(ctx, "finish turn", platform, chatID, msgID, func(tx Tx, t *turnRec) error {
		t.Done = true
		return applyUpdate(tx, inbound, v)
	})
}
