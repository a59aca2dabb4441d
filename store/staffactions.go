package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

const bucketStaffActions = "staff_actions" // chat key → nested bucket: seq → actionRec (JSON)

// StaffAction is something a staff member did in a conversation: "confirm" or "correct" a photo's
// diagnosis, "resolve" or "reopen" the conversation. (Their replies are in the message log.)
type StaffAction struct {
	Platform, ChatID string
	Time             time.Time
	Staff            string
	Action           string
	PhotoHash        string
	Class            string
}

type actionRec struct {
	Time      time.Time `json:"time"`
	Staff     string    `json:"staff"`
	Action    string    `json:"action"`
	PhotoHash string    `json:"photo,omitempty"`
	Class     string    `json:"class,omitempty"`
}

// Staff actions.
const (
	ActionConfirm = "confirm"
	ActionCorrect = "correct"
	ActionResolve = "resolve"
	ActionReopen  = "reopen"
)

// logAction appends a staff action to its chat's action log and clears the chat's
// needs-attention flag; the chat must have a summary.
func logAction(tx Tx, a StaffAction, change func(*summaryRec)) error {
	key := compositeKey(a.Platform, a.ChatID)
	sb, s, found, err := summaryOf(tx, key)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: conversation %s on %s", ErrNotFound, a.ChatID, a.Platform)
	}
	s.Attention, s.LastStaff = false, a.Staff
	if change != nil {
		change(&s)
	}
	if err := putJSON(sb, key, s); err != nil {
		return err
	}
	ab, err := bucket(tx, bucketStaffActions)
	if err != nil {
		return err
	}
	cb, err := ab.CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	seq, err := cb.NextSequence()
	if err != nil {
		return err
	}
	return putJSON(cb, seqKey(seq), actionRec{Time: utc(a.Time), Staff: a.Staff, Action: a.Action, PhotoHash: a.PhotoHash, Class: a.Class})
}

// SetResolved marks a conversation resolved (or open again) by a staff member, logging the
// action, in one transaction. A new message from the farmer reopens it. ErrNotFound if the
// conversation has no summary.
func (s *Store) SetResolved(ctx context.Context, platform, chatID string, resolved bool, by string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
		return err
	}
	if err := checkID("staff name", by); err != nil {
		return err
	}
	action := ActionReopen
	if resolved {
		action = ActionResolve
	}
	return s.update(ctx, "set resolved", func(tx Tx) error {
		return logAction(tx, StaffAction{Platform: platform, ChatID: chatID, Time: at, Staff: by, Action: action},
			func(s *summaryRec) {
				s.Resolved, s.ResolvedBy, s.ResolvedAt = resolved, by, utc(at)
				if !resolved {
					s.ResolvedBy, s.ResolvedAt = "", time.Time{}
				}
			})
	})
}

// StaffActions returns the last limit staff actions of a conversation, oldest first.
func (s *Store) StaffActions(ctx context.Context, platform, chatID string, limit int) ([]StaffAction, error) {
	if err := checkChatRead(ctx, platform, chatID, limit); err != nil {
		return nil, err
	}
	out := []StaffAction{}
	err := s.view(ctx, "staff actions", func(tx Tx) error {
		ab, err := bucket(tx, bucketStaffActions)
		if err != nil {
			return err
		}
		cb := ab.Bucket(compositeKey(platform, chatID))
		if cb == nil {
			return nil
		}
		c := cb.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var rec actionRec
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode staff action: %w", err)
			}
			out = append(out, StaffAction{Platform: platform, ChatID: chatID, Time: rec.Time, Staff: rec.Staff,
				Action: rec.Action, PhotoHash: rec.PhotoHash, Class: rec.Class})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}
