package store

import (
	"errors"
	"testing"
)

func TestTurns(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	in := Record{Time: testTime, Platform: "telegram", ChatID: "42", Direction: Inbound, MessageID: "7", Text: "hi"}
	first, existed, err := s.BeginTurn(ctx, in)
	if err != nil || existed || first.Seq != 1 || first.Done {
		t.Fatalf("BeginTurn = %+v %v %v", first, existed, err)
	}
	again, existed, err := s.BeginTurn(ctx, in)
	if err != nil || !existed || again.Seq != first.Seq {
		t.Fatalf("second BeginTurn = %+v %v %v, want the same turn", again, existed, err)
	}
	if recs, _ := s.RecentMessages(ctx, "telegram", "42", 10); len(recs) != 1 {
		t.Fatalf("a repeated BeginTurn appended again: %d records", len(recs))
	}
	if err := s.AttemptReply(ctx, "telegram", "42", "7", 0, nil); err != nil {
		t.Fatal(err)
	}
	out := Record{Time: testTime, Platform: "telegram", ChatID: "42", Direction: Outbound, ReplyTo: "7", Text: "answer"}
	if err := s.ReplySent(ctx, "7", 0, out, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AttemptReply(ctx, "telegram", "42", "7", 1, nil); err != nil {
		t.Fatal(err)
	}
	tu, _, _ := s.BeginTurn(ctx, in)
	if tu.Sent != 1 || tu.Attempted != 2 || tu.Done {
		t.Fatalf("turn %+v, want sent 1 attempted 2", tu)
	}
	if err := s.FinishTurn(ctx, "telegram", "42", "7", nil); err != nil {
		t.Fatal(err)
	}
	if tu, _, _ = s.BeginTurn(ctx, in); !tu.Done {
		t.Fatalf("turn %+v not done", tu)
	}
	recs, err := s.RecentMessages(ctx, "telegram", "42", 10)
	if err != nil || len(recs) != 2 || recs[1].Text != "answer" {
		t.Fatalf("log %+v %v", recs, err)
	}

	// Turns of unknown messages, bad arguments, and messages without an id.
	if err := s.FinishTurn(ctx, "telegram", "42", "nope", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishTurn of an unknown message: %v", err)
	}
	if _, _, err := s.BeginTurn(ctx, out); !errors.Is(err, ErrInvalid) {
		t.Errorf("BeginTurn with an outbound record: %v", err)
	}
	if err := s.ReplySent(ctx, "7", 0, in, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReplySent with an inbound record: %v", err)
	}
	anon := Record{Time: testTime, Platform: "webchat", ChatID: "w", Direction: Inbound}
	for range 2 {
		if _, existed, err := s.BeginTurn(ctx, anon); err != nil || existed {
			t.Fatalf("message without id: %v %v", existed, err)
		}
	}
	if recs, _ := s.RecentMessages(ctx, "webchat", "w", 10); len(recs) != 2 {
		t.Errorf("messages without an id are each logged: %d", len(recs))
	}
	if err := s.FinishTurn(ctx, "webchat", "w", "", nil); err != nil {
		t.Errorf("FinishTurn without an id: %v", err)
	}
}

// TestTurnWritesCarryTheInboundRecord: the inbound record's update (photo hash, error) rides in
// the transaction of the reply attempt or of the turn's end, and the last reply's record finishes
// the turn; a failing part (unknown turn, bad record) leaves every part unwritten.
func TestTurnWritesCarryTheInboundRecord(t *testing.T) {
	tests := []struct {
		name      string
		msgID     string
		write     func(s *Store, in *Record) error
		wantErr   error
		wantHash  string // the inbound record's photo hash afterwards
		wantDone  bool
		wantSent  int
		wantTried int
		wantLog   int // records in the chat's log
	}{
		{"attempt with inbound", "7", func(s *Store, in *Record) error {
			return s.AttemptReply(t.Context(), "telegram", "42", "7", 0, in)
		}, nil, "abc", false, 0, 1, 1},
		{"finish with inbound", "7", func(s *Store, in *Record) error {
			return s.FinishTurn(t.Context(), "telegram", "42", "7", in)
		}, nil, "abc", true, 0, 0, 1},
		{"finish without an id updates the record", "", func(s *Store, in *Record) error {
			return s.FinishTurn(t.Context(), "telegram", "42", "", in)
		}, nil, "abc", false, 0, 0, 1},
		{"last reply sent finishes", "7", func(s *Store, in *Record) error {
			if err := s.AttemptReply(t.Context(), "telegram", "42", "7", 0, in); err != nil {
				return err
			}
			out := Record{Time: testTime, Platform: "telegram", ChatID: "42", Direction: Outbound, ReplyTo: "7", Text: "answer"}
			return s.ReplySent(t.Context(), "7", 0, out, true)
		}, nil, "abc", true, 1, 1, 2},
		{"unknown turn writes no inbound", "7", func(s *Store, in *Record) error {
			return s.AttemptReply(t.Context(), "telegram", "42", "8", 0, in)
		}, ErrNotFound, "", false, 0, 0, 1},
		{"bad inbound writes no attempt", "7", func(s *Store, in *Record) error {
			bad := *in
			bad.Platform = ""
			return s.AttemptReply(t.Context(), "telegram", "42", "7", 0, &bad)
		}, ErrInvalid, "", false, 0, 0, 1},
		{"inbound of a record not stored", "7", func(s *Store, in *Record) error {
			gone := *in
			gone.Seq = 99
			return s.FinishTurn(t.Context(), "telegram", "42", "7", &gone)
		}, ErrNotFound, "", false, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, "")
			in := Record{Time: testTime, Platform: "telegram", ChatID: "42", Direction: Inbound, MessageID: tt.msgID, Text: "photo"}
			tu, _, err := s.BeginTurn(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			in.Seq, in.PhotoHash = tu.Seq, "abc"
			if err := tt.write(s, &in); !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			recs, err := s.RecentMessages(t.Context(), "telegram", "42", 10)
			if err != nil || len(recs) != tt.wantLog || recs[0].PhotoHash != tt.wantHash {
				t.Fatalf("log %+v %v; want %d records, inbound photo hash %q", recs, err, tt.wantLog, tt.wantHash)
			}
			if tt.msgID == "" {
				return
			}
			in.PhotoHash = ""
			got, _, err := s.BeginTurn(t.Context(), in)
			if err != nil || got.Done != tt.wantDone || got.Sent != tt.wantSent || got.Attempted != tt.wantTried {
				t.Errorf("turn %+v %v; want done %v sent %d attempted %d", got, err, tt.wantDone, tt.wantSent, tt.wantTried)
			}
		})
	}
}

// TestRecordInbound: the chat, the sender and the turn in one call; a second delivery changes
// nothing in the log.
func TestRecordInbound(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	r := Record{Time: testTime, Platform: "telegram", ChatID: "-5", Direction: Inbound, SenderID: "7", MessageID: "1", Text: "/help"}
	chat := &Chat{Platform: "telegram", ID: "-5", Kind: "group", Title: "Growers"}
	user := &User{Platform: "telegram", ID: "7", Name: "Juma", LangHint: "sw"}
	in, err := s.RecordInbound(ctx, r, chat, user)
	if err != nil || in.Existed || in.Turn.Seq != 1 || in.Chat.Title != "Growers" || in.User.LangHint != "sw" || !in.Chat.FirstSeen.Equal(testTime) {
		t.Fatalf("RecordInbound = %+v, %v", in, err)
	}
	if err := s.SetChatLanguage(ctx, "telegram", "-5", "sw"); err != nil {
		t.Fatal(err)
	}
	again, err := s.RecordInbound(ctx, r, chat, user)
	if err != nil || !again.Existed || again.Turn.Seq != 1 || again.Chat.Language != "sw" {
		t.Fatalf("second delivery = %+v, %v", again, err)
	}
	if recs, _ := s.RecentMessages(ctx, "telegram", "-5", 10); len(recs) != 1 {
		t.Errorf("%d records after a second delivery, want 1", len(recs))
	}
	if _, err := s.RecordInbound(ctx, r, &Chat{Platform: "telegram"}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("chat without id: %v", err)
	}
}

// TestBeginWithFirstStep: BeginReply and BeginDone write the message, the chat, the sender and
// the turn's first step in one transaction, and write nothing when the turn exists already.
func TestBeginWithFirstStep(t *testing.T) {
	for _, tc := range []struct {
		name          string
		begin         func(s *Store, r Record, c *Chat, u *User) (Arrival, error)
		wantAttempted int
		wantDone      bool
	}{
		{"reply", func(s *Store, r Record, c *Chat, u *User) (Arrival, error) {
			return s.BeginReply(t.Context(), r, c, u, 0)
		}, 1, false},
		{"second reply", func(s *Store, r Record, c *Chat, u *User) (Arrival, error) {
			return s.BeginReply(t.Context(), r, c, u, 1)
		}, 2, false},
		{"no reply", func(s *Store, r Record, c *Chat, u *User) (Arrival, error) {
			return s.BeginDone(t.Context(), r, c, u)
		}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, "")
			ctx := t.Context()
			in := Record{Time: testTime, Platform: "telegram", ChatID: "42", Direction: Inbound, MessageID: "7", Text: "hi", PhotoHash: "ab"}
			if _, err := s.GetTurn(ctx, "telegram", "42", "7"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetTurn before: %v, want ErrNotFound", err)
			}
			chat := &Chat{Platform: "telegram", ID: "42", Kind: "private"}
			user := &User{Platform: "telegram", ID: "9", Name: "Amina"}
			a, err := tc.begin(s, in, chat, user)
			if err != nil || a.Existed || a.Turn.Seq != 1 || a.Turn.Attempted != tc.wantAttempted || a.Turn.Done != tc.wantDone {
				t.Fatalf("begin = %+v %v", a, err)
			}
			got, err := s.GetTurn(ctx, "telegram", "42", "7")
			if err != nil || got != a.Turn {
				t.Fatalf("GetTurn = %+v %v, want %+v", got, err, a.Turn)
			}
			if u, err := s.GetUser(ctx, "telegram", "9"); err != nil || u.Name != "Amina" {
				t.Errorf("sender %+v %v, want stored with the message", u, err)
			}
			if _, err := s.GetChat(ctx, "telegram", "42"); err != nil {
				t.Errorf("chat not stored with the message: %v", err)
			}
			again, err := tc.begin(s, in, chat, user)
			if err != nil || !again.Existed || again.Turn != a.Turn {
				t.Fatalf("begin again = %+v %v, want the existing turn untouched", again, err)
			}
			recs, err := s.RecentMessages(ctx, "telegram", "42", 10)
			if err != nil || len(recs) != 1 || recs[0].PhotoHash != "ab" {
				t.Fatalf("log %+v %v, want the one inbound record", recs, err)
			}
		})
	}
}
