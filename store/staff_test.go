package store

import (
	"errors"
	"strings"
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

// TestStaffAdministration: an admin's changes to accounts, each with its audit entry; disabling
// and a new password end the account's sessions; the first admin is made only while there is
// none.
func TestStaffAdministration(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	first := StaffAccount{Name: "ada", Role: "admin", PasswordHash: []byte("h1"), Created: testTime}
	if err := s.AddFirstAdmin(ctx, first, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFirstAdmin(ctx, StaffAccount{Name: "eve", Role: "admin", PasswordHash: []byte("h"), Created: testTime}, "admin"); !errors.Is(err, ErrExists) {
		t.Errorf("a second first admin: %v, want ErrExists", err)
	}
	if ok, err := s.HasStaffRole(ctx, "admin"); err != nil || !ok {
		t.Errorf("HasStaffRole(admin): %v %v", ok, err)
	}
	if err := s.AddStaffBy(ctx, StaffAccount{Name: "bob", Role: "agent", PasswordHash: []byte("h2"), Created: testTime}, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStaffSession(ctx, StaffSession{IDHash: "s1", Name: "bob", Created: testTime, Seen: testTime}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStaffDisabled(ctx, "bob", true, "ada", testTime.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if a, err := s.GetStaff(ctx, "bob"); err != nil || !a.Disabled {
		t.Errorf("bob after disable: %+v %v", a, err)
	}
	if _, err := s.GetStaffSession(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a disabled account's session: %v, want ErrNotFound", err)
	}
	if err := s.SetStaffDisabled(ctx, "bob", false, "ada", testTime.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStaffSession(ctx, StaffSession{IDHash: "s2", Name: "bob", Created: testTime, Seen: testTime}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStaffPassword(ctx, "bob", []byte("h3"), "ada", testTime.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if a, err := s.GetStaff(ctx, "bob"); err != nil || a.Disabled || string(a.PasswordHash) != "h3" {
		t.Errorf("bob after enable and reset: %+v %v", a, err)
	}
	if _, err := s.GetStaffSession(ctx, "s2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a reset account's session: %v, want ErrNotFound", err)
	}
	if err := s.SetStaffDisabled(ctx, "nobody", true, "ada", testTime); !errors.Is(err, ErrNotFound) {
		t.Errorf("disable a missing account: %v", err)
	}
	log, err := s.StaffAuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range log {
		got = append(got, a.By+" "+a.Action+" "+a.Name+" "+a.Role)
	}
	want := []string{"ada password bob agent", "ada enable bob agent", "ada disable bob agent", "ada add bob agent", " first_admin ada admin"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit log %q, want %q", got, want)
	}
}
