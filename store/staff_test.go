package store

import (
	"errors"
	"testing"
	"time"
)

func TestStaffAccounts(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	alice := StaffAccount{Name: "alice", Role: "agent", PasswordHash: []byte("$2a$10$hash"), Created: testTime}
	if err := s.AddStaff(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := s.AddStaff(ctx, alice); !errors.Is(err, ErrExists) {
		t.Errorf("adding alice twice: %v, want ErrExists", err)
	}
	if err := s.AddStaff(ctx, StaffAccount{Name: "bob", Role: "viewer", PasswordHash: []byte("h"), Created: testTime}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetStaff(ctx, "alice")
	if err != nil || got.Role != "agent" || string(got.PasswordHash) != "$2a$10$hash" || !got.Created.Equal(testTime) {
		t.Errorf("GetStaff: %+v %v", got, err)
	}
	list, err := s.ListStaff(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" || list[0].PasswordHash != nil {
		t.Errorf("ListStaff: %+v %v", list, err)
	}
	for _, bad := range []StaffAccount{
		{Name: "", Role: "agent", PasswordHash: []byte("h")},
		{Name: "x", Role: "", PasswordHash: []byte("h")},
		{Name: "x", Role: "agent"},
	} {
		if err := s.AddStaff(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddStaff(%+v): %v, want ErrInvalid", bad, err)
		}
	}

	sessions := []StaffSession{
		{IDHash: "s1", Name: "alice", Created: testTime, Seen: testTime},
		{IDHash: "s2", Name: "alice", Created: testTime, Seen: testTime},
		{IDHash: "s3", Name: "bob", Created: testTime, Seen: testTime.Add(time.Hour)},
	}
	for _, sess := range sessions {
		if err := s.PutStaffSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TouchStaffSession(ctx, "s1", testTime.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetStaffSession(ctx, "s1"); err != nil || !got.Seen.Equal(testTime.Add(time.Minute)) || got.Name != "alice" {
		t.Errorf("touched session %+v %v", got, err)
	}
	if err := s.TouchStaffSession(ctx, "nope", testTime); !errors.Is(err, ErrNotFound) {
		t.Errorf("touch missing session: %v", err)
	}
	n, err := s.DeleteStaffSessionsWhere(ctx, func(ss StaffSession) bool { return ss.Seen.Before(testTime.Add(30 * time.Second)) })
	if err != nil || n != 1 {
		t.Errorf("expired sessions deleted: %d %v", n, err)
	}
	if _, err := s.GetStaffSession(ctx, "s2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired session: %v", err)
	}
	// Removing an account ends its sessions.
	if err := s.RemoveStaff(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetStaffSession(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of a removed account: %v", err)
	}
	if _, err := s.GetStaffSession(ctx, "s3"); err != nil {
		t.Errorf("bob's session: %v", err)
	}
	if err := s.RemoveStaff(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing alice twice: %v", err)
	}
	if err := s.DeleteStaffSession(ctx, "s3"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStaffSession(ctx, "s3"); err != nil {
		t.Errorf("deleting a missing session: %v", err)
	}
}
