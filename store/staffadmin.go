package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Staff administration from the dashboard: accounts added, disabled, enabled and given a new
// password by an admin, the first admin made through serve's one-time setup link, and the cache
// cleared. Each change is written with its audit entry in one transaction.
const bucketStaffAudit = "staff_audit" // big-endian seq → auditRec (JSON); made on first use

// Audit actions.
const (
	AuditAdd        = "add"         // an account was added (Name, Role)
	AuditFirstAdmin = "first_admin" // the first admin was made through the setup link (Name)
	AuditDisable    = "disable"     // an account was disabled; its sessions ended
	AuditEnable     = "enable"      // an account was enabled again
	AuditPassword   = "password"    // an account got a new password; its sessions ended
	AuditClearCache = "clear_cache" // the analysis cache was cleared (Detail: what was removed)
)

// StaffAudit is one administrative action.
type StaffAudit struct {
	Time   time.Time
	By     string // the admin ("" for the setup link)
	Action string
	Name   string // the account acted on, if any
	Role   string
	Detail string
}

type auditRec struct {
	Time   time.Time `json:"time"`
	By     string    `json:"by,omitempty"`
	Action string    `json:"action"`
	Name   string    `json:"name,omitempty"`
	Role   string    `json:"role,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

func writeAudit(tx Tx, a StaffAudit) error {
	b, err := tx.CreateBucketIfNotExists([]byte(bucketStaffAudit))
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return putJSON(b, seqKey(seq), auditRec{Time: utc(a.Time), By: a.By, Action: a.Action, Name: a.Name, Role: a.Role, Detail: a.Detail})
}

// LogStaffAudit records an administrative action that changes nothing else in the store.
func (s *Store) LogStaffAudit(ctx context.Context, a StaffAudit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(ctx, "log staff audit", func(tx Tx) error { return writeAudit(tx, a) })
}

// StaffAuditLog returns the latest limit administrative actions, newest first.
func (s *Store) StaffAuditLog(ctx context.Context, limit int) ([]StaffAudit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalid, limit)
	}
	out := []StaffAudit{}
	err := s.view(ctx, "staff audit", func(tx Tx) error {
		b := tx.Bucket([]byte(bucketStaffAudit))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var r auditRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode staff audit: %w", err)
			}
			out = append(out, StaffAudit(r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddStaffBy stores a new account added by an admin, with its audit entry; ErrExists if the
// name is taken.
func (s *Store) AddStaffBy(ctx context.Context, a StaffAccount, by string) error {
	return s.addStaff(ctx, a, &StaffAudit{Time: a.Created, By: by, Action: AuditAdd, Name: a.Name, Role: a.Role}, "")
}

// AddFirstAdmin stores a's account only if no enabled account has the role adminRole, in one
// transaction (two uses of a setup link cannot both make one); ErrExists otherwise.
func (s *Store) AddFirstAdmin(ctx context.Context, a StaffAccount, adminRole string) error {
	return s.addStaff(ctx, a, &StaffAudit{Time: a.Created, Action: AuditFirstAdmin, Name: a.Name, Role: a.Role}, adminRole)
}

// addStaff stores a new account with its audit entry (none if audit is nil); ErrExists if the name
// is taken or, unless unlessRole is "", an enabled account has that role.
func (s *Store) addStaff(ctx context.Context, a StaffAccount, audit *StaffAudit, unlessRole string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("staff name", a.Name, "role", a.Role); err != nil {
		return err
	}
	if len(a.PasswordHash) == 0 {
		return fmt.Errorf("%w: empty password hash", ErrInvalid)
	}
	return s.update(ctx, "add staff", func(tx Tx) error {
		b, err := bucket(tx, bucketStaff)
		if err != nil {
			return err
		}
		if unlessRole != "" {
			found := false
			err := b.ForEach(func(_, v []byte) error {
				var rec staffRec
				if json.Unmarshal(v, &rec) == nil && rec.Role == unlessRole && !rec.Disabled {
					found = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			if found {
				return fmt.Errorf("%w: an account with the role %s", ErrExists, unlessRole)
			}
		}
		if b.Get([]byte(a.Name)) != nil {
			return fmt.Errorf("%w: staff account %q", ErrExists, a.Name)
		}
		if err := putJSON(b, []byte(a.Name), staffRec{Role: a.Role, PasswordHash: bytes.Clone(a.PasswordHash), Created: utc(a.Created)}); err != nil {
			return err
		}
		if audit == nil {
			return nil
		}
		return writeAudit(tx, *audit)
	})
}

// HasStaffRole reports whether an enabled account has the role.
func (s *Store) HasStaffRole(ctx context.Context, role string) (bool, error) {
	accts, err := s.ListStaff(ctx)
	if err != nil {
		return false, err
	}
	for _, a := range accts {
		if a.Role == role && !a.Disabled {
			return true, nil
		}
	}
	return false, nil
}

// SetStaffDisabled disables an account (ending its sessions) or enables it again, with the
// audit entry; ErrNotFound if there is no such account.
func (s *Store) SetStaffDisabled(ctx context.Context, name string, disabled bool, by string, at time.Time) error {
	action := AuditEnable
	if disabled {
		action = AuditDisable
	}
	return s.changeStaff(ctx, name, StaffAudit{Time: at, By: by, Action: action, Name: name}, disabled, func(r *staffRec) { r.Disabled = disabled })
}

// SetStaffPassword replaces an account's password hash and ends its sessions, with the audit
// entry; ErrNotFound if there is no such account.
func (s *Store) SetStaffPassword(ctx context.Context, name string, hash []byte, by string, at time.Time) error {
	if len(hash) == 0 {
		return fmt.Errorf("%w: empty password hash", ErrInvalid)
	}
	return s.changeStaff(ctx, name, StaffAudit{Time: at, By: by, Action: AuditPassword, Name: name}, true, func(r *staffRec) { r.PasswordHash = bytes.Clone(hash) })
}

func (s *Store) changeStaff(ctx context.Context, name string, audit StaffAudit, endSessions bool, change func(*staffRec)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("staff name", name); err != nil {
		return err
	}
	return s.update(ctx, "change staff", func(tx Tx) error {
		var rec staffRec
		if err := getJSON(tx, bucketStaff, []byte(name), &rec, "staff account "+name); err != nil {
			return err
		}
		change(&rec)
		if err := putJSON(tx.Bucket([]byte(bucketStaff)), []byte(name), rec); err != nil {
			return err
		}
		if endSessions {
			if _, err := deleteSessions(tx, func(r sessionRec) bool { return r.Name == name }); err != nil {
				return err
			}
		}
		audit.Role = rec.Role
		return writeAudit(tx, audit)
	})
}
