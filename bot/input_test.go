package bot_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/store"
)

// pngHeader is a PNG signature and IHDR claiming w x h pixels, with no image data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func animatedGIF(t *testing.T) []byte {
	t.Helper()
	pal := color.Palette{color.Black, color.White}
	frames := []*image.Paletted{image.NewPaletted(image.Rect(0, 0, 8, 8), pal), image.NewPaletted(image.Rect(0, 0, 8, 8), pal)}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: frames, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestBadInputs: each gets a clear reply, the conversation log keeps the message with the reason,
// nothing panics, and the bot keeps answering good photos afterwards.
func TestBadInputs(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	leaf := testenv.LeafJPEG(t, 400, 300, 7)
	huge := append([]byte("\xff\xd8\xff\xe0"), make([]byte, 25<<20)...)
	for _, tc := range []struct {
		name   string
		photo  *bot.Photo
		want   string // in the reply
		reason string // on the inbound record
	}{
		{"text file named .jpg", bytesPhoto([]byte("hello, this is not a photo\n")), "cannot read this file as a photo", "not an image"},
		{"truncated JPEG", bytesPhoto(leaf[:len(leaf)/2]), "damaged or incomplete", "corrupt image"},
		{"zero bytes", bytesPhoto(nil), "arrived empty", "empty"},
		{"PNG header claims 60 megapixels", bytesPhoto(pngHeader(8000, 7500)), "too large (60 megapixels)", "too many pixels"},
		{"animated GIF", bytesPhoto(animatedGIF(t)), "cannot read GIF files", "unsupported format"},
		{"25 MB upload", bytesPhoto(huge), "too big (25 MB)", "too large"},
		{"25 MB announced by the platform", &bot.Photo{Size: 25 << 20, Fetch: func(context.Context) ([]byte, error) {
			t.Error("a photo announced as too large must not be downloaded")
			return nil, nil
		}}, "smaller than 20 MB", "too large"},
		{"download fails", &bot.Photo{Fetch: func(context.Context) ([]byte, error) { return nil, errors.New("connection reset") }},
			"could not download your photo", "download failed"},
		{"fetch panics", &bot.Photo{Fetch: func(context.Context) ([]byte, error) { panic("adapter bug") }},
			"something went wrong on my side", "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chat := "bad-" + strings.ReplaceAll(tc.name, " ", "-")
			r := f.photo(chat, tc.photo)
			if r.Kind != bot.KindError || !strings.Contains(r.Text, tc.want) || r.Image != nil {
				t.Errorf("reply %v, want an error mentioning %q", r, tc.want)
			}
			recs, err := f.store.RecentMessages(context.Background(), "webchat", chat, 10)
			if err != nil || len(recs) != 2 {
				t.Fatalf("log: %+v, %v", recs, err)
			}
			if recs[0].Direction != store.Inbound || recs[0].Error != tc.reason {
				t.Errorf("inbound record error %q, want %q", recs[0].Error, tc.reason)
			}
		})
	}
	if f.inferences() != 0 {
		t.Errorf("bad inputs reached inference %v times", f.inferences())
	}
	if r := f.photo("after", bytesPhoto(leaf)); r.Kind != bot.KindDiagnosis {
		t.Errorf("a good photo after the bad ones: %v", r)
	}
}

func TestCommands(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	chat, me := private("cmd"), bot.Sender{ID: "u1", Name: "Juma", LangHint: "en-KE"}
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"/start", []string{"Hello Juma!", "/help", "/language", "/history"}},
		{"/help", []string{"Photograph ONE leaf"}},
		{"/help@CropShieldBot", []string{"Photograph ONE leaf"}},
		{"/language", []string{"I answer you in English", "/language en - English"}},
		{"/language klingon", []string{`I do not know the language "klingon"`, "/language en - English"}},
		{"/language English", []string{"I will answer in English"}},
		{"/history", []string{"You have not sent me any photos yet"}},
		{"/frobnicate", []string{"I do not know the command /frobnicate"}},
		{"/diagnose", []string{"Please send me a photo of a sick leaf"}},
		{"hello there", []string{"Please send me a photo of a sick leaf"}},
	} {
		t.Run(tc.text, func(t *testing.T) {
			replies := f.send(chat, me, tc.text, nil)
			if len(replies) != 1 {
				t.Fatalf("%d replies: %v", len(replies), replies)
			}
			for _, w := range tc.want {
				if !strings.Contains(replies[0].Text, w) {
					t.Errorf("reply to %q lacks %q:\n%s", tc.text, w, replies[0].Text)
				}
			}
		})
	}
	// /history lists the photos of this chat, newest first.
	f.send(chat, me, "", bytesPhoto(testenv.LeafJPEG(t, 300, 200, 8)))
	f.send(chat, me, "", bytesPhoto([]byte("not a photo")))
	h := f.send(chat, me, "/history", nil)
	if len(h) != 1 || !strings.Contains(h[0].Text, "Your last photos:") || strings.Count(h[0].Text, "\n") != 2 ||
		!strings.Contains(h[0].Text, "could not be read") {
		t.Fatalf("/history: %v", h)
	}
}

func TestGroups(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	group := bot.ChatRef{Platform: bot.Telegram, ID: "-100", Kind: bot.Group, Title: "Nyeri growers"}
	member := bot.Sender{ID: "u1", Name: "Wanjiru"}
	if r := f.send(group, member, "good morning all", nil); len(r) != 0 {
		t.Errorf("chatter in a group must not be answered: %v", r)
	}
	r := f.send(group, member, "/language en", nil)
	if len(r) != 1 || !strings.Contains(r[0].Text, "Only a group admin") {
		t.Fatalf("non-admin /language: %v", r)
	}
	admin := bot.Sender{ID: "u2", Name: "Chair", IsAdmin: true}
	if r := f.send(group, admin, "/language en", nil); len(r) != 1 || !strings.Contains(r[0].Text, "I will answer in English") {
		t.Fatalf("admin /language: %v", r)
	}
	c, err := f.store.GetChat(context.Background(), "telegram", "-100")
	if err != nil || c.Language != "en" || c.Title != "Nyeri growers" {
		t.Fatalf("group record %+v, %v", c, err)
	}
}

func TestLanguageSurvivesReopen(t *testing.T) {
	f := newFixture(t, bot.Config{}, nil)
	me := bot.Sender{ID: "u1", LangHint: "fr"}
	f.send(private("c"), me, "/language en", nil)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	f.store = openStore(t, f.path)
	f.build(bot.Config{}, nil)
	u, err := f.store.GetUser(context.Background(), "webchat", "u1")
	if err != nil || u.Language != "en" || u.LangHint != "fr" {
		t.Fatalf("user after reopen: %+v, %v", u, err)
	}
}

// TestFlood: a chat that floods gets one polite warning, other chats are unaffected, and every
// message is still in the log.
func TestFlood(t *testing.T) {
	f := newFixture(t, bot.Config{Burst: 3, Refill: 1e9 * 3600}, nil)
	me := bot.Sender{ID: "u1"}
	var replies []bot.Reply
	for range 8 {
		replies = append(replies, f.send(private("flood"), me, "/help", nil)...)
	}
	if len(replies) != 4 || !strings.Contains(replies[3].Text, "sending messages very fast") {
		t.Fatalf("%d replies, last %v; want 3 answers and one warning", len(replies), replies[len(replies)-1])
	}
	if r := f.send(private("calm"), bot.Sender{ID: "u2"}, "/help", nil); len(r) != 1 || r[0].Kind != bot.KindCommand {
		t.Errorf("another chat is limited too: %v", r)
	}
	recs, err := f.store.RecentMessages(context.Background(), "webchat", "flood", 100)
	if err != nil {
		t.Fatal(err)
	}
	in := 0
	for _, r := range recs {
		if r.Direction == store.Inbound {
			in++
		}
	}
	if in != 8 {
		t.Errorf("%d inbound records, want all 8", in)
	}
}

func TestFailedSendIsLogged(t *testing.T) {
	f := newFixture(t, bot.Config{}, nil)
	f.out.fail = errors.New("platform down")
	f.send(private("c"), bot.Sender{ID: "u"}, "/help", nil)
	recs, err := f.store.RecentMessages(context.Background(), "webchat", "c", 10)
	if err != nil || len(recs) != 2 || recs[1].Error != "not delivered" {
		t.Fatalf("log: %+v, %v", recs, err)
	}
}
