package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot"
	cstore "github.com/cropshield/cropshield/store"
)

// The bot's account and the people who write to it.
var (
	botPN    = types.NewJID("254700000001", types.DefaultUserServer)
	botLID   = types.NewJID("111111111111111", types.HiddenUserServer)
	farmerPN = types.NewJID("254712345678", types.DefaultUserServer)
	// farmerLID is the same farmer's LID.
	farmerLID  = types.NewJID("222222222222222", types.HiddenUserServer)
	otherPN    = types.NewJID("255765432100", types.DefaultUserServer)
	otherLID   = types.NewJID("333333333333333", types.HiddenUserServer)
	groupJID   = types.NewJID("120363000000000001", types.GroupServer)
	testLogger = slog.New(slog.NewTextHandler(io.Discard, nil))
)

// sent is one message the fake client sent.
type sent struct {
	to  types.JID
	msg *waE2E.Message
}

// fakeClient stands in for whatsmeow.Client and WhatsApp's servers.
type fakeClient struct {
	mu         sync.Mutex
	handler    whatsmeow.EventHandlerWithSuccessStatus
	connected  chan struct{} // closed by Connect
	files      map[string][]byte
	failures   map[string]error // download errors by direct path
	downloads  []string         // direct paths downloaded
	uploads    [][]byte
	sent       []sent
	receipts   []types.MessageInfo // media retry receipts
	reads      []types.MessageID
	groups     map[types.JID]*types.GroupInfo
	disconnect int

	// onSend runs after a message is recorded as sent (on the sending goroutine).
	onSend func(n int)
	// onRetry runs when a media retry receipt is sent.
	onRetry func(info types.MessageInfo, mediaKey []byte)
}

func newFakeClient() *fakeClient {
	return &fakeClient{connected: make(chan struct{}), files: map[string][]byte{}, failures: map[string]error{},
		groups: map[types.JID]*types.GroupInfo{}}
}

func (f *fakeClient) OwnID() (types.JID, types.JID) { return botPN, botLID }

// PhoneOf knows the phone number of otherLID from a group member list.
func (f *fakeClient) PhoneOf(_ context.Context, lid types.JID) (types.JID, error) {
	if lid == otherLID {
		return otherPN, nil
	}
	return types.EmptyJID, nil
}

// Connect logs in at once.
func (f *fakeClient) Connect() error {
	f.emit(&events.Connected{})
	close(f.connected)
	return nil
}

func (f *fakeClient) Disconnect() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnect++
}

func (f *fakeClient) AddEventHandlerWithSuccessStatus(h whatsmeow.EventHandlerWithSuccessStatus) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
	return 1
}

func (f *fakeClient) RemoveEventHandler(uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = nil
	return true
}

// emit delivers an event as whatsmeow's event goroutine does and returns whether it may be
// acknowledged.
func (f *fakeClient) emit(evt any) bool {
	f.mu.Lock()
	h := f.handler
	f.mu.Unlock()
	if h == nil {
		panic("no event handler registered")
	}
	return h(evt)
}

// DownloadToFile writes the file stored under the message's direct path into file. A message
// whose URL is on 127.0.0.1 is downloaded from there by whatsmeow's own code (stream, MAC check,
// decryption), as from WhatsApp's media servers.
func (f *fakeClient) DownloadToFile(ctx context.Context, m whatsmeow.DownloadableMessage, file whatsmeow.File) error {
	f.mu.Lock()
	p := m.GetDirectPath()
	f.downloads = append(f.downloads, p)
	err := f.failures[p]
	data, ok := f.files[p]
	f.mu.Unlock()
	if u, ok := m.(interface{ GetURL() string }); ok && strings.HasPrefix(u.GetURL(), "http://127.0.0.1:") {
		return whatsmeow.NewClient(&store.Device{}, nil).DownloadToFile(ctx, m, file)
	}
	if err != nil {
		return err
	}
	if !ok {
		return whatsmeow.ErrMediaDownloadFailedWith404
	}
	_, err = file.Write(data)
	return err
}

func (f *fakeClient) SendMediaRetryReceipt(_ context.Context, info *types.MessageInfo, mediaKey []byte) error {
	f.mu.Lock()
	f.receipts = append(f.receipts, *info)
	hook := f.onRetry
	f.mu.Unlock()
	if hook != nil {
		hook(*info, mediaKey)
	}
	return nil
}

func (f *fakeClient) Upload(_ context.Context, plaintext []byte, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	if appInfo != whatsmeow.MediaImage {
		return whatsmeow.UploadResponse{}, fmt.Errorf("upload of %q", appInfo)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads = append(f.uploads, plaintext)
	n := len(f.uploads)
	sum := sha256.Sum256(plaintext)
	enc := sha256.Sum256(append([]byte("enc"), plaintext...))
	return whatsmeow.UploadResponse{
		URL: fmt.Sprintf("https://mmg.example/up%d", n), DirectPath: fmt.Sprintf("/v/t62/up%d", n),
		MediaKey: bytes.Repeat([]byte{byte(n)}, 32), FileSHA256: sum[:], FileEncSHA256: enc[:], FileLength: uint64(len(plaintext)),
	}, nil
}

func (f *fakeClient) SendMessage(_ context.Context, to types.JID, m *waE2E.Message, _ ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	f.mu.Lock()
	f.sent = append(f.sent, sent{to: to, msg: proto.Clone(m).(*waE2E.Message)})
	n := len(f.sent)
	hook := f.onSend
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return whatsmeow.SendResponse{ID: fmt.Sprint("out", n), Timestamp: time.Unix(1700000100, 0)}, nil
}

func (f *fakeClient) MarkRead(_ context.Context, ids []types.MessageID, _ time.Time, _, _ types.JID, _ ...types.ReceiptType) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, ids...)
	return nil
}

func (f *fakeClient) SendChatPresence(context.Context, types.JID, types.ChatPresence, types.ChatPresenceMedia) error {
	return nil
}

func (f *fakeClient) GetGroupInfo(_ context.Context, jid types.JID) (*types.GroupInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[jid]
	if !ok {
		return nil, whatsmeow.ErrGroupNotFound
	}
	return g, nil
}

func (f *fakeClient) sentMessages() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.sent...)
}

func (f *fakeClient) downloaded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.downloads...)
}

// openTestStore opens a SQLite store at path (a new one in a temp dir if "").
func openTestStore(t testing.TB, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "whatsapp.db")
	}
	st, err := OpenStore(context.Background(), path, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// rig runs an adapter on a fake client, with an intake on the handler, until the test ends.
type rig struct {
	t      testing.TB
	client *fakeClient
	st     *Store
	a      *Adapter
	in     *bot.Intake
	cancel context.CancelFunc
	done   chan error
	// drain bounds the intake's drain at stop (none: until the messages being handled finish);
	// already over, the messages being handled are interrupted as by a crash.
	drain context.Context
}

// inboxes are the bot's durable inboxes (bbolt) the rigs' intakes keep messages in, one per
// WhatsApp store: a rig started again on the same store finds what the last one left.
var inboxes sync.Map // *Store → *cstore.Store

func inboxOf(t testing.TB, st *Store) *cstore.Store {
	if in, ok := inboxes.Load(st); ok {
		return in.(*cstore.Store)
	}
	in, err := cstore.Open(context.Background(), filepath.Join(t.TempDir(), "cropshield.db"), cstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inboxes.Store(st, in)
	t.Cleanup(func() {
		inboxes.Delete(st)
		if err := in.Close(); err != nil {
			t.Error(err)
		}
	})
	return in
}

// pendingIn counts the messages the intake keeps for WhatsApp, not answered yet.
func pendingIn(t testing.TB, st *Store) int {
	t.Helper()
	p, err := inboxOf(t, st).PendingInbox(context.Background(), string(bot.WhatsApp))
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}

// testOptions paces nothing and retries media quickly enough for tests that wait for the event.
func testOptions() Options {
	return Options{ChatInterval: time.Nanosecond, GlobalInterval: time.Nanosecond, Now: time.Now}
}

func startRig(t testing.TB, st *Store, h bot.MessageHandler, opts Options) *rig {
	t.Helper()
	return startRigOn(t, newFakeClient(), st, h, opts)
}

// startRigOn runs the adapter on a client prepared beforehand (files on its servers).
func startRigOn(t testing.TB, client *fakeClient, st *Store, h bot.MessageHandler, opts Options) *rig {
	t.Helper()
	return startRigIntake(t, client, st, h, opts, bot.IntakeConfig{Workers: 4, RetryDelay: time.Millisecond})
}

// startRigIntake is startRigOn with the intake's configuration.
func startRigIntake(t testing.TB, client *fakeClient, st *Store, h bot.MessageHandler, opts Options, icfg bot.IntakeConfig) *rig {
	t.Helper()
	r := &rig{t: t, client: client, st: st, done: make(chan error, 1), drain: context.Background()}
	r.a = New(testLogger, r.client, st, opts)
	r.in = bot.NewIntake(icfg, testLogger, inboxOf(t, st), h)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.a.Run(ctx, r.in) }()
	select {
	case <-r.client.connected:
	case err := <-r.done:
		t.Fatalf("Run stopped before connecting: %v", err)
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// stop shuts down as serve does: the intake stops (the messages in progress finish, within
// r.drain), then Run ends; it returns Run's error.
func (r *rig) stop() error {
	_ = r.in.Stop(r.drain) // an interrupted drain is what r.drain asks for
	r.cancel()
	err, ok := <-r.done
	if ok {
		close(r.done)
	}
	return err
}

// inboxRows counts the recorded messages.
func inboxRows(t testing.TB, st *Store) int {
	t.Helper()
	var n int
	if err := st.db.QueryRow(`SELECT COUNT(*) FROM cropshield_wa_inbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// imageEvent builds the event whatsmeow emits for a photo.
func imageEvent(id string, chat, sender, senderAlt types.JID, img *waE2E.ImageMessage) *events.Message {
	return messageEvent(id, chat, sender, senderAlt, &waE2E.Message{ImageMessage: img})
}

func messageEvent(id string, chat, sender, senderAlt types.JID, raw *waE2E.Message) *events.Message {
	e := &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: chat, Sender: sender, SenderAlt: senderAlt, IsGroup: chat.Server == types.GroupServer},
			ID:            id, PushName: "Amina", Timestamp: time.Unix(1700000000, 0), Type: "media",
		},
		RawMessage: raw,
	}
	return e.UnwrapRaw()
}

// photoOf describes a photo stored on the fake servers under path.
func photoOf(f *fakeClient, path string, data []byte) *waE2E.ImageMessage {
	sum := sha256.Sum256(data)
	f.mu.Lock()
	f.files[path] = data
	f.mu.Unlock()
	return &waE2E.ImageMessage{
		URL: proto.String(""), DirectPath: proto.String(path), Mimetype: proto.String("image/jpeg"),
		FileSHA256: sum[:], FileEncSHA256: bytes.Repeat([]byte{7}, 32), FileLength: proto.Uint64(uint64(len(data))),
		MediaKey: bytes.Repeat([]byte{9}, 32), Width: proto.Uint32(320), Height: proto.Uint32(240),
	}
}

// testJPEG draws a w×h JPEG.
func testJPEG(t testing.TB, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x) + seed, uint8(y), 60, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// call is one Handle call a scripted handler saw.
type call struct {
	msg      bot.Message
	photo    []byte
	fetchErr error
}

// scripted is a handler that fetches the photo (when there is one) and answers with a fixed
// diagnosis, or with the fetch error as text.
type scripted struct {
	overlay []byte
	calls   chan call
}

func newScripted(t testing.TB) *scripted {
	return &scripted{overlay: testJPEG(t, 200, 100, 1), calls: make(chan call, 16)}
}

func (s *scripted) Handle(ctx context.Context, m bot.Message, out bot.Responder) error {
	c := call{msg: m}
	r := bot.Reply{Chat: m.Chat, ReplyTo: m.ID, Kind: bot.KindCommand, Text: "help text"}
	if m.Photo != nil {
		c.photo, c.fetchErr = m.Photo.Fetch(ctx)
		r = bot.Reply{Chat: m.Chat, ReplyTo: m.ID, Kind: bot.KindDiagnosis, Caption: "Tomato late blight 91%", Text: "What to do: remove the leaves.", Image: s.overlay}
		if c.fetchErr != nil {
			r = bot.Reply{Chat: m.Chat, ReplyTo: m.ID, Kind: bot.KindError, Text: "send it again: " + c.fetchErr.Error()}
		}
	}
	err := out.Send(ctx, r)
	s.calls <- c
	return err
}

// next waits for the next Handle call.
func (s *scripted) next(t testing.TB) call {
	t.Helper()
	return <-s.calls
}
