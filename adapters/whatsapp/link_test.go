package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

func TestParsePhone(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		hint     string
	}{
		{"+254712345678", "254712345678", ""},
		{" +254 712-345 678 ", "254712345678", ""},
		{"+1 (415) 555.0100", "14155550100", ""},
		{"0712345678", "", "with + and the country code"},
		{"254712345678", "", "with + and the country code"},
		{"00254712345678", "", "as +"},
		{"+0712345678", "", "without a leading 0"},
		{"+2547", "", "8 to 15 digits"},
		{"+2547123456789012", "", "8 to 15 digits"},
		{"+254 712 ABC", "", "only digits"},
		{"", "", "with + and the country code"},
	} {
		got, err := ParsePhone(tc.in)
		if tc.hint == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParsePhone(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrBadPhone) || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("ParsePhone(%q) error %v, want ErrBadPhone saying %q", tc.in, err, tc.hint)
		}
	}
}

// fakeLinker plays WhatsApp's side of linking from a script of QR channel items.
type fakeLinker struct {
	items      []whatsmeow.QRChannelItem
	qrErr      error
	pairCode   string
	pairErr    error
	paired     []string
	connected  bool
	disconnect int
}

func (f *fakeLinker) GetQRChannel(context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	if f.qrErr != nil {
		return nil, f.qrErr
	}
	ch := make(chan whatsmeow.QRChannelItem, len(f.items))
	for _, it := range f.items {
		ch <- it
	}
	close(ch)
	return ch, nil
}

func (f *fakeLinker) Connect() error { f.connected = true; return nil }
func (f *fakeLinker) Disconnect()    { f.disconnect++ }
func (f *fakeLinker) PairPhone(_ context.Context, phone string, _ bool, _ whatsmeow.PairClientType, display string) (string, error) {
	f.paired = append(f.paired, phone+" "+display)
	return f.pairCode, f.pairErr
}
func (f *fakeLinker) WaitForConnection(time.Duration) bool { return true }

func TestLink(t *testing.T) {
	code := func(c string) whatsmeow.QRChannelItem {
		return whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: c, Timeout: 20 * time.Second}
	}
	for _, tc := range []struct {
		name    string
		phone   string
		l       *fakeLinker
		want    error
		out     []string
		notOut  []string
		qrCodes string
	}{
		{name: "QR codes rotate until one is scanned", l: &fakeLinker{items: []whatsmeow.QRChannelItem{code("2@aaa"), code("2@bbb"), whatsmeow.QRChannelSuccess}},
			out: []string{"Linked devices", "a new one comes in 20s", "The phone accepted"}, qrCodes: "[2@aaa][2@bbb]"},
		{name: "QR codes not scanned", l: &fakeLinker{items: []whatsmeow.QRChannelItem{code("2@aaa"), whatsmeow.QRChannelTimeout}},
			want: ErrLinkTimeout, qrCodes: "[2@aaa]"},
		{name: "pairing code", phone: "+254 700 000001", l: &fakeLinker{pairCode: "ABCD-EFGH", items: []whatsmeow.QRChannelItem{code("2@aaa"), code("2@bbb"), whatsmeow.QRChannelSuccess}},
			out: []string{"ABCD-EFGH", "+254700000001", "Link with phone number instead"}, notOut: []string{"scan"}},
		{name: "pairing code not typed in time", phone: "+254700000001", l: &fakeLinker{pairCode: "ABCD-EFGH", items: []whatsmeow.QRChannelItem{code("2@aaa"), whatsmeow.QRChannelTimeout}},
			want: ErrLinkTimeout},
		{name: "rate limited", phone: "+254700000001", l: &fakeLinker{pairErr: fmt.Errorf("request: %w", &whatsmeow.IQError{Code: 429, Text: "rate-overlimit"}), items: []whatsmeow.QRChannelItem{code("2@aaa")}},
			want: ErrRateLimited},
		{name: "badly formatted number", phone: "0712345678", l: &fakeLinker{}, want: ErrBadPhone},
		{name: "already linked", l: &fakeLinker{qrErr: whatsmeow.ErrQRStoreContainsID}, want: ErrAlreadyLinked},
		{name: "client outdated", l: &fakeLinker{items: []whatsmeow.QRChannelItem{whatsmeow.QRChannelClientOutdated}}, want: ErrClientOutdated},
		{name: "pair error", l: &fakeLinker{items: []whatsmeow.QRChannelItem{code("2@a"), {Event: whatsmeow.QRChannelEventError, Error: errors.New("bad signature")}}}, want: ErrLinkFailed, qrCodes: "[2@a]"},
		{name: "connection closed", l: &fakeLinker{items: []whatsmeow.QRChannelItem{code("2@a")}}, want: ErrLinkTimeout, qrCodes: "[2@a]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			var qr strings.Builder
			err := Link(context.Background(), tc.l, LinkOptions{Phone: tc.phone, Out: &out,
				DrawQR: func(c string, w io.Writer) { fmt.Fprintf(&qr, "[%s]", c) }})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Link: %v, want %v", err, tc.want)
			}
			for _, s := range tc.out {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.notOut {
				if strings.Contains(out.String(), s) {
					t.Errorf("output has %q:\n%s", s, out.String())
				}
			}
			if qr.String() != tc.qrCodes {
				t.Errorf("QR codes drawn %q, want %q", qr.String(), tc.qrCodes)
			}
			if tc.phone != "" && tc.want == nil && (len(tc.l.paired) != 1 || tc.l.paired[0] != "254700000001 Chrome (Linux)") {
				t.Errorf("pairing codes requested %v, want one for the digits", tc.l.paired)
			}
			if tc.l.connected && tc.l.disconnect != 1 {
				t.Errorf("disconnected %d times", tc.l.disconnect)
			}
		})
	}
}

type fakeUnlinker struct {
	logoutErr error
	loggedOut bool
}

func (f *fakeUnlinker) Connect() error                       { return nil }
func (f *fakeUnlinker) Disconnect()                          {}
func (f *fakeUnlinker) WaitForConnection(time.Duration) bool { return true }
func (f *fakeUnlinker) Logout(context.Context) error {
	f.loggedOut = f.logoutErr == nil
	return f.logoutErr
}

func TestUnlink(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		logoutErr error
		warning   string
	}{
		{"WhatsApp told", nil, ""},
		{"WhatsApp unreachable: keys deleted anyway", errors.New("websocket not connected"), "Linked devices"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openTestStore(t, "")
			dev := linkedDevice(t, st)
			warning, err := Unlink(ctx, &fakeUnlinker{logoutErr: tc.logoutErr}, dev, time.Second)
			if err != nil || !strings.Contains(warning, tc.warning) || (tc.warning == "") != (warning == "") {
				t.Fatalf("Unlink: %q %v", warning, err)
			}
			if tc.logoutErr != nil {
				if s, err := ReadStatus(ctx, st); err != nil || s.Linked {
					t.Errorf("still linked after unlink: %+v %v", s, err)
				}
			}
		})
	}
	st := openTestStore(t, "")
	dev, err := st.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unlink(ctx, &fakeUnlinker{}, dev, time.Second); !errors.Is(err, ErrNotLinked) {
		t.Errorf("unlink without a device: %v", err)
	}
}

// linkedDevice saves a device as pairing does.
func linkedDevice(t *testing.T, st *Store) *store.Device {
	t.Helper()
	dev, err := st.Device(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jid := types.NewADJID("254700000001", 0, 12)
	dev.ID, dev.LID, dev.PushName, dev.Platform = &jid, types.NewJID("111111111111111", types.HiddenUserServer), "CropShield", "android"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
		AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dev
}
