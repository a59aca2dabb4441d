package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Support staff accounts and their dashboard sessions. The store keeps only what cannot open an
// account by itself: a password hash (bcrypt, made by the caller) and a hash of each session
// token, never the password or the token.
const (
	bucketStaff         = "staff"          // name → staffRec (JSON)
	bucketStaffSessions = "staff_sessions" // hash of the session token → sessionRec (JSON)
)

// StaffAccount is one support staff member who may use the review dashboard.
type StaffAccount struct {
	Name         string
	Role         string // "viewer", "agent" or "admin"; the dashboard gives it meaning
	PasswordHash []byte // bcrypt
	Created      time.Time
	// Disabled accounts cannot log in (staffadmin.go).
	Disabled bool
}

type staffRec struct {
	Role         string    `json:"role"`
	PasswordHash []byte    `json:"password_hash"`
	Created      time.Time `json:"created"`
	Disabled     bool      `json:"disabled,omitempty"`
}

// StaffSession is a logged-in dashboard session, keyed by a hash of its token.
type StaffSession struct {
	IDHash string // hash of the session token (the token itself is never stored)
	Name   string // the staff member
	// Created bounds the session's whole life, Seen its idle time.
	Created, Seen time.Time
}

type sessionRec struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"`
}

// AddStaff stores a new account (the command line's 'staff add', without an audit entry);
// ErrExists if the name is taken.
func (s *Store) AddStaff(ctx context.Context, a StaffAccount) error {
	return s.addStaff(ctx, a, nil, "")
}

// GetStaff returns an account, or ErrNotFound.
func (s *Store) GetStaff(ctx context.Context, name string) (StaffAccount, error) {
	if err := ctx.Err(); err != nil {
		return StaffAccount{}, err
	}
	if err := checkID("staff name", name); err != nil {
		return StaffAccount{}, err
	}
	var rec staffRec
	err := s.view(ctx, "get staff", func(tx Tx) error {
		return getJSON(tx, bucketStaff, []byte(name), &rec, "staff account "+name)
	})
	if err != nil {
		return StaffAccount{}, err
	}
	return StaffAccount{Name: name, Role: rec.Role, PasswordHash: rec.PasswordHash, Created: rec.Created, Disabled: rec.Disabled}, nil
}

// ListStaff returns every account by name (without password hashes).
func (s *Store) ListStaff(ctx context.Context) ([]StaffAccount, error) {
	out := []StaffAccount{}
	err := s.view(ctx, "list staff", func(tx Tx) error {
		b, err := bucket(tx, bucketStaff)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var rec staffRec
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode staff account %q: %w", k, err)
			}
			out = append(out, StaffAccount{Name: string(k), Role: rec.Role, Created: rec.Created, Disabled: rec.Disabled})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RemoveStaff deletes an account and all its sessions in one transaction; ErrNotFound if there is
// no such account.
func (s *Store) RemoveStaff(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("staff name", name); err != nil {
		return err
	}
	return s.update(ctx, "remove staff", func(tx Tx) error {
		b, err := bucket(tx, bucketStaff)
		if err != nil {
			return err
		}
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: staff account %s", ErrNotFound, name)
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		_, err = deleteSessions(tx, func(r sessionRec) bool { return r.Name == name })
		return err
	})
}

// PutStaffSession stores a new session.
func (s *Store) PutStaffSession(ctx context.Context, sess StaffSession) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("session id hash", sess.IDHash, "staff name", sess.Name); err != nil {
		return err
	}
	return s.update(ctx, "put staff session", func(tx Tx) error {
		b, err := bucket(tx, bucketStaffSessions)
		if err != nil {
			return err
		}
		return putJSON(b, []byte(sess.IDHash), sessionRec{Name: sess.Name, Created: utc(sess.Created), Seen: utc(sess.Seen)})
	})
}

// GetStaffSession returns a session by the hash of its token, or ErrNotFound.
func (s *Store) GetStaffSession(ctx context.Context, idHash string) (StaffSession, error) {
	if err := ctx.Err(); err != nil {
		return StaffSession{}, err
	}
	if err := checkID("session id hash", idHash); err != nil {
		return StaffSession{}, err
	}
	var rec sessionRec
	err := s.view(ctx, "get staff session", func(tx Tx) error {
		return getJSON(tx, bucketStaffSessions, []byte(idHash), &rec, "staff session")
	})
	if err != nil {
		return StaffSession{}, err
	}
	return StaffSession{IDHash: idHash, Name: rec.Name, Created: rec.Created, Seen: rec.Seen}, nil
}

// TouchStaffSession moves a session's Seen forward; ErrNotFound if it is gone.
func (s *Store) TouchStaffSession(ctx context.Context, idHash string, seen time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("session id hash", idHash); err != nil {
		return err
	}
	return s.update(ctx, "touch staff session", func(tx Tx) error {
		var rec sessionRec
		if err := getJSON(tx, bucketStaffSessions, []byte(idHash), &rec, "staff session"); err != nil {
			return err
		}
		if seen = utc(seen); seen.After(rec.Seen) {
			rec.Seen = seen
		}
		return putJSON(tx.Bucket([]byte(bucketStaffSessions)), []byte(idHash), rec)
	})
}

// DeleteStaffSession removes a session (logout); removing a missing one is not an error.
func (s *Store) DeleteStaffSession(ctx context.Context, idHash string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("session id hash", idHash); err != nil {
		return err
	}
	return s.update(ctx, "delete staff session", func(tx Tx) error {
		b, err := bucket(tx, bucketStaffSessions)
		if err != nil {
			return err
		}
		return b.Delete([]byte(idHash))
	})
}

// DeleteStaffSessionsWhere removes the sessions for which expired returns true (expired ones, or
// every session of a staff member) and returns how many.
func (s *Store) DeleteStaffSessionsWhere(ctx context.Context, expired func(StaffSession) bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.update(ctx, "delete staff sessions", func(tx Tx) error {
		var err error
		n, err = deleteSessions(tx, func(r sessionRec) bool {
			return expired(StaffSession{Name: r.Name, Created: r.Created, Seen: r.Seen})
		})
		return err
	})
	return n, err
}

func deleteSessions(tx Tx, match func(sessionRec) bool) (int, error) {
	b, err := bucket(tx, bucketStaffSessions)
	if err != nil {
		return 0, err
	}
	var doomed [][]byte
	err = b.ForEach(func(k, v []byte) error {
		var rec sessionRec
		if err := json.Unmarshal(v, &rec); err != nil || match(rec) {
			doomed = append(doomed, slices.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}
