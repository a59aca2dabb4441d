package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/jpeg"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/store"
)

// wantReply is the exact reply the scripted handler's diagnosis becomes on WhatsApp: the overlay
// as an image message with every field filled and the caption, then the details as text, both
// quoting the farmer's message.
func wantReply(t *testing.T, f *fakeClient, overlay []byte, quoted *waE2E.Message, id string, participant types.JID) []*waE2E.Message {
	t.Helper()
	sum := sha256.Sum256(overlay)
	enc := sha256.Sum256(append([]byte("enc"), overlay...))
	q := proto.Clone(quoted).(*waE2E.Message)
	q.MessageContextInfo = nil
	quote := func() *waE2E.ContextInfo {
		return &waE2E.ContextInfo{StanzaID: proto.String(id), Participant: proto.String(participant.String()), QuotedMessage: proto.Clone(q).(*waE2E.Message)}
	}
	return []*waE2E.Message{
		{ImageMessage: &waE2E.ImageMessage{
			URL: proto.String("https://mmg.example/up1"), DirectPath: proto.String("/v/t62/up1"),
			MediaKey: bytes.Repeat([]byte{1}, 32), FileSHA256: sum[:], FileEncSHA256: enc[:],
			FileLength: proto.Uint64(uint64(len(overlay))), Width: proto.Uint32(200), Height: proto.Uint32(100),
			Mimetype: proto.String("image/jpeg"), Caption: proto.String("Tomato late blight 91%"),
			ContextInfo: quote(),
		}},
		{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("What to do: remove the leaves."), ContextInfo: quote()}},
	}
}

// checkSent compares what was sent with want; image thumbnails are checked for size and then
// left out of the comparison.
func checkSent(t *testing.T, got []sent, to types.JID, want []*waE2E.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("sent %d messages, want %d: %v", len(got), len(want), got)
	}
	for i, s := range got {
		if s.to != to {
			t.Errorf("message %d went to %s, want %s", i, s.to, to)
		}
		m := proto.Clone(s.msg).(*waE2E.Message)
		if im := m.GetImageMessage(); im != nil {
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(im.GetJPEGThumbnail()))
			if err != nil || cfg.Width > thumbSide || cfg.Height > thumbSide || cfg.Width == 0 {
				t.Errorf("message %d thumbnail %dx%d (%v), want a JPEG of at most %d px", i, cfg.Width, cfg.Height, err, thumbSide)
			}
			im.JPEGThumbnail = nil
		}
		if !proto.Equal(m, want[i]) {
			t.Errorf("message %d:\n got %v\nwant %v", i, m, want[i])
		}
	}
}

func TestPrivatePhoto(t *testing.T) {
	for _, tc := range []struct {
		name              string
		chat, sender, alt types.JID
	}{
		{"addressed by phone number", farmerPN, farmerPN, farmerLID},
		{"addressed by LID", farmerLID, farmerLID, farmerPN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newScripted(t)
			r := startRig(t, openTestStore(t, ""), h, testOptions())
			leaf := testJPEG(t, 320, 240, 3)
			img := photoOf(r.client, "/v/t62/leaf1", leaf)
			img.Caption = proto.String("my tomato")
			evt := imageEvent("3EB0AAA1", tc.chat, tc.sender, tc.alt, img)
			if !r.client.emit(evt) {
				t.Fatal("a recorded message was not acknowledged")
			}
			c := h.next(t)
			sum := sha256.Sum256(leaf)
			want := bot.Message{ID: "3EB0AAA1",
				Chat:   bot.ChatRef{Platform: bot.WhatsApp, ID: farmerPN.String(), Kind: bot.Private},
				Sender: bot.Sender{ID: farmerPN.String(), Name: "Amina", LangHint: "+254712345678"},
				Text:   "my tomato", Time: time.Unix(1700000000, 0)}
			got := c.msg
			p := got.Photo
			got.Photo = nil
			if !got.Time.Equal(want.Time) {
				t.Errorf("time %v, want %v", got.Time, want.Time)
			}
			got.Time = want.Time
			if got.ID != want.ID || got.Chat != want.Chat || got.Sender != want.Sender || got.Text != want.Text {
				t.Errorf("message\n got %+v\nwant %+v", got, want)
			}
			if p == nil || p.ContentID != hex.EncodeToString(sum[:]) || p.Size != int64(len(leaf)) || p.MIME != "image/jpeg" {
				t.Fatalf("photo %+v", p)
			}
			if c.fetchErr != nil || !bytes.Equal(c.photo, leaf) {
				t.Fatalf("fetch: %d bytes, %v", len(c.photo), c.fetchErr)
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			checkSent(t, r.client.sentMessages(), tc.chat, wantReply(t, r.client, h.overlay, evt.Message, "3EB0AAA1", tc.sender))
			if len(r.client.reads) != 1 || r.client.reads[0] != "3EB0AAA1" {
				t.Errorf("marked read %v", r.client.reads)
			}
			// The farmer's LID and phone number are kept together.
			if pn, err := r.st.phoneOf(context.Background(), farmerLID); err != nil || pn != farmerPN {
				t.Errorf("phone of the LID: %v %v", pn, err)
			}
		})
	}
}

// TestLIDOnlySenderKnownByPhone: a farmer who once wrote with both ids is keyed by phone number
// when a later message carries the LID only; so is one whose pair whatsmeow knows; a LID nobody
// can resolve is the key itself.
func TestLIDOnlySenderKnownByPhone(t *testing.T) {
	h := newScripted(t)
	r := startRig(t, openTestStore(t, ""), h, testOptions())
	text := func(id string, sender, alt types.JID) *events.Message {
		return messageEvent(id, sender, sender, alt, &waE2E.Message{Conversation: proto.String("/help")})
	}
	r.client.emit(text("A1", farmerPN, farmerLID))
	r.client.emit(text("A2", farmerLID, types.EmptyJID))
	r.client.emit(text("A3", otherLID, types.EmptyJID))
	r.client.emit(text("A4", types.NewJID("444444444444444", types.HiddenUserServer), types.EmptyJID))
	got := map[string]bot.Message{}
	for range 4 {
		c := h.next(t)
		got[c.msg.ID] = c.msg
	}
	for id, want := range map[string]struct{ sender, hint string }{
		"A1": {farmerPN.String(), "+254712345678"}, "A2": {farmerPN.String(), "+254712345678"},
		"A3": {otherPN.String(), "+255765432100"}, "A4": {"444444444444444@lid", ""},
	} {
		m := got[id]
		if m.Sender.ID != want.sender || m.Chat.ID != want.sender || m.Sender.LangHint != want.hint {
			t.Errorf("message %s: sender %q chat %q hint %q, want %q %q", id, m.Sender.ID, m.Chat.ID, m.Sender.LangHint, want.sender, want.hint)
		}
	}
}

func TestGroupMessages(t *testing.T) {
	mention := func(j types.JID) *waE2E.ContextInfo { return &waE2E.ContextInfo{MentionedJID: []string{j.String()}} }
	for _, tc := range []struct {
		name     string
		caption  string
		text     string // a text message instead of a photo
		ctx      *waE2E.ContextInfo
		all      bool
		handed   bool
		wantText string
		admin    bool
	}{
		{name: "photo without mention", caption: "look at this", handed: false},
		{name: "photo mentioning the bot's number", caption: "@254700000001 what is it?", ctx: mention(botPN), handed: true, wantText: "what is it?"},
		{name: "photo mentioning the bot's LID", caption: "@111111111111111", ctx: mention(botLID), handed: true, wantText: ""},
		{name: "photo mentioning someone else", caption: "@255765432100 see", ctx: mention(otherPN), handed: false},
		{name: "caption starts with the diagnose word", caption: "/Diagnose my maize", handed: true, wantText: "/Diagnose my maize"},
		{name: "caption with a longer word", caption: "/diagnosed already", handed: false},
		{name: "every photo when configured", caption: "", all: true, handed: true},
		{name: "group command", text: "/help", handed: true, wantText: "/help"},
		{name: "unknown command without mention", text: "/shrug", handed: false},
		{name: "unknown command with mention", text: "@254700000001 /start@bot", ctx: mention(botPN), handed: true, wantText: "/start@bot"},
		{name: "language by an admin", text: "/language sw", handed: true, wantText: "/language sw", admin: true},
		{name: "chatter", text: "habari za asubuhi", handed: false},
		{name: "chatter mentioning the bot", text: "@254700000001 asante", ctx: mention(botPN), handed: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newScripted(t)
			opts := testOptions()
			opts.GroupAllPhotos = tc.all
			r := startRig(t, openTestStore(t, ""), h, opts)
			r.client.groups[groupJID] = &types.GroupInfo{JID: groupJID, GroupName: types.GroupName{Name: "Wakulima Nakuru"},
				Participants: []types.GroupParticipant{
					{JID: farmerLID, PhoneNumber: farmerPN, LID: farmerLID, IsAdmin: true},
					{JID: otherLID, PhoneNumber: otherPN, LID: otherLID},
				}}
			var raw *waE2E.Message
			if tc.text != "" {
				raw = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(tc.text), ContextInfo: tc.ctx}}
			} else {
				img := photoOf(r.client, "/v/t62/g1", testJPEG(t, 64, 64, 5))
				img.Caption, img.ContextInfo = proto.String(tc.caption), tc.ctx
				raw = &waE2E.Message{ImageMessage: img}
			}
			// A group in LID addressing mode: the sender is a LID, the phone number comes along.
			evt := messageEvent("G1", groupJID, farmerLID, farmerPN, raw)
			evt.Info.AddressingMode = types.AddressingModeLID
			if !r.client.emit(evt) {
				t.Fatal("not acknowledged")
			}
			if n := inboxRows(t, r.st); (n == 1) != tc.handed || n > 1 {
				t.Fatalf("%d messages recorded for the bot, want handed over: %v", n, tc.handed)
			}
			if !tc.handed {
				if err := r.stop(); err != nil {
					t.Fatal(err)
				}
				if s := r.client.sentMessages(); len(s) != 0 {
					t.Errorf("group chatter answered: %v", s)
				}
				return
			}
			c := h.next(t)
			m := c.msg
			wantChat := bot.ChatRef{Platform: bot.WhatsApp, ID: groupJID.String(), Kind: bot.Group, Title: "Wakulima Nakuru"}
			if m.Chat != wantChat || m.Sender.ID != farmerPN.String() || m.Sender.LangHint != "+254712345678" || m.Text != tc.wantText || m.Sender.IsAdmin != tc.admin {
				t.Errorf("message %+v", m)
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			s := r.client.sentMessages()
			if len(s) == 0 || s[0].to != groupJID {
				t.Fatalf("sent %v", s)
			}
			last := s[len(s)-1].msg.GetExtendedTextMessage().GetContextInfo()
			if last.GetStanzaID() != "G1" || last.GetParticipant() != farmerLID.String() || last.GetQuotedMessage() == nil {
				t.Errorf("reply does not quote the farmer's message: %v", last)
			}
		})
	}
}

func TestPermanentDisconnects(t *testing.T) {
	for _, tc := range []struct {
		evt  any
		want error
		hint string
	}{
		{&events.LoggedOut{Reason: events.ConnectFailureLoggedOut}, ErrLoggedOut, "cropshield whatsapp link"},
		{&events.LoggedOut{OnConnect: true, Reason: events.ConnectFailureMainDeviceGone}, ErrLoggedOut, "link the phone again"},
		{&events.StreamReplaced{}, ErrStreamReplaced, "stop the other one"},
		{&events.TemporaryBan{Code: events.TempBanSentToTooManyPeople, Expire: 24 * time.Hour}, ErrTemporaryBan, "ban expires in 24h0m0s"},
		{&events.ClientOutdated{}, ErrClientOutdated, "update go.mau.fi/whatsmeow"},
		{&events.ConnectFailure{Reason: events.ConnectFailureBadUserAgent}, ErrConnectRefused, "restart later"},
	} {
		t.Run(strings.TrimPrefix(typeName(tc.evt), "*events."), func(t *testing.T) {
			h := newScripted(t)
			r := startRig(t, openTestStore(t, ""), h, testOptions())
			r.client.emit(tc.evt)
			err := <-r.done
			close(r.done)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("Run returned %v, want %v saying %q", err, tc.want, tc.hint)
			}
			if r.client.disconnect != 1 {
				t.Errorf("disconnected %d times, want 1", r.client.disconnect)
			}
			if err := r.a.Send(context.Background(), bot.Reply{Chat: bot.ChatRef{Platform: bot.WhatsApp, ID: farmerPN.String()}, Text: "late"}); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Send after the stop: %v", err)
			}
		})
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

// mediaRetryEvent is the phone's encrypted answer to a media retry receipt.
func mediaRetryEvent(t testing.TB, info types.MessageInfo, mediaKey []byte, result waMmsRetry.MediaRetryNotification_ResultType, path string) *events.MediaRetry {
	t.Helper()
	plain, err := proto.Marshal(&waMmsRetry.MediaRetryNotification{StanzaID: proto.String(info.ID), DirectPath: proto.String(path), Result: result.Enum()})
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{3}, 12)
	key := hkdfutil.SHA256(mediaKey, nil, []byte("WhatsApp Media Retry Notification"), 32)
	ct, err := gcmutil.Encrypt(key, iv, plain, []byte(info.ID))
	if err != nil {
		t.Fatal(err)
	}
	return &events.MediaRetry{Ciphertext: ct, IV: iv, MessageID: info.ID, ChatID: info.Chat, Timestamp: time.Unix(1700000050, 0)}
}

func TestExpiredMediaIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name      string
		firstErr  error
		answer    func(t testing.TB, info types.MessageInfo, key []byte) *events.MediaRetry
		wantData  bool
		wantErr   []error
		wantPaths []string
	}{
		{"410 then the phone uploads again", whatsmeow.ErrMediaDownloadFailedWith410,
			func(t testing.TB, info types.MessageInfo, key []byte) *events.MediaRetry {
				return mediaRetryEvent(t, info, key, waMmsRetry.MediaRetryNotification_SUCCESS, "/v/t62/new")
			}, true, nil, []string{"/v/t62/old", "/v/t62/new"}},
		{"403 then the phone uploads again", whatsmeow.DownloadHTTPError{Response: &http.Response{StatusCode: 403}},
			func(t testing.TB, info types.MessageInfo, key []byte) *events.MediaRetry {
				return mediaRetryEvent(t, info, key, waMmsRetry.MediaRetryNotification_SUCCESS, "/v/t62/new")
			}, true, nil, []string{"/v/t62/old", "/v/t62/new"}},
		{"the phone no longer has it", whatsmeow.ErrMediaDownloadFailedWith404,
			func(_ testing.TB, info types.MessageInfo, _ []byte) *events.MediaRetry {
				return &events.MediaRetry{MessageID: info.ID, ChatID: info.Chat, Error: &events.MediaRetryError{Code: 2}}
			}, false, []error{ErrMediaExpired, whatsmeow.ErrMediaNotAvailableOnPhone}, []string{"/v/t62/old"}},
		{"the phone did not find it", whatsmeow.ErrMediaDownloadFailedWith404,
			func(t testing.TB, info types.MessageInfo, key []byte) *events.MediaRetry {
				return mediaRetryEvent(t, info, key, waMmsRetry.MediaRetryNotification_NOT_FOUND, "")
			}, false, []error{ErrMediaExpired}, []string{"/v/t62/old"}},
		{"another error is not retried", errors.New("connection reset"), nil, false, nil, []string{"/v/t62/old"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newScripted(t)
			r := startRig(t, openTestStore(t, ""), h, testOptions())
			leaf := testJPEG(t, 80, 60, 9)
			img := photoOf(r.client, "/v/t62/old", leaf)
			r.client.failures["/v/t62/old"] = tc.firstErr
			r.client.files["/v/t62/new"] = leaf
			if tc.answer != nil {
				r.client.onRetry = func(info types.MessageInfo, key []byte) {
					if !bytes.Equal(key, img.MediaKey) {
						t.Errorf("retry receipt with media key %x", key)
					}
					evt := tc.answer(t, info, key)
					go r.client.emit(evt) // whatsmeow's event goroutine
				}
			}
			r.client.emit(imageEvent("M1", farmerPN, farmerPN, types.EmptyJID, img))
			c := h.next(t)
			if tc.wantData != (c.fetchErr == nil) || (tc.wantData && !bytes.Equal(c.photo, leaf)) {
				t.Fatalf("fetch: %d bytes, %v", len(c.photo), c.fetchErr)
			}
			for _, want := range tc.wantErr {
				if !errors.Is(c.fetchErr, want) {
					t.Errorf("fetch error %v is not %v", c.fetchErr, want)
				}
			}
			if got := r.client.downloaded(); strings.Join(got, " ") != strings.Join(tc.wantPaths, " ") {
				t.Errorf("downloads %v, want %v", got, tc.wantPaths)
			}
			if tc.answer != nil && (len(r.client.receipts) != 1 || r.client.receipts[0].ID != "M1" || r.client.receipts[0].Chat != farmerPN || r.client.receipts[0].Sender != farmerPN) {
				t.Errorf("media retry receipts %+v", r.client.receipts)
			}
		})
	}
}

func TestViewOnceIsRefused(t *testing.T) {
	h := newScripted(t)
	r := startRig(t, openTestStore(t, ""), h, testOptions())
	img := photoOf(r.client, "/v/t62/secret", testJPEG(t, 64, 64, 2))
	r.client.emit(messageEvent("V1", farmerPN, farmerPN, types.EmptyJID,
		&waE2E.Message{ViewOnceMessageV2: &waE2E.FutureProofMessage{Message: &waE2E.Message{ImageMessage: img}}}))
	c := h.next(t)
	var pe *inference.PhotoError
	if c.msg.Photo == nil || c.msg.Photo.ContentID != "" || !errors.Is(c.fetchErr, inference.ErrUnsupportedFormat) ||
		!errors.As(c.fetchErr, &pe) || pe.Format != "view-once" {
		t.Fatalf("photo %+v, fetch error %v", c.msg.Photo, c.fetchErr)
	}
	if d := r.client.downloaded(); len(d) != 0 {
		t.Errorf("a view-once photo was downloaded: %v", d)
	}
}

func TestSameMessageTwiceOneReply(t *testing.T) {
	// The first delivery is being handled when the second comes (this scripted handler has no
	// turn log: a delivery after the answer is the real handler's to recognize).
	h := &heldFirst{scripted: newScripted(t), id: "D1", release: make(chan struct{})}
	release := sync.OnceFunc(func() { close(h.release) })
	defer release()
	r := startRig(t, openTestStore(t, ""), h, testOptions())
	evt := messageEvent("D1", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{Conversation: proto.String("/help")})
	for range 2 {
		if !r.client.emit(evt) {
			t.Fatal("not acknowledged")
		}
	}
	release()
	h.next(t)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if len(h.calls) != 0 {
		t.Errorf("the handler got the message %d more times", len(h.calls))
	}
	if s := r.client.sentMessages(); len(s) != 1 {
		t.Errorf("%d replies, want 1", len(s))
	}
}

func TestUnrecordedMessageIsNotAcknowledged(t *testing.T) {
	st, err := OpenStore(context.Background(), t.TempDir()+"/whatsapp.db", testLogger)
	if err != nil {
		t.Fatal(err)
	}
	r := startRig(t, st, newScripted(t), testOptions())
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if r.client.emit(messageEvent("X1", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{Conversation: proto.String("hi")})) {
		t.Error("a message that could not be recorded was acknowledged: WhatsApp would not deliver it again")
	}
}

func TestIgnoredMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		evt  *events.Message
	}{
		{"own message", func() *events.Message {
			e := messageEvent("I1", farmerPN, botPN, types.EmptyJID, &waE2E.Message{Conversation: proto.String("hi")})
			e.Info.IsFromMe = true
			return e
		}()},
		{"status update", messageEvent("I2", types.StatusBroadcastJID, farmerPN, types.EmptyJID, &waE2E.Message{Conversation: proto.String("hi")})},
		{"reaction", messageEvent("I3", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍")}})},
		{"edit", messageEvent("I4", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{Conversation: proto.String("hi")}}})},
		{"revoke", messageEvent("I5", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum()}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, openTestStore(t, ""), newScripted(t), testOptions())
			if !r.client.emit(tc.evt) {
				t.Error("not acknowledged")
			}
			if n := inboxRows(t, r.st); n != 0 {
				t.Errorf("%d messages recorded", n)
			}
		})
	}
}

// TestRepliesOnlyToChatsThatWrote: the bot never writes first, and not to chats silent for longer
// than the reply window.
func TestRepliesOnlyToChatsThatWrote(t *testing.T) {
	now := time.Unix(1700000000, 0)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	opts := testOptions()
	opts.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	opts.ReplyWindow = 24 * time.Hour
	h := newScripted(t)
	r := startRig(t, openTestStore(t, ""), h, opts)
	r.client.emit(messageEvent("W1", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{Conversation: proto.String("/help")}))
	h.next(t)
	for _, tc := range []struct {
		name string
		chat string
		at   time.Time
		want error
	}{
		{"a chat that wrote", farmerPN.String(), now.Add(time.Hour), nil},
		{"a chat that never wrote", otherPN.String(), now, ErrNoConversation},
		{"a chat silent too long", farmerPN.String(), now.Add(25 * time.Hour), ErrNoConversation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.Store(tc.at.UnixNano())
			before := len(r.client.sentMessages())
			err := r.a.Send(context.Background(), bot.Reply{Chat: bot.ChatRef{Platform: bot.WhatsApp, ID: tc.chat}, Text: "staff: spray copper", ReplyTo: "W1"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send: %v, want %v", err, tc.want)
			}
			if sentNow := len(r.client.sentMessages()) - before; (sentNow == 1) != (tc.want == nil) {
				t.Errorf("%d messages sent", sentNow)
			}
		})
	}
}

// TestReplyShapes: every kind of bot.Reply becomes the WhatsApp messages it should.
func TestReplyShapes(t *testing.T) {
	h := newScripted(t)
	r := startRig(t, openTestStore(t, ""), h, testOptions())
	r.client.emit(messageEvent("S1", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{Conversation: proto.String("/start")}))
	h.next(t)
	img1, img2 := testJPEG(t, 300, 150, 1), testJPEG(t, 40, 80, 2)
	chat := bot.ChatRef{Platform: bot.WhatsApp, ID: farmerPN.String(), Kind: bot.Private}
	// describe reduces a sent message to its shape.
	describe := func(m *waE2E.Message) string {
		switch {
		case m.GetImageMessage() != nil:
			im := m.GetImageMessage()
			return fmt.Sprintf("image %dx%d caption=%q quote=%s", im.GetWidth(), im.GetHeight(), im.GetCaption(), im.GetContextInfo().GetStanzaID())
		case m.GetExtendedTextMessage() != nil:
			return fmt.Sprintf("text %q quote=%s", m.GetExtendedTextMessage().GetText(), m.GetExtendedTextMessage().GetContextInfo().GetStanzaID())
		}
		return fmt.Sprintf("plain %q", m.GetConversation())
	}
	for _, tc := range []struct {
		name  string
		reply bot.Reply
		want  []string
		err   bool
	}{
		{"text quoting the message", bot.Reply{ReplyTo: "S1", Text: "Welcome"}, []string{`text "Welcome" quote=S1`}, false},
		{"text quoting nothing", bot.Reply{Text: "A note from staff"}, []string{`plain "A note from staff"`}, false},
		{"text quoting an unknown message", bot.Reply{ReplyTo: "gone", Caption: "Top-3", Text: "advice"}, []string{`plain "Top-3\n\nadvice"`}, false},
		{"image without details", bot.Reply{ReplyTo: "S1", Caption: "Top-3", Image: img1}, []string{`image 300x150 caption="Top-3" quote=S1`}, false},
		{"album", bot.Reply{ReplyTo: "S1", Caption: "Top-3 of both", Text: "advice", Images: [][]byte{img1, img2}}, []string{
			`image 300x150 caption="Top-3 of both" quote=S1`, `image 40x80 caption="" quote=S1`, `text "advice" quote=S1`}, false},
		{"not a JPEG", bot.Reply{ReplyTo: "S1", Caption: "x", Image: []byte("GIF89a")}, nil, true},
		{"another platform", bot.Reply{Chat: bot.ChatRef{Platform: bot.Telegram, ID: "42"}, Text: "x"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reply.Chat.Platform == "" {
				tc.reply.Chat = chat
			}
			before := len(r.client.sentMessages())
			err := r.a.Send(context.Background(), tc.reply)
			if (err != nil) != tc.err {
				t.Fatalf("Send: %v", err)
			}
			var got []string
			for _, s := range r.client.sentMessages()[before:] {
				got = append(got, describe(s.msg))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// fakeUsers records the moves asked of the bot's store and answers them with errs in turn (then
// with success); store.ErrNotFound stands for "nothing to move".
type fakeUsers struct {
	mu    sync.Mutex
	errs  []error
	calls []string // "from>to at"
}

func (f *fakeUsers) MoveUser(_ context.Context, platform bot.Platform, from, to string, at time.Time) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s:%s>%s@%d", platform, from, to, at.Unix()))
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		switch {
		case errors.Is(err, store.ErrNotFound):
			return false, "", nil // as bot.Moves says it: nothing kept under the LID
		case err != nil:
			return false, "", err
		}
	}
	return true, "", nil
}

// TestLIDFarmerMovedOnce: the adapter asks the bot's store to move a farmer from their LID to
// their phone-number id when it learns the pair, from a message or from whatsmeow, and then
// never again. A failed move is logged; the message is handed over all the same, under the
// phone-number id, and the next message carrying the pair tries again.
func TestLIDFarmerMovedOnce(t *testing.T) {
	boom := errors.New("disk full")
	text := func(id string, sender, alt types.JID) *events.Message {
		return messageEvent(id, sender, sender, alt, &waE2E.Message{Conversation: proto.String("/help")})
	}
	farmerMove := "whatsapp:" + farmerLID.String() + ">" + farmerPN.String() + "@1700000000"
	for _, tc := range []struct {
		name      string
		errs      []error
		events    []*events.Message
		wantID    string // the canonical id of every message
		wantCalls []string
	}{
		{
			name:      "moved once",
			events:    []*events.Message{text("M1", farmerLID, farmerPN), text("M2", farmerLID, farmerPN), text("M3", farmerLID, types.EmptyJID), text("M4", farmerPN, farmerLID)},
			wantID:    farmerPN.String(),
			wantCalls: []string{farmerMove},
		},
		{
			name:      "nothing under the LID",
			errs:      []error{fmt.Errorf("migrate: %w", store.ErrNotFound)},
			events:    []*events.Message{text("M1", farmerPN, farmerLID), text("M2", farmerLID, farmerPN)},
			wantID:    farmerPN.String(),
			wantCalls: []string{farmerMove},
		},
		{
			name:      "failed move tried again with the next message",
			errs:      []error{boom},
			events:    []*events.Message{text("M1", farmerLID, farmerPN), text("M2", farmerLID, farmerPN), text("M3", farmerLID, farmerPN)},
			wantID:    farmerPN.String(),
			wantCalls: []string{farmerMove, farmerMove},
		},
		{
			name:      "pair known to whatsmeow",
			events:    []*events.Message{text("M1", otherLID, types.EmptyJID), text("M2", otherLID, types.EmptyJID)},
			wantID:    otherPN.String(),
			wantCalls: []string{"whatsapp:" + otherLID.String() + ">" + otherPN.String() + "@1700000000"},
		},
		{
			name:   "phone number only",
			events: []*events.Message{text("M1", farmerPN, types.EmptyJID)},
			wantID: farmerPN.String(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newScripted(t)
			users := &fakeUsers{errs: tc.errs}
			opts := testOptions()
			opts.Users = users
			r := startRig(t, openTestStore(t, ""), h, opts)
			for _, e := range tc.events {
				if !r.client.emit(e) {
					t.Fatalf("message %s not acknowledged", e.Info.ID)
				}
				if m := h.next(t).msg; m.ID != e.Info.ID || m.Sender.ID != tc.wantID || m.Chat.ID != tc.wantID {
					t.Errorf("message %s handed over from %q in chat %q, want %q", e.Info.ID, m.Sender.ID, m.Chat.ID, tc.wantID)
				}
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(users.calls, tc.wantCalls) {
				t.Errorf("moves %q, want %q", users.calls, tc.wantCalls)
			}
		})
	}
}

// heldFirst holds the handling of one message until release is closed.
type heldFirst struct {
	*scripted
	id      string
	release chan struct{}
}

func (g *heldFirst) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	if m.ID == g.id {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.scripted.Handle(ctx, m, out)
}

// TestFullIntakeKeepsMessages: messages received while the intake is full are acknowledged
// (WhatsApp would deliver them again only at the next reconnection), kept in the inbox table and
// handed in, in the order received, once the intake has room. They were refused after a 10 s
// wait, unacknowledged.
func TestFullIntakeKeepsMessages(t *testing.T) {
	h := &heldFirst{scripted: newScripted(t), id: "B1", release: make(chan struct{})}
	st := openTestStore(t, "")
	r := startRigIntake(t, newFakeClient(), st, h, testOptions(), bot.IntakeConfig{Workers: 4, ChatQueue: 1, Queue: 1, RetryDelay: time.Millisecond})
	release := sync.OnceFunc(func() { close(h.release) })
	defer release()
	for _, id := range []string{"B1", "B2", "B3"} {
		if !r.client.emit(messageEvent(id, farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{Conversation: proto.String("/help " + id)})) {
			t.Fatalf("message %s not acknowledged while the intake is full", id)
		}
	}
	release()
	for _, want := range []string{"B1", "B2", "B3"} {
		if c := h.next(t); c.msg.ID != want {
			t.Fatalf("handled %s, want %s (the order received)", c.msg.ID, want)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if n := pendingIn(t, st); n != 0 {
		t.Errorf("the intake still keeps %d messages", n)
	}
	if rows, err := st.pendingInbox(context.Background()); err != nil || len(rows) != 0 {
		t.Errorf("%d messages still pending in the adapter's table, %v", len(rows), err)
	}
}

// TestSendsHere: the adapter sends in this process only while its Run is connected; standing by
// (not running) or stopped, staff replies go through the store's outbox (bot.RemoteSender).
func TestSendsHere(t *testing.T) {
	st := openTestStore(t, "")
	if New(testLogger, newFakeClient(), st, testOptions()).SendsHere() {
		t.Fatal("an adapter that does not run sends here")
	}
	r := startRig(t, st, newScripted(t), testOptions())
	if !r.a.SendsHere() {
		t.Fatal("a connected adapter does not send here")
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if r.a.SendsHere() {
		t.Fatal("a stopped adapter sends here")
	}
}
