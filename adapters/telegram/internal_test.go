package telegram

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
)

func TestSplitText(t *testing.T) {
	long := strings.Repeat("a", 30)
	tests := []struct {
		name       string
		in         string
		limit      int
		head, rest string
	}{
		{"fits", "short text", 20, "short text", ""},
		{"exactly the limit", "0123456789", 10, "0123456789", ""},
		{"at the last line break", "line one\nline two\nline three", 20, "line one\nline two", "line three"},
		{"blank lines dropped at the cut", "para one\n\npara two is long", 12, "para one", "para two is long"},
		{"at a space without line breaks", "one two three four", 12, "one two", "three four"},
		{"hard cut in one long word", long, 10, long[:10], long[10:]},
		{"never inside a character", "ééééé", 3, "ééé", "éé"},
		// Telegram counts UTF-16 units: an emoji outside the BMP is two.
		{"emoji count double", "🌱🌱🌱", 4, "🌱🌱", "🌱"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, rest := splitText(tt.in, tt.limit)
			if head != tt.head || rest != tt.rest {
				t.Errorf("splitText(%q, %d) = %q, %q; want %q, %q", tt.in, tt.limit, head, rest, tt.head, tt.rest)
			}
			if utf16Len(head) > tt.limit || !utf8.ValidString(head) || !utf8.ValidString(rest) {
				t.Errorf("head %q over the limit or broken", head)
			}
		})
	}
}

// TestSplitTextLoses nothing: the parts joined are the text without the blanks at the cuts.
func TestSplitTextKeepsEveryWord(t *testing.T) {
	text := strings.Repeat("Late blight spreads fast in wet weather.\n", 200) + strings.Repeat("x", 5000)
	var parts []string
	for rest := text; rest != ""; {
		var p string
		p, rest = splitText(rest, maxText)
		if utf16Len(p) > maxText || p == "" {
			t.Fatalf("part of %d units", utf16Len(p))
		}
		parts = append(parts, p)
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
	if squash(strings.Join(parts, "")) != squash(text) {
		t.Error("the parts do not add up to the text")
	}
}

func TestChoosePhoto(t *testing.T) {
	sizes := []tgbotapi.PhotoSize{
		{FileID: "s", Width: 90, Height: 68}, {FileID: "m", Width: 320, Height: 240},
		{FileID: "x", Width: 800, Height: 600}, {FileID: "y", Width: 1280, Height: 960},
	}
	portrait := []tgbotapi.PhotoSize{{FileID: "p1", Width: 240, Height: 320}, {FileID: "p2", Width: 600, Height: 800}}
	tests := []struct {
		name    string
		sizes   []tgbotapi.PhotoSize
		minSide int
		want    string
	}{
		{"smallest whose shorter side is enough", sizes, 320, "x"},
		{"exactly the minimum", sizes, 240, "m"},
		{"none large enough: the largest", sizes, 2000, "y"},
		{"portrait", portrait, 320, "p2"},
		{"order does not matter", []tgbotapi.PhotoSize{sizes[3], sizes[0], sizes[2], sizes[1]}, 320, "x"},
		{"one size", sizes[:1], 320, "s"},
	}
	for _, tt := range tests {
		if got := choosePhoto(tt.sizes, tt.minSide); got.FileID != tt.want {
			t.Errorf("%s: chose %s, want %s", tt.name, got.FileID, tt.want)
		}
	}
}

func testAdapter(t *testing.T, opts Options) *Adapter {
	t.Helper()
	if opts.Token == "" {
		opts.Token = "42:secret-token-for-unit-tests"
	}
	opts.Chats = nopChats{}
	a, err := New(slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	a.self.Store(&tgbotapi.User{ID: 42, IsBot: true, UserName: "CropShieldBot"})
	return a
}

type nopChats struct{}

func (nopChats) MoveChat(context.Context, bot.Platform, string, string, time.Time) (bool, string, error) {
	return false, "", nil
}

func TestWanted(t *testing.T) {
	private := &tgbotapi.Chat{ID: 1, Type: "private"}
	group := &tgbotapi.Chat{ID: -5, Type: "group"}
	super := &tgbotapi.Chat{ID: -1005, Type: "supergroup"}
	channel := &tgbotapi.Chat{ID: -1009, Type: "channel"}
	photo := []tgbotapi.PhotoSize{{FileID: "f", Width: 800, Height: 600}}
	pdf := &tgbotapi.Document{FileID: "d", MimeType: "application/pdf"}
	webp := &tgbotapi.Document{FileID: "d", MimeType: "image/webp"}
	fromBot := &tgbotapi.Message{MessageID: 3, From: &tgbotapi.User{ID: 42, IsBot: true}}
	fromOther := &tgbotapi.Message{MessageID: 3, From: &tgbotapi.User{ID: 7}}
	tests := []struct {
		name string
		all  bool
		m    *tgbotapi.Message
		want bool
	}{
		{"no message (an edit, a callback)", false, nil, false},
		{"private text", false, &tgbotapi.Message{Chat: private, Text: "hello"}, true},
		{"private photo", false, &tgbotapi.Message{Chat: private, Photo: photo}, true},
		{"private sticker", false, &tgbotapi.Message{Chat: private, Sticker: &tgbotapi.Sticker{}}, true},
		{"channel post", false, &tgbotapi.Message{Chat: channel, Photo: photo, Caption: "/diagnose"}, false},
		{"group photo", false, &tgbotapi.Message{Chat: group, Photo: photo}, false},
		{"group photo, all", true, &tgbotapi.Message{Chat: group, Photo: photo}, true},
		{"group /diagnose", false, &tgbotapi.Message{Chat: super, Photo: photo, Caption: "/diagnose"}, true},
		{"group /Diagnose@CropShieldBot", false, &tgbotapi.Message{Chat: super, Photo: photo, Caption: "/Diagnose@cropshieldbot"}, true},
		{"group /diagnose@Other", false, &tgbotapi.Message{Chat: super, Photo: photo, Caption: "/diagnose@OtherBot"}, false},
		{"group /diagnosed", false, &tgbotapi.Message{Chat: super, Photo: photo, Caption: "/diagnosed"}, false},
		{"group mention", false, &tgbotapi.Message{Chat: super, Photo: photo, Caption: "hi @CropShieldBot."}, true},
		{"group mention of a longer name", false, &tgbotapi.Message{Chat: super, Photo: photo, Caption: "@CropShieldBot_2"}, false},
		{"group reply to the bot", false, &tgbotapi.Message{Chat: super, Photo: photo, ReplyToMessage: fromBot}, true},
		{"group reply to someone", false, &tgbotapi.Message{Chat: super, Photo: photo, ReplyToMessage: fromOther}, false},
		{"group text replying to the bot (an answer)", false, &tgbotapi.Message{Chat: super, Text: "2", ReplyToMessage: fromBot}, true},
		{"group text replying to someone", false, &tgbotapi.Message{Chat: super, Text: "2", ReplyToMessage: fromOther}, false},
		{"group sticker replying to the bot", false, &tgbotapi.Message{Chat: super, Sticker: &tgbotapi.Sticker{}, ReplyToMessage: fromBot}, false},
		{"group image document with mention", false, &tgbotapi.Message{Chat: super, Document: webp, Caption: "@cropshieldbot"}, true},
		{"group pdf with mention", false, &tgbotapi.Message{Chat: super, Document: pdf, Caption: "@cropshieldbot"}, false},
		{"group album part", false, &tgbotapi.Message{Chat: super, Photo: photo, MediaGroupID: "9"}, true},
		{"group command", false, &tgbotapi.Message{Chat: group, Text: "/help"}, true},
		{"group command for the bot", false, &tgbotapi.Message{Chat: group, Text: "/language@CropShieldBot sw"}, true},
		{"group command for another", false, &tgbotapi.Message{Chat: group, Text: "/language@OtherBot sw"}, false},
		{"group chatter", false, &tgbotapi.Message{Chat: group, Text: "rain tomorrow"}, false},
		{"group mention without photo", false, &tgbotapi.Message{Chat: group, Text: "@CropShieldBot hi"}, false},
		{"group path is not a command", false, &tgbotapi.Message{Chat: group, Text: "/ etc"}, false},
		{"group moved to a supergroup", false, &tgbotapi.Message{Chat: group, MigrateToChatID: -1005}, true},
		{"supergroup moved from a group", false, &tgbotapi.Message{Chat: super, MigrateFromChatID: -5}, true},
		{"channel with a migration id", false, &tgbotapi.Message{Chat: channel, MigrateFromChatID: -5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{}
			if tt.all {
				opts.GroupPhotos = GroupPhotosAll
			}
			if got := testAdapter(t, opts).wanted(tt.m); got != tt.want {
				t.Errorf("wanted = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSender(t *testing.T) {
	group := &tgbotapi.Chat{ID: -1005, Type: "supergroup", Title: "Coop"}
	tests := []struct {
		name string
		m    *tgbotapi.Message
		want string // ID|Name|LangHint|IsAdmin
	}{
		{"user", &tgbotapi.Message{Chat: group, From: &tgbotapi.User{ID: 7, FirstName: "Amina", LastName: "Mushi", LanguageCode: "sw"}}, "7|Amina Mushi|sw|false"},
		{"username only", &tgbotapi.Message{Chat: group, From: &tgbotapi.User{ID: 8, UserName: "juma"}}, "8|juma||false"},
		{"anonymous admin", &tgbotapi.Message{Chat: group, SenderChat: group, From: &tgbotapi.User{ID: 1087968824}}, "-1005|Coop||true"},
		{"linked channel", &tgbotapi.Message{Chat: group, SenderChat: &tgbotapi.Chat{ID: -1009, Title: "News"}}, "-1009|News||false"},
	}
	for _, tt := range tests {
		s := sender(tt.m)
		got := strings.Join([]string{s.ID, s.Name, s.LangHint, map[bool]string{true: "true", false: "false"}[s.IsAdmin]}, "|")
		if got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestFlood(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := newFlood(clock)
	if f.pause(1, 3*time.Second) {
		t.Error("one chat's 429 paused the whole bot")
	}
	if !f.paused(1) || f.paused(2) || f.paused(0) {
		t.Error("chat 1 should be paused, chat 2 and the bot not")
	}
	f.pause(2, time.Second)
	if !f.pause(3, 5*time.Second) {
		t.Errorf("%d chats throttled at once should pause the whole bot", floodChatsForBot)
	}
	if !f.paused(4) || !f.until(4).Equal(now.Add(5*time.Second)) {
		t.Errorf("chat 4 may call at %v, want after the bot's pause", f.until(4))
	}
	now = now.Add(6 * time.Second)
	if f.paused(1) || f.paused(4) || f.paused(0) {
		t.Error("pauses outlived their retry_after")
	}
	if !f.pause(0, 2*time.Second) || !f.paused(9) {
		t.Error("a 429 of a bot-wide call pauses every chat")
	}
}

func TestFloodWaitEndsWithContext(t *testing.T) {
	f := newFlood(time.Now)
	f.pause(0, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("wait = %v, want context.Canceled", err)
	}
}

func TestRedact(t *testing.T) {
	const token = "42:secret-token"
	ue := &url.Error{Op: "Post", URL: "https://api.telegram.org/bot" + token + "/getMe", Err: errors.New("connection refused")}
	err := redact(ue, token)
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("redacted error %q", err)
	}
	var got *url.Error
	if !errors.As(err, &got) || strings.Contains(got.URL, "secret-token") {
		t.Errorf("the url.Error in the chain still has the token: %v", got)
	}
	other := errors.New("token " + token + " in a message")
	if r := redact(other, token); strings.Contains(r.Error(), "secret-token") || !errors.Is(r, other) {
		t.Errorf("redact(%v) = %v", other, r)
	}
	if redact(nil, token) != nil {
		t.Error("redact(nil) is not nil")
	}
}

// TestDownload: the file URL is built from the configured endpoint and FilePath; errors hold no
// token; files over 20 MB are too large whether getFile, the header or the body says so.
func TestDownload(t *testing.T) {
	const token = "42:secret-token-for-unit-tests"
	big := int64(MaxDownloadBytes + 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /bot"+token+"/getFile", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id := r.PostForm.Get("file_id")
		switch id {
		case "huge-getfile":
			_, _ = io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: file is too big"}`)
		case "huge-size":
			_, _ = io.WriteString(w, `{"ok":true,"result":{"file_id":"x","file_size":`+strconv.FormatInt(big, 10)+`,"file_path":"photos/huge.jpg"}}`)
		default:
			_, _ = io.WriteString(w, `{"ok":true,"result":{"file_id":"x","file_path":"photos/`+id+`.jpg"}}`)
		}
	})
	mux.HandleFunc("GET /file/bot"+token+"/photos/ok.jpg", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "JPEGDATA")
	})
	mux.HandleFunc("GET /file/bot"+token+"/photos/endless.jpg", func(w http.ResponseWriter, _ *http.Request) {
		chunk := make([]byte, 1<<20)
		for range MaxDownloadBytes/len(chunk) + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := testAdapter(t, Options{Token: token, APIEndpoint: srv.URL + "/", Retries: 1, RetryDelay: time.Millisecond})

	tests := []struct {
		fileID   string
		want     string
		tooLarge bool
	}{
		{fileID: "ok", want: "JPEGDATA"},
		{fileID: "missing"}, // 404 from the file server
		{fileID: "huge-getfile", tooLarge: true},
		{fileID: "huge-size", tooLarge: true},
		{fileID: "endless", tooLarge: true},
	}
	for _, tt := range tests {
		t.Run(tt.fileID, func(t *testing.T) {
			data, err := a.download(context.Background(), tt.fileID, MaxDownloadBytes)
			switch {
			case tt.want != "":
				if err != nil || string(data) != tt.want {
					t.Fatalf("download = %q, %v", data, err)
				}
			case err == nil:
				t.Fatal("download succeeded")
			case strings.Contains(err.Error(), "secret-token"):
				t.Errorf("error holds the token: %v", err)
			case tt.tooLarge != errors.Is(err, inference.ErrTooLarge):
				t.Errorf("error %v, too large %v", err, tt.tooLarge)
			}
		})
	}
}

// TestAPIErrorSentinels: a Bot API refusal wraps ErrAPI, and the one told apart only by its
// description ("file is too big") wraps ErrFileTooBig too, which download turns into a photo too
// large; another 400 does not.
func TestAPIErrorSentinels(t *testing.T) {
	const token = "42:secret-token-for-unit-tests"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /bot"+token+"/getFile", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":false,"error_code":400,"description":"`+r.PostForm.Get("file_id")+`"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := testAdapter(t, Options{Token: token, APIEndpoint: srv.URL + "/", Retries: 1, RetryDelay: time.Millisecond})
	tests := []struct {
		description string
		tooBig      bool
	}{
		{"Bad Request: file is too big", true},
		{"Bad Request: FILE IS TOO BIG", true},
		{"Bad Request: invalid file_id", false},
		{"Bad Request: wrong file identifier/HTTP URL specified", false},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			_, err := a.call(context.Background(), 0, "getFile", retryIdempotent, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
				return api.Request(tgbotapi.FileConfig{FileID: tt.description})
			})
			if !errors.Is(err, ErrAPI) || errors.Is(err, ErrFileTooBig) != tt.tooBig {
				t.Errorf("call = %v: want ErrAPI, ErrFileTooBig %v", err, tt.tooBig)
			}
			_, err = a.download(context.Background(), tt.description, MaxDownloadBytes)
			if errors.Is(err, inference.ErrTooLarge) != tt.tooBig || errors.Is(err, ErrAPI) == tt.tooBig {
				t.Errorf("download = %v: want too large %v (else ErrAPI)", err, tt.tooBig)
			}
		})
	}
}

func TestNewChecksOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no token", Options{Chats: nopChats{}}},
		{"token with a newline", Options{Token: "1:abc\n", Chats: nopChats{}}},
		{"no chats", Options{Token: "1:abc"}},
		{"endpoint not http", Options{Token: "1:abc", Chats: nopChats{}, APIEndpoint: "ftp://x"}},
		{"webhook not absolute", Options{Token: "1:abc", Chats: nopChats{}, WebhookURL: "/hook"}},
		{"group photos", Options{Token: "1:abc", Chats: nopChats{}, GroupPhotos: "some"}},
	}
	for _, tt := range tests {
		if _, err := New(slog.New(slog.DiscardHandler), tt.opts); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tt.name, err)
		}
	}
}

// TestWebhookSecret: the secret_token is a function of the token alone (every replica derives
// the same), differs with the token, is made of the characters Telegram allows in a secret_token
// (1–256 of A-Z a-z 0-9 _ -) and does not contain the token.
func TestWebhookSecret(t *testing.T) {
	const token = "7301234567:AAGz-fakeTokenForTests_k3Y9qLmN0pR"
	s := webhookSecret(token)
	if again := webhookSecret(token); again != s {
		t.Errorf("two derivations differ: %q, %q", s, again)
	}
	if other := webhookSecret("7301234567:AAGz-anotherToken"); other == s {
		t.Error("two tokens give the same secret")
	}
	if len(s) < 32 || len(s) > 256 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		t.Errorf("secret %q: want 32–256 characters of A-Z a-z 0-9 _ -", s)
	}
	if strings.Contains(s, "AAGz") || strings.Contains(s, "7301234567") {
		t.Errorf("secret %q shows the token", s)
	}
}
