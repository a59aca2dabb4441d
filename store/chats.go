package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Chat is a conversation on one platform: a private chat or a group.
type Chat struct {
	Platform, ID string
	Kind         string // "private" or "group"
	Title        string
	Language     string // stored preference, "" if none
	// Crop is the crop chosen with /crop (a crop id such as "corn"), "" if none.
	Crop                string
	FirstSeen, LastSeen time.Time
	// MovedTo is the id the chat continues under since the platform gave it a new one (a
	// Telegram group upgraded to a supergroup); MovedFrom is the id it had before. See
	// MigrateChat.
	MovedTo, MovedFrom string
}

// User is a person on one platform.
type User struct {
	Platform, ID string
	Name         string
	Language     string // stored preference, "" if none
	LangHint     string // last platform hint seen
	// Crop is the crop chosen with /crop in the user's private chat, "" if none.
	Crop                string
	FirstSeen, LastSeen time.Time
	// MovedTo is the id the user continues under since the platform revealed a better one (a
	// WhatsApp farmer's phone number, after their LID); MovedFrom is the user's alternate id, the
	// one they had before. See MigrateUser.
	MovedTo, MovedFrom string
}

// chatRec is the JSON stored under platform NUL id in bucketChats.
type chatRec struct {
	Kind      string    `json:"kind,omitempty"`
	Title     string    `json:"title,omitempty"`
	Language  string    `json:"language,omitempty"`
	Crop      string    `json:"crop,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	MovedTo   string    `json:"moved_to,omitempty"`
	MovedFrom string    `json:"moved_from,omitempty"`
}

// userRec is the JSON stored under platform NUL id in bucketUsers.
type userRec struct {
	Name      string    `json:"name,omitempty"`
	Language  string    `json:"language,omitempty"`
	LangHint  string    `json:"lang_hint,omitempty"`
	Crop      string    `json:"crop,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	MovedTo   string    `json:"moved_to,omitempty"`
	MovedFrom string    `json:"moved_from,omitempty"`
}

// TouchChat records that chat c was seen at seen. A new chat is stored as
// given with FirstSeen = LastSeen = seen. An existing chat keeps its
// FirstSeen and Language, takes Kind and Title from c when they are not
// empty, and moves LastSeen to seen (never backwards, so touches that
// arrive out of order are harmless). It returns the stored record.
func (s *Store) TouchChat(ctx context.Context, c Chat, seen time.Time) (Chat, error) {
	if err := ctx.Err(); err != nil {
		return Chat{}, err
	}
	if err := checkIDs("platform", c.Platform, "chat id", c.ID); err != nil {
		return Chat{}, err
	}
	var out Chat
	err := s.update(ctx, "touch chat", func(tx Tx) (err error) {
		out, err = touchChatTx(tx, c, seen)
		return err
	})
	if err != nil {
		return Chat{}, err
	}
	return out, nil
}

// touchChatTx is TouchChat inside a transaction (ids already checked).
func touchChatTx(tx Tx, c Chat, seen time.Time) (Chat, error) {
	seen = utc(seen)
	key := compositeKey(c.Platform, c.ID)
	b, err := bucket(tx, bucketChats)
	if err != nil {
		return Chat{}, err
	}
	rec := chatRec{Kind: c.Kind, Title: c.Title, Language: c.Language, FirstSeen: seen, LastSeen: seen}
	if v := b.Get(key); v != nil {
		if err := json.Unmarshal(v, &rec); err != nil {
			return Chat{}, fmt.Errorf("decode chat: %w", err)
		}
		if c.Kind != "" {
			rec.Kind = c.Kind
		}
		if c.Title != "" {
			rec.Title = c.Title
		}
		if seen.After(rec.LastSeen) {
			rec.LastSeen = seen
		}
	}
	if err := putJSON(b, key, rec); err != nil {
		return Chat{}, err
	}
	return rec.chat(c.Platform, c.ID), nil
}

// TouchUser is TouchChat for users: an existing user keeps FirstSeen and
// Language and takes Name and LangHint from u when they are not empty.
func (s *Store) TouchUser(ctx context.Context, u User, seen time.Time) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	if err := checkIDs("platform", u.Platform, "user id", u.ID); err != nil {
		return User{}, err
	}
	var out User
	err := s.update(ctx, "touch user", func(tx Tx) (err error) {
		out, err = touchUserTx(tx, u, seen)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// touchUserTx is TouchUser inside a transaction (ids already checked).
func touchUserTx(tx Tx, u User, seen time.Time) (User, error) {
	seen = utc(seen)
	key := compositeKey(u.Platform, u.ID)
	b, err := bucket(tx, bucketUsers)
	if err != nil {
		return User{}, err
	}
	rec := userRec{Name: u.Name, Language: u.Language, LangHint: u.LangHint, FirstSeen: seen, LastSeen: seen}
	if v := b.Get(key); v != nil {
		if err := json.Unmarshal(v, &rec); err != nil {
			return User{}, fmt.Errorf("decode user: %w", err)
		}
		if u.Name != "" {
			rec.Name = u.Name
		}
		if u.LangHint != "" {
			rec.LangHint = u.LangHint
		}
		if seen.After(rec.LastSeen) {
			rec.LastSeen = seen
		}
	}
	if err := putJSON(b, key, rec); err != nil {
		return User{}, err
	}
	return rec.user(u.Platform, u.ID), nil
}

// GetChat returns a stored chat, or ErrNotFound.
func (s *Store) GetChat(ctx context.Context, platform, id string) (Chat, error) {
	if err := ctx.Err(); err != nil {
		return Chat{}, err
	}
	if err := checkIDs("platform", platform, "chat id", id); err != nil {
		return Chat{}, err
	}
	var rec chatRec
	err := s.view(ctx, "get chat", func(tx Tx) error {
		return getJSON(tx, bucketChats, compositeKey(platform, id), &rec, "chat "+id+" on "+platform)
	})
	if err != nil {
		return Chat{}, err
	}
	return rec.chat(platform, id), nil
}

// GetUser returns a stored user, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, platform, id string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	if err := checkIDs("platform", platform, "user id", id); err != nil {
		return User{}, err
	}
	var rec userRec
	err := s.view(ctx, "get user", func(tx Tx) error {
		return getJSON(tx, bucketUsers, compositeKey(platform, id), &rec, "user "+id+" on "+platform)
	})
	if err != nil {
		return User{}, err
	}
	return rec.user(platform, id), nil
}

// SetChatLanguage stores a chat's language preference ("" clears it), and that of the chat it
// continues as if it moved (MigrateChat): a choice handled in the old chat after the move (a
// message still queued there) reaches the chat that is read now. It returns ErrNotFound if the
// chat was never touched.
func (s *Store) SetChatLanguage(ctx context.Context, platform, id, lang string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "chat id", id); err != nil {
		return err
	}
	return s.update(ctx, "set chat language", func(tx Tx) error {
		return setLanguageTx(tx, bucketChats, "chat", platform, id, lang, func(r *chatRec) (*string, string) {
			return &r.Language, r.MovedTo
		})
	})
}

// SetUserLanguage stores a user's language preference ("" clears it), and that of the id the user
// continues under if they moved (MigrateUser), as SetChatLanguage does. It returns ErrNotFound if
// the user was never touched.
func (s *Store) SetUserLanguage(ctx context.Context, platform, id, lang string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "user id", id); err != nil {
		return err
	}
	return s.update(ctx, "set user language", func(tx Tx) error {
		return setLanguageTx(tx, bucketUsers, "user", platform, id, lang, func(r *userRec) (*string, string) {
			return &r.Language, r.MovedTo
		})
	})
}

// SetChatCrop stores a chat's crop ("" clears it) as SetChatLanguage stores its language: the
// chat it continues as, if it moved, gets it too. It returns ErrNotFound if the chat was never
// touched.
func (s *Store) SetChatCrop(ctx context.Context, platform, id, crop string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "chat id", id); err != nil {
		return err
	}
	return s.update(ctx, "set chat crop", func(tx Tx) error {
		return setLanguageTx(tx, bucketChats, "chat", platform, id, crop, func(r *chatRec) (*string, string) {
			return &r.Crop, r.MovedTo
		})
	})
}

// SetUserCrop stores a user's crop ("" clears it) as SetUserLanguage stores the language.
func (s *Store) SetUserCrop(ctx context.Context, platform, id, crop string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "user id", id); err != nil {
		return err
	}
	return s.update(ctx, "set user crop", func(tx Tx) error {
		return setLanguageTx(tx, bucketUsers, "user", platform, id, crop, func(r *userRec) (*string, string) {
			return &r.Crop, r.MovedTo
		})
	})
}

// setLanguageTx sets lang on the record id of bucket name and follows its moves (the id in
// MovedTo, and so on, each once). fields gives a record's language field and where it moved.
func setLanguageTx[R any](tx Tx, name, what, platform, id, lang string, fields func(*R) (*string, string)) error {
	for seen := map[string]bool{}; id != "" && !seen[id]; {
		seen[id] = true
		key := compositeKey(platform, id)
		var rec R
		if err := getJSON(tx, name, key, &rec, what+" "+id+" on "+platform); err != nil {
			if len(seen) > 1 && errors.Is(err, ErrNotFound) {
				return nil // moved to an id never stored: nothing more to set
			}
			return err
		}
		l, next := fields(&rec)
		*l = lang
		if err := putJSON(tx.Bucket([]byte(name)), key, rec); err != nil {
			return err
		}
		id = next
	}
	return nil
}

// MigrateChat records, in one transaction, that chat from continues as chat to on the same
// platform (Telegram gives a group upgraded to a supergroup a new chat id). The new chat takes
// over the old one's preferences: its language unless one was chosen in the new chat already,
// its kind and title unless it has its own, and the earlier first-seen time; it is created if
// it was never seen. The old chat records MovedTo and the new one MovedFrom. The message logs
// stay where they are; the conversations' summaries show the link both ways (the new chat's is
// created if it has none, so that staff can open and answer it). Migrating again, or from the
// other side's notice, changes nothing more than the new chat's last-seen time. It returns the
// new chat as stored; ErrNotFound if the old chat was never seen (nothing is written then:
// there is nothing to carry over).
func (s *Store) MigrateChat(ctx context.Context, platform, from, to string, at time.Time) (Chat, error) {
	if err := ctx.Err(); err != nil {
		return Chat{}, err
	}
	if err := checkIDs("platform", platform, "chat id", from); err != nil {
		return Chat{}, err
	}
	if err := checkID("new chat id", to); err != nil {
		return Chat{}, err
	}
	if from == to {
		return Chat{}, fmt.Errorf("%w: chat %s moved to itself", ErrInvalid, from)
	}
	var out Chat
	err := s.update(ctx, "migrate chat", func(tx Tx) (err error) {
		out, err = migrateChatTx(tx, platform, from, to, at)
		return err
	})
	if err != nil {
		return Chat{}, err
	}
	return out, nil
}

// migrateChatTx is MigrateChat inside a transaction (ids already checked). It writes nothing
// before it finds the old chat.
func migrateChatTx(tx Tx, platform, from, to string, at time.Time) (Chat, error) {
	at = utc(at)
	b, err := bucket(tx, bucketChats)
	if err != nil {
		return Chat{}, err
	}
	oldKey, newKey := compositeKey(platform, from), compositeKey(platform, to)
	var old, moved chatRec
	if err := getJSON(tx, bucketChats, oldKey, &old, "chat "+from+" on "+platform); err != nil {
		return Chat{}, err
	}
	if v := b.Get(newKey); v != nil {
		if err := json.Unmarshal(v, &moved); err != nil {
			return Chat{}, fmt.Errorf("decode chat: %w", err)
		}
	}
	// A language is only ever stored by an explicit choice: one made in the new chat wins.
	moved.Kind, moved.Title, moved.Language = cmpOr(moved.Kind, old.Kind), cmpOr(moved.Title, old.Title), cmpOr(moved.Language, old.Language)
	moved.Crop = cmpOr(moved.Crop, old.Crop) // the same for the crop
	mergeSeen(&moved.FirstSeen, &moved.LastSeen, old.FirstSeen, at)
	moved.MovedFrom, old.MovedTo = from, to
	if err := putJSON(b, oldKey, old); err != nil {
		return Chat{}, err
	}
	if err := putJSON(b, newKey, moved); err != nil {
		return Chat{}, err
	}
	if err := linkMigration(tx, platform, from, to, moved, at); err != nil {
		return Chat{}, err
	}
	// The open crop question follows, unless the new chat has its own: its answer comes there.
	if qb := tx.Bucket([]byte(bucketCropQuestions)); qb != nil {
		if q := qb.Get(oldKey); q != nil && qb.Get(newKey) == nil {
			if err := qb.Put(newKey, bytes.Clone(q)); err != nil {
				return Chat{}, err
			}
			if err := qb.Delete(oldKey); err != nil {
				return Chat{}, err
			}
		}
	}
	return moved.chat(platform, to), nil
}

// MigrateUser records, in one transaction, that user from continues as user to on the same
// platform (WhatsApp reveals the phone number of a farmer known until then only by a privacy id,
// a LID), and so does the user's private chat: a private chat has its user's id on every
// platform. The new user takes over the old one's language unless one was chosen under the new id
// already, its name and language hint unless the new id has its own, and the earlier first-seen
// time; it is created if it was never seen. The old user records MovedTo and the new one
// MovedFrom, its alternate id. A private chat under the old id moves as MigrateChat moves a chat
// (with the conversations' summaries linked both ways); groups have ids of their own and stay.
// Migrating again changes nothing more. It returns the new user as stored; ErrNotFound if the old
// user was never seen (nothing is written then: there is nothing to carry over).
func (s *Store) MigrateUser(ctx context.Context, platform, from, to string, at time.Time) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	if err := checkIDs("platform", platform, "user id", from); err != nil {
		return User{}, err
	}
	if err := checkID("new user id", to); err != nil {
		return User{}, err
	}
	if from == to {
		return User{}, fmt.Errorf("%w: user %s moved to itself", ErrInvalid, from)
	}
	var out User
	err := s.update(ctx, "migrate user", func(tx Tx) (err error) {
		if out, err = migrateUserTx(tx, platform, from, to, at); err != nil {
			return err
		}
		var chat chatRec
		err = getJSON(tx, bucketChats, compositeKey(platform, from), &chat, "chat "+from+" on "+platform)
		switch {
		case errors.Is(err, ErrNotFound) || err == nil && chat.Kind == "group":
			return nil // no private chat: the user wrote in groups only
		case err != nil:
			return err
		}
		_, err = migrateChatTx(tx, platform, from, to, at)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

// migrateUserTx is the user's part of MigrateUser inside a transaction (ids already checked). It
// writes nothing before it finds the old user.
func migrateUserTx(tx Tx, platform, from, to string, at time.Time) (User, error) {
	at = utc(at)
	b, err := bucket(tx, bucketUsers)
	if err != nil {
		return User{}, err
	}
	oldKey, newKey := compositeKey(platform, from), compositeKey(platform, to)
	var old, moved userRec
	if err := getJSON(tx, bucketUsers, oldKey, &old, "user "+from+" on "+platform); err != nil {
		return User{}, err
	}
	if v := b.Get(newKey); v != nil {
		if err := json.Unmarshal(v, &moved); err != nil {
			return User{}, fmt.Errorf("decode user: %w", err)
		}
	}
	// As for chats: a language chosen under the new id wins.
	moved.Name, moved.Language, moved.LangHint = cmpOr(moved.Name, old.Name), cmpOr(moved.Language, old.Language), cmpOr(moved.LangHint, old.LangHint)
	moved.Crop = cmpOr(moved.Crop, old.Crop)
	mergeSeen(&moved.FirstSeen, &moved.LastSeen, old.FirstSeen, at)
	moved.MovedFrom, old.MovedTo = from, to
	if err := putJSON(b, oldKey, old); err != nil {
		return User{}, err
	}
	if err := putJSON(b, newKey, moved); err != nil {
		return User{}, err
	}
	return moved.user(platform, to), nil
}

// mergeSeen gives a record that takes over an older one's (a migration's new chat or user) the
// earlier first-seen time, and the migration's time as last seen if that is later.
func mergeSeen(first, last *time.Time, oldFirst, at time.Time) {
	if first.IsZero() || oldFirst.Before(*first) {
		*first = oldFirst
	}
	if at.After(*last) {
		*last = at
	}
}

func (r chatRec) chat(platform, id string) Chat {
	return Chat{
		Platform: platform, ID: id,
		Kind: r.Kind, Title: r.Title, Language: r.Language, Crop: r.Crop,
		FirstSeen: r.FirstSeen, LastSeen: r.LastSeen,
		MovedTo: r.MovedTo, MovedFrom: r.MovedFrom,
	}
}

func (r userRec) user(platform, id string) User {
	return User{
		Platform: platform, ID: id,
		Name: r.Name, Language: r.Language, LangHint: r.LangHint, Crop: r.Crop,
		FirstSeen: r.FirstSeen, LastSeen: r.LastSeen,
		MovedTo: r.MovedTo, MovedFrom: r.MovedFrom,
	}
}

// getJSON decodes the value under key in the named bucket into dst, or
// returns ErrNotFound naming what.
func getJSON(tx Tx, name string, key []byte, dst any, what string) error {
	b, err := bucket(tx, name)
	if err != nil {
		return err
	}
	v := b.Get(key)
	if v == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// putJSON encodes v under key. An encoding failure (a time outside years
// 0-9999) is an invalid argument.
func putJSON(b Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: encode record: %w", ErrInvalid, err)
	}
	return b.Put(key, data)
}
