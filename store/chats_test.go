package store

import (
	"errors"
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
