package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func inboxIDs(us []InboxUpdate) []int64 {
	ids := make([]int64, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

func inboxUpdate(id int64) InboxUpdate {
	return InboxUpdate{ID: id, Data: fmt.Appendf(nil, `{"update_id":%d}`, id)}
}

// TestInboxSurvivesReopen is the crash-safety contract: a saved batch and its offset are both on
// disk after the store is closed and opened again, and only the updates not marked done remain.
func TestInboxSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := newTarget(t)
	s, err := Open(ctx, path, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if off, err := s.InboxOffset(ctx, "telegram"); err != nil || off != 0 {
		t.Fatalf("InboxOffset of a new file = %d, %v; want 0, nil", off, err)
	}
	if p, err := s.PendingInbox(ctx, "telegram"); err != nil || len(p) != 0 || p == nil {
		t.Fatalf("PendingInbox of a new file = %#v, %v; want an empty slice", p, err)
	}
	// Out of order on purpose: pending comes back by id.
	if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(12), inboxUpdate(10), inboxUpdate(11)}, 13); err != nil {
		t.Fatal(err)
	}
	if err := s.DoneInbox(ctx, "telegram", 11); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = newTestStore(t, path)
	off, err := s.InboxOffset(ctx, "telegram")
	if err != nil || off != 13 {
		t.Fatalf("InboxOffset after reopen = %d, %v; want 13", off, err)
	}
	p, err := s.PendingInbox(ctx, "telegram")
	if err != nil {
		t.Fatal(err)
	}
	if got := inboxIDs(p); !slices.Equal(got, []int64{10, 12}) {
		t.Fatalf("pending after reopen = %v, want [10 12]", got)
	}
	if string(p[1].Data) != `{"update_id":12}` {
		t.Errorf("update 12 = %q", p[1].Data)
	}
}

func TestInboxOperations(t *testing.T) {
	tests := []struct {
		name        string
		run         func(ctx context.Context, s *Store) error
		wantPending []int64
		wantOffset  int64
	}{
		{
			name: "save then done all",
			run: func(ctx context.Context, s *Store) error {
				if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(1), inboxUpdate(2)}, 3); err != nil {
					return err
				}
				return s.DoneInbox(ctx, "telegram", 1, 2)
			},
			wantPending: []int64{}, wantOffset: 3,
		},
		{
			name: "done twice and unknown ids are harmless",
			run: func(ctx context.Context, s *Store) error {
				if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(5)}, 6); err != nil {
					return err
				}
				for range 2 {
					if err := s.DoneInbox(ctx, "telegram", 5, 99, -1); err != nil {
						return err
					}
				}
				return s.DoneInbox(ctx, "whatsapp", 5) // a platform with no inbox yet
			},
			wantPending: []int64{}, wantOffset: 6,
		},
		{
			name: "saving an update again replaces it",
			run: func(ctx context.Context, s *Store) error {
				if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(7)}, 8); err != nil {
					return err
				}
				return s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(7)}, 8)
			},
			wantPending: []int64{7}, wantOffset: 8,
		},
		{
			name: "offset 0 keeps the stored offset (webhook)",
			run: func(ctx context.Context, s *Store) error {
				if err := s.SaveInbox(ctx, "telegram", nil, 40); err != nil {
					return err
				}
				return s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(41)}, 0)
			},
			wantPending: []int64{41}, wantOffset: 40,
		},
		{
			// Telegram renumbers updates after a week of silence: the offset follows the batch.
			name: "offset may move back",
			run: func(ctx context.Context, s *Store) error {
				if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(900)}, 901); err != nil {
					return err
				}
				return s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(3)}, 4)
			},
			wantPending: []int64{3, 900}, wantOffset: 4,
		},
		{
			name: "platforms are separate",
			run: func(ctx context.Context, s *Store) error {
				if err := s.SaveInbox(ctx, "whatsapp", []InboxUpdate{inboxUpdate(1)}, 2); err != nil {
					return err
				}
				return s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(2)}, 3)
			},
			wantPending: []int64{2}, wantOffset: 3,
		},
		{
			name: "an invalid update saves nothing of the batch",
			run: func(ctx context.Context, s *Store) error {
				err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(1), {ID: 2}}, 3)
				if !errors.Is(err, ErrInvalid) {
					return fmt.Errorf("empty update: %w, want ErrInvalid", err)
				}
				return nil
			},
			wantPending: []int64{}, wantOffset: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, "")
			ctx := t.Context()
			if err := tt.run(ctx, s); err != nil {
				t.Fatal(err)
			}
			p, err := s.PendingInbox(ctx, "telegram")
			if err != nil {
				t.Fatal(err)
			}
			if got := inboxIDs(p); !slices.Equal(got, tt.wantPending) {
				t.Errorf("pending = %v, want %v", got, tt.wantPending)
			}
			if off, err := s.InboxOffset(ctx, "telegram"); err != nil || off != tt.wantOffset {
				t.Errorf("offset = %d, %v; want %d", off, err, tt.wantOffset)
			}
		})
	}
}

func TestInboxInvalidArguments(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	tests := []struct {
		name string
		err  error
	}{
		{"empty platform save", s.SaveInbox(ctx, "", []InboxUpdate{inboxUpdate(1)}, 2)},
		{"NUL in platform", s.SaveInbox(ctx, "tele\x00gram", []InboxUpdate{inboxUpdate(1)}, 2)},
		{"negative id", s.SaveInbox(ctx, "telegram", []InboxUpdate{{ID: -1, Data: []byte("{}")}}, 0)},
		{"negative offset", s.SaveInbox(ctx, "telegram", nil, -5)},
		{"empty platform done", s.DoneInbox(ctx, "", 1)},
		{"empty platform offset", func() error { _, err := s.InboxOffset(ctx, ""); return err }()},
		{"empty platform pending", func() error { _, err := s.PendingInbox(ctx, ""); return err }()},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", tt.name, tt.err)
		}
	}
}

func TestInboxCopiesBytes(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	in := inboxUpdate(1)
	if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{in}, 2); err != nil {
		t.Fatal(err)
	}
	in.Data[0] = 'X' // the caller's slice is not the stored one
	p, err := s.PendingInbox(ctx, "telegram")
	if err != nil {
		t.Fatal(err)
	}
	p[0].Data[1] = 'Y' // nor is the returned one
	again, err := s.PendingInbox(ctx, "telegram")
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0].Data) != `{"update_id":1}` {
		t.Errorf("stored update changed through a slice: %q", again[0].Data)
	}
}

func TestInboxCancelledContext(t *testing.T) {
	s := newTestStore(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errs := []error{
		s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(1)}, 2),
		s.DoneInbox(ctx, "telegram", 1),
		func() error { _, err := s.PendingInbox(ctx, "telegram"); return err }(),
		func() error { _, err := s.InboxOffset(ctx, "telegram"); return err }(),
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: %v, want context.Canceled", i, err)
		}
	}
	if off, _ := s.InboxOffset(t.Context(), "telegram"); off != 0 {
		t.Errorf("a cancelled save wrote offset %d", off)
	}
}
