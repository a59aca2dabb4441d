package store

import (
	"errors"
	"strings"
	"testing"
)

// TestLongIDs: ids up to maxIDLen are stored and read back on both engines (on PostgreSQL the
// keys made of them fit its index row limit); a longer one is refused with ErrInvalid before
// anything is written, on both engines alike (PostgreSQL failed the whole transaction on a 3 KB
// chat id where bbolt stored it).
func TestLongIDs(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		id      string
		wantErr error
	}{
		{"at the limit", strings.Repeat("c", maxIDLen), nil},
		{"one byte over", strings.Repeat("c", maxIDLen+1), ErrInvalid},
		{"3 KB", strings.Repeat("c", 3000), ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{Time: testTime, Platform: "webchat", ChatID: tc.id, Direction: Inbound,
				SenderID: tc.id, MessageID: tc.id, Text: "hello"}
			_, err := s.BeginReply(ctx, r, &Chat{Platform: "webchat", ID: tc.id, Kind: "private"},
				&User{Platform: "webchat", ID: tc.id}, 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("BeginReply with a %d-byte id: %v, want %v", len(tc.id), err, tc.wantErr)
			}
			got, err := s.RecentMessages(ctx, "webchat", tc.id, 10)
			switch {
			case tc.wantErr == nil && (err != nil || len(got) != 1):
				t.Errorf("read back: %v, %v", got, err)
			case tc.wantErr != nil && !errors.Is(err, ErrInvalid):
				t.Errorf("read with a refused id: %v, want ErrInvalid", err)
			}
		})
	}
}
