package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestTouchChat(t *testing.T) {
	t0, t1, t2 := testTime, testTime.Add(time.Hour), testTime.Add(2*time.Hour)
	s := newTestStore(t, "")
	// Steps run in order against the same chat.
	steps := []struct {
		name    string
		in      Chat
		seen    time.Time
		setLang string // applied with SetChatLanguage after the touch, if set
		want    Chat
	}{
		{
			name: "new chat",
			in:   Chat{Platform: "telegram", ID: "-100", Kind: "group", Title: "Growers"},
			seen: t1,
			want: Chat{Platform: "telegram", ID: "-100", Kind: "group", Title: "Growers", FirstSeen: t1, LastSeen: t1},
		},
		{
			name:    "touch keeps first seen, updates title",
			in:      Chat{Platform: "telegram", ID: "-100", Title: "Tomato growers"},
			seen:    t2,
			setLang: "sw",
			want:    Chat{Platform: "telegram", ID: "-100", Kind: "group", Title: "Tomato growers", FirstSeen: t1, LastSeen: t2},
		},
		{
			name: "touch keeps language, ignores empty kind and title",
			in:   Chat{Platform: "telegram", ID: "-100", Language: "en"},
			seen: t2,
			want: Chat{Platform: "telegram", ID: "-100", Kind: "group", Title: "Tomato growers", Language: "sw", FirstSeen: t1, LastSeen: t2},
		},
		{
			name: "late touch does not move last seen back",
			in:   Chat{Platform: "telegram", ID: "-100", Kind: "private"},
			seen: t0,
			want: Chat{Platform: "telegram", ID: "-100", Kind: "private", Title: "Tomato growers", Language: "sw", FirstSeen: t1, LastSeen: t2},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := s.TouchChat(t.Context(), st.in, st.seen)
			if err != nil {
				t.Fatal(err)
			}
			if st.setLang != "" {
				if err := s.SetChatLanguage(t.Context(), st.in.Platform, st.in.ID, st.setLang); err != nil {
					t.Fatal(err)
				}
				st.want.Language = st.setLang
				got.Language = st.setLang
			}
			if got != st.want {
				t.Errorf("TouchChat = %+v, want %+v", got, st.want)
			}
			stored, err := s.GetChat(t.Context(), st.in.Platform, st.in.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored != st.want {
				t.Errorf("GetChat = %+v, want %+v", stored, st.want)
			}
		})
	}
	// Another platform with the same id is another chat.
	if _, err := s.GetChat(t.Context(), "whatsapp", "-100"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetChat on another platform: %v, want ErrNotFound", err)
	}
}

func TestTouchChatNewWithLanguage(t *testing.T) {
	s := newTestStore(t, "")
	got, err := s.TouchChat(t.Context(), Chat{Platform: "webchat", ID: "s1", Kind: "private", Language: "hi"}, testTime)
	if err != nil {
		t.Fatal(err)
	}
	if got.Language != "hi" {
		t.Errorf("new chat Language = %q, want hi", got.Language)
	}
}

func TestTouchUser(t *testing.T) {
	t1, t2 := testTime, testTime.Add(time.Minute)
	s := newTestStore(t, "")
	steps := []struct {
		name    string
		in      User
		seen    time.Time
		setLang string
		want    User
	}{
		{
			name: "new user",
			in:   User{Platform: "whatsapp", ID: "254700000001", Name: "Wanjiru", LangHint: "sw"},
			seen: t1,
			want: User{Platform: "whatsapp", ID: "254700000001", Name: "Wanjiru", LangHint: "sw", FirstSeen: t1, LastSeen: t1},
		},
		{
			name:    "touch updates name and hint",
			in:      User{Platform: "whatsapp", ID: "254700000001", Name: "Wanjiru K.", LangHint: "en"},
			seen:    t2,
			setLang: "sw",
			want:    User{Platform: "whatsapp", ID: "254700000001", Name: "Wanjiru K.", LangHint: "en", FirstSeen: t1, LastSeen: t2},
		},
		{
			name: "touch keeps language and ignores empty fields",
			in:   User{Platform: "whatsapp", ID: "254700000001", Language: "fr"},
			seen: t2,
			want: User{Platform: "whatsapp", ID: "254700000001", Name: "Wanjiru K.", LangHint: "en", Language: "sw", FirstSeen: t1, LastSeen: t2},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := s.TouchUser(t.Context(), st.in, st.seen)
			if err != nil {
				t.Fatal(err)
			}
			if st.setLang != "" {
				if err := s.SetUserLanguage(t.Context(), st.in.Platform, st.in.ID, st.setLang); err != nil {
					t.Fatal(err)
				}
				st.want.Language = st.setLang
				got.Language = st.setLang
			}
			if got != st.want {
				t.Errorf("TouchUser = %+v, want %+v", got, st.want)
			}
			stored, err := s.GetUser(t.Context(), st.in.Platform, st.in.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored != st.want {
				t.Errorf("GetUser = %+v, want %+v", stored, st.want)
			}
		})
	}
}

func TestTouchNormalizesTime(t *testing.T) {
	s := newTestStore(t, "")
	seen := time.Now().In(time.FixedZone("EAT", 3*3600)) // carries a monotonic reading and a zone
	got, err := s.TouchChat(t.Context(), Chat{Platform: "telegram", ID: "1"}, seen)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetChat(t.Context(), "telegram", "1")
	if err != nil {
		t.Fatal(err)
	}
	if got != stored {
		t.Errorf("TouchChat returned %+v, GetChat %+v", got, stored)
	}
	if !got.LastSeen.Equal(seen) {
		t.Errorf("LastSeen = %v, want %v", got.LastSeen, seen)
	}
}

func TestLanguageOfUnknown(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"GetChat", func() error { _, err := s.GetChat(ctx, "telegram", "1"); return err }},
		{"GetUser", func() error { _, err := s.GetUser(ctx, "telegram", "1"); return err }},
		{"SetChatLanguage", func() error { return s.SetChatLanguage(ctx, "telegram", "1", "fr") }},
		{"SetUserLanguage", func() error { return s.SetUserLanguage(ctx, "telegram", "1", "fr") }},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of an unknown record: %v, want ErrNotFound", tt.name, err)
		}
	}
	// Setting the language did not create the records.
	if _, err := s.GetChat(ctx, "telegram", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetChatLanguage created a chat: %v", err)
	}
}

func TestClearLanguage(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	if _, err := s.TouchUser(ctx, User{Platform: "telegram", ID: "1"}, testTime); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"fr", ""} {
		if err := s.SetUserLanguage(ctx, "telegram", "1", lang); err != nil {
			t.Fatal(err)
		}
		u, err := s.GetUser(ctx, "telegram", "1")
		if err != nil {
			t.Fatal(err)
		}
		if u.Language != lang {
			t.Errorf("Language = %q, want %q", u.Language, lang)
		}
	}
}

// TestMigrateChat: a Telegram group upgraded to a supergroup continues under a new chat id. The
// new chat takes the group's language (unless one was chosen there), kind, title and first-seen
// time; both chats and both summaries name the other; the message logs stay where they are.
func TestMigrateChat(t *testing.T) {
	t0, t1, t2 := testTime, testTime.Add(time.Hour), testTime.Add(2*time.Hour)
	const from, to = "-4001", "-1004001"
	// group records a message from a group chat and sets its language if lang is not empty.
	group := func(t *testing.T, s *Store, id, title, lang string, seen time.Time) {
		t.Helper()
		r := Record{Time: seen, Platform: "telegram", ChatID: id, Direction: Inbound, SenderID: "7", MessageID: "1", Text: "/help"}
		if _, err := s.RecordInbound(t.Context(), r, &Chat{Platform: "telegram", ID: id, Kind: "group", Title: title}, nil); err != nil {
			t.Fatal(err)
		}
		if lang != "" {
			if err := s.SetChatLanguage(t.Context(), "telegram", id, lang); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *Store)
		times   int  // MigrateChat calls (a repeated notice, or both sides' notices)
		want    Chat // the new chat
		logs    int  // messages in the new chat's log
		wantErr error
	}{
		{
			name:  "language carried over",
			setup: func(t *testing.T, s *Store) { group(t, s, from, "Growers", "sw", t0) },
			times: 1,
			want: Chat{Platform: "telegram", ID: to, Kind: "group", Title: "Growers", Language: "sw",
				FirstSeen: t0, LastSeen: t2, MovedFrom: from},
		},
		{
			name: "new chat keeps the language chosen there",
			setup: func(t *testing.T, s *Store) {
				group(t, s, from, "Growers", "sw", t0)
				group(t, s, to, "Growers (supergroup)", "fr", t1)
			},
			times: 1,
			want: Chat{Platform: "telegram", ID: to, Kind: "group", Title: "Growers (supergroup)", Language: "fr",
				FirstSeen: t0, LastSeen: t2, MovedFrom: from},
			logs: 1,
		},
		{
			name: "new chat seen before without a language takes the group's",
			setup: func(t *testing.T, s *Store) {
				group(t, s, from, "Growers", "ha", t0)
				group(t, s, to, "", "", t1)
			},
			times: 1,
			want: Chat{Platform: "telegram", ID: to, Kind: "group", Title: "Growers", Language: "ha",
				FirstSeen: t0, LastSeen: t2, MovedFrom: from},
			logs: 1,
		},
		{
			name:  "repeated migration is idempotent",
			setup: func(t *testing.T, s *Store) { group(t, s, from, "Growers", "sw", t0) },
			times: 3,
			want: Chat{Platform: "telegram", ID: to, Kind: "group", Title: "Growers", Language: "sw",
				FirstSeen: t0, LastSeen: t2, MovedFrom: from},
		},
		{
			name:    "unknown old chat",
			setup:   func(*testing.T, *Store) {},
			times:   1,
			wantErr: ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, "")
			ctx := t.Context()
			tt.setup(t, s)
			var first Summary
			for i := range tt.times {
				got, err := s.MigrateChat(ctx, "telegram", from, to, t2)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("MigrateChat: %v, want %v", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("MigrateChat #%d: %v", i+1, err)
				}
				if got != tt.want {
					t.Errorf("MigrateChat #%d = %+v, want %+v", i+1, got, tt.want)
				}
				sum, err := s.GetSummary(ctx, "telegram", to)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = sum
				} else if !reflect.DeepEqual(sum, first) {
					t.Errorf("summary after migration #%d = %+v, after the first %+v", i+1, sum, first)
				}
			}
			page, err := s.ListConversations(ctx, ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != nil {
				// Nothing was written.
				if _, err := s.GetChat(ctx, "telegram", to); !errors.Is(err, ErrNotFound) {
					t.Errorf("GetChat of the new chat: %v, want ErrNotFound", err)
				}
				if len(page.Items) != 0 {
					t.Errorf("conversations %+v, want none", page.Items)
				}
				return
			}
			stored, err := s.GetChat(ctx, "telegram", to)
			if err != nil || stored != tt.want {
				t.Errorf("GetChat(new) = %+v, %v; want %+v", stored, err, tt.want)
			}
			old, err := s.GetChat(ctx, "telegram", from)
			if err != nil || old.MovedTo != to || old.MovedFrom != "" || old.Language == "" {
				t.Errorf("GetChat(old) = %+v, %v; want MovedTo %s and its language kept", old, err, to)
			}
			// Each conversation is listed once (no stale index entries), each naming the other.
			if len(page.Items) != 2 {
				t.Fatalf("%d conversations listed, want 2: %+v", len(page.Items), page.Items)
			}
			for _, sum := range page.Items {
				switch sum.ChatID {
				case from:
					if sum.MovedTo != to || sum.MovedFrom != "" || sum.Messages != 1 {
						t.Errorf("old summary %+v, want MovedTo %s and its 1 message", sum, to)
					}
				case to:
					if sum.MovedFrom != from || sum.MovedTo != "" || sum.Messages != tt.logs || sum.Kind != "group" || sum.Title != tt.want.Title {
						t.Errorf("new summary %+v, want MovedFrom %s, %d messages, the group's kind and title", sum, from, tt.logs)
					}
				}
			}
			// The logs are not copied.
			for id, n := range map[string]int{from: 1, to: tt.logs} {
				recs, err := s.Messages(ctx, "telegram", id, 0, 10)
				if err != nil || len(recs) != n {
					t.Errorf("chat %s has %d messages (%v), want %d", id, len(recs), err, n)
				}
			}
		})
	}
}

// TestMigrateUser: a WhatsApp farmer known only by a LID is later seen with their phone number.
// The user and their private chat continue under the phone-number id, with the language chosen
// under the LID, in one transaction; groups keep their ids.
func TestMigrateUser(t *testing.T) {
	t0, t1, t2 := testTime, testTime.Add(time.Hour), testTime.Add(2*time.Hour)
	const (
		from  = "222222222222222@lid"
		to    = "2348031234567@s.whatsapp.net"
		group = "120363000000000001@g.us"
	)
	// write records a message from user id in chat (a private chat when chat is id) and sets
	// the user's language if lang is not empty.
	write := func(t *testing.T, s *Store, chat, id, name, hint, lang string, seen time.Time) {
		t.Helper()
		kind := "private"
		if chat != id {
			kind = "group"
		}
		r := Record{Time: seen, Platform: "whatsapp", ChatID: chat, Direction: Inbound, SenderID: id, MessageID: id + "@" + chat, Text: "/help"}
		if _, err := s.RecordInbound(t.Context(), r, &Chat{Platform: "whatsapp", ID: chat, Kind: kind},
			&User{Platform: "whatsapp", ID: id, Name: name, LangHint: hint}); err != nil {
			t.Fatal(err)
		}
		if lang != "" {
			if err := s.SetUserLanguage(t.Context(), "whatsapp", id, lang); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, s *Store)
		times    int  // MigrateUser calls
		want     User // the new user
		wantChat bool // the private chat moved too
		wantErr  error
	}{
		{
			name:     "language carried over",
			setup:    func(t *testing.T, s *Store) { write(t, s, from, from, "Amina", "", "sw", t0) },
			times:    1,
			want:     User{Platform: "whatsapp", ID: to, Name: "Amina", Language: "sw", FirstSeen: t0, LastSeen: t2, MovedFrom: from},
			wantChat: true,
		},
		{
			name: "new id already has a language",
			setup: func(t *testing.T, s *Store) {
				write(t, s, from, from, "Amina", "", "sw", t0)
				write(t, s, to, to, "Amina B.", "+2348031234567", "fr", t1)
			},
			times: 1,
			want: User{Platform: "whatsapp", ID: to, Name: "Amina B.", Language: "fr", LangHint: "+2348031234567",
				FirstSeen: t0, LastSeen: t2, MovedFrom: from},
			wantChat: true,
		},
		{
			name: "new id seen without a language takes the old one's",
			setup: func(t *testing.T, s *Store) {
				write(t, s, from, from, "Amina", "", "ha", t0)
				write(t, s, to, to, "", "+2348031234567", "", t1)
			},
			times: 1,
			want: User{Platform: "whatsapp", ID: to, Name: "Amina", Language: "ha", LangHint: "+2348031234567",
				FirstSeen: t0, LastSeen: t2, MovedFrom: from},
			wantChat: true,
		},
		{
			name:     "repeated migration is idempotent",
			setup:    func(t *testing.T, s *Store) { write(t, s, from, from, "Amina", "", "sw", t0) },
			times:    3,
			want:     User{Platform: "whatsapp", ID: to, Name: "Amina", Language: "sw", FirstSeen: t0, LastSeen: t2, MovedFrom: from},
			wantChat: true,
		},
		{
			name:  "seen in a group only: the group keeps its id",
			setup: func(t *testing.T, s *Store) { write(t, s, group, from, "Amina", "", "sw", t0) },
			times: 1,
			want:  User{Platform: "whatsapp", ID: to, Name: "Amina", Language: "sw", FirstSeen: t0, LastSeen: t2, MovedFrom: from},
		},
		{
			name:    "unknown old user",
			setup:   func(*testing.T, *Store) {},
			times:   1,
			wantErr: ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, "")
			ctx := t.Context()
			tt.setup(t, s)
			before, err := s.ListConversations(ctx, ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var first Page
			for i := range tt.times {
				got, err := s.MigrateUser(ctx, "whatsapp", from, to, t2)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("MigrateUser: %v, want %v", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("MigrateUser #%d: %v", i+1, err)
				}
				if got != tt.want {
					t.Errorf("MigrateUser #%d = %+v, want %+v", i+1, got, tt.want)
				}
				page, err := s.ListConversations(ctx, ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = page
				} else if !reflect.DeepEqual(page, first) {
					t.Errorf("conversations after migration #%d = %+v, after the first %+v", i+1, page, first)
				}
			}
			after, err := s.ListConversations(ctx, ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != nil {
				// Nothing was written.
				if _, err := s.GetUser(ctx, "whatsapp", to); !errors.Is(err, ErrNotFound) {
					t.Errorf("GetUser of the new id: %v, want ErrNotFound", err)
				}
				if !reflect.DeepEqual(after, before) {
					t.Errorf("conversations %+v, want %+v", after, before)
				}
				return
			}
			if stored, err := s.GetUser(ctx, "whatsapp", to); err != nil || stored != tt.want {
				t.Errorf("GetUser(new) = %+v, %v; want %+v", stored, err, tt.want)
			}
			if old, err := s.GetUser(ctx, "whatsapp", from); err != nil || old.MovedTo != to || old.MovedFrom != "" || old.Language == "" {
				t.Errorf("GetUser(old) = %+v, %v; want MovedTo %s and its language kept", old, err, to)
			}
			// The private chat moved with its user; a group never does.
			chat, err := s.GetChat(ctx, "whatsapp", to)
			switch {
			case tt.wantChat && (err != nil || chat.MovedFrom != from || chat.Kind != "private"):
				t.Errorf("GetChat(new) = %+v, %v; want the private chat moved from %s", chat, err, from)
			case !tt.wantChat && !errors.Is(err, ErrNotFound):
				t.Errorf("GetChat(new) = %+v, %v; want ErrNotFound: there was no private chat", chat, err)
			}
			if g, err := s.GetChat(ctx, "whatsapp", group); err == nil && (g.MovedTo != "" || g.MovedFrom != "") {
				t.Errorf("group chat %+v moved", g)
			}
			summaries := map[string]Summary{}
			for _, sum := range after.Items {
				if _, dup := summaries[sum.ChatID]; dup {
					t.Errorf("conversation %s listed twice", sum.ChatID)
				}
				summaries[sum.ChatID] = sum
			}
			if !tt.wantChat {
				if !reflect.DeepEqual(after, before) {
					t.Errorf("conversations %+v, want them untouched %+v", after, before)
				}
				return
			}
			if old := summaries[from]; old.MovedTo != to || old.Messages != 1 {
				t.Errorf("LID conversation %+v, want MovedTo %s and its message", old, to)
			}
			if moved := summaries[to]; moved.MovedFrom != from || moved.Kind != "private" {
				t.Errorf("phone-number conversation %+v, want MovedFrom %s", moved, from)
			}
		})
	}
}

// TestLanguageFollowsMoves: a language chosen in a chat (or by a user id) that has moved is set
// where it moved too, along a chain of moves and once around a loop; one chosen in the new place
// stays there.
func TestLanguageFollowsMoves(t *testing.T) {
	tests := []struct {
		name  string
		ids   []string    // touched, in order
		moves [][2]string // MigrateChat / MigrateUser, in order
		set   string      // the id the language is chosen for
		want  map[string]string
	}{
		{"no move", []string{"a", "b"}, nil, "a", map[string]string{"a": "sw", "b": ""}},
		{"moved", []string{"a"}, [][2]string{{"a", "b"}}, "a", map[string]string{"a": "sw", "b": "sw"}},
		{"chosen in the new place only", []string{"a"}, [][2]string{{"a", "b"}}, "b", map[string]string{"a": "", "b": "sw"}},
		{"moved twice", []string{"a"}, [][2]string{{"a", "b"}, {"b", "c"}}, "a", map[string]string{"a": "sw", "b": "sw", "c": "sw"}},
		{"moved back", []string{"a"}, [][2]string{{"a", "b"}, {"b", "a"}}, "b", map[string]string{"a": "sw", "b": "sw"}},
	}
	for _, kind := range []string{"chat", "user"} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				s := newTestStore(t, "")
				ctx := t.Context()
				for _, id := range tt.ids {
					var err error
					if kind == "chat" {
						_, err = s.TouchChat(ctx, Chat{Platform: "telegram", ID: id, Kind: "group"}, testTime)
					} else {
						_, err = s.TouchUser(ctx, User{Platform: "telegram", ID: id}, testTime)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				for _, m := range tt.moves {
					var err error
					if kind == "chat" {
						_, err = s.MigrateChat(ctx, "telegram", m[0], m[1], testTime)
					} else {
						_, err = s.MigrateUser(ctx, "telegram", m[0], m[1], testTime)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				set, get := s.SetChatLanguage, func(id string) (string, error) {
					c, err := s.GetChat(ctx, "telegram", id)
					return c.Language, err
				}
				if kind == "user" {
					set, get = s.SetUserLanguage, func(id string) (string, error) {
						u, err := s.GetUser(ctx, "telegram", id)
						return u.Language, err
					}
				}
				if err := set(ctx, "telegram", tt.set, "sw"); err != nil {
					t.Fatal(err)
				}
				for id, want := range tt.want {
					if got, err := get(id); err != nil || got != want {
						t.Errorf("%s %s: language %q, %v; want %q", kind, id, got, err, want)
					}
				}
			})
		}
	}
}
