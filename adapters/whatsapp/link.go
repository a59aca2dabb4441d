package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
)

// ParsePhone checks an international phone number ("+254 712 345 678") and returns its digits.
func ParsePhone(s string) (string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "00") {
		return "", fmt.Errorf("%w: %q: write the international prefix as + (e.g. +254712345678)", ErrBadPhone, s)
	}
	rest, ok := strings.CutPrefix(t, "+")
	if !ok {
		return "", fmt.Errorf("%w: %q: give the international number with + and the country code (e.g. +254712345678)", ErrBadPhone, s)
	}
	var b strings.Builder
	for _, r := range rest {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%w: %q: only digits, spaces and dashes after the + (e.g. +254712345678)", ErrBadPhone, s)
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(d, "0"):
		return "", fmt.Errorf("%w: %q: the country code follows the + directly, without a leading 0 (e.g. +254712345678)", ErrBadPhone, s)
	case len(d) < 8 || len(d) > 15:
		return "", fmt.Errorf("%w: %q: an international number has 8 to 15 digits (e.g. +254712345678)", ErrBadPhone, s)
	}
	return d, nil
}

// Linker is the part of *whatsmeow.Client that linking uses.
type Linker interface {
	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	Connect() error
	Disconnect()
	PairPhone(ctx context.Context, phone string, showPushNotification bool, clientType whatsmeow.PairClientType, clientDisplayName string) (string, error)
	WaitForConnection(timeout time.Duration) bool
}

// LinkOptions configure Link.
type LinkOptions struct {
	// Phone, in international form, asks for a pairing code to type on that phone instead of a
	// QR code to scan.
	Phone string
	// Out receives the instructions, QR codes and pairing code.
	Out io.Writer
	// DrawQR draws a QR code on Out.
	DrawQR func(code string, out io.Writer)
	// SetupTimeout bounds the wait for the first logged-in connection after the phone accepted
	// (30 s).
	SetupTimeout time.Duration
}

// Link links a new device to the operator's phone: it shows QR codes as WhatsApp rotates them (or
// a pairing code for LinkOptions.Phone) until the phone accepts, ctx ends or the codes run out.
func Link(ctx context.Context, l Linker, opts LinkOptions) error {
	var phone string
	if opts.Phone != "" {
		var err error
		if phone, err = ParsePhone(opts.Phone); err != nil {
			return err
		}
	}
	if opts.SetupTimeout <= 0 {
		opts.SetupTimeout = 30 * time.Second
	}
	qr, err := l.GetQRChannel(ctx)
	if errors.Is(err, whatsmeow.ErrQRStoreContainsID) {
		return fmt.Errorf("%w: run `cropshield whatsapp unlink` first to link another", ErrAlreadyLinked)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLinkFailed, err)
	}
	if err := l.Connect(); err != nil {
		return fmt.Errorf("%w: connect to WhatsApp: %w", ErrLinkFailed, err)
	}
	out := opts.Out
	paired := false
	for {
		var item whatsmeow.QRChannelItem
		var ok bool
		select {
		case item, ok = <-qr:
		case <-ctx.Done():
			l.Disconnect()
			return fmt.Errorf("%w: %w", ErrLinkTimeout, ctx.Err())
		}
		if !ok {
			l.Disconnect()
			return fmt.Errorf("%w: WhatsApp closed the link session", ErrLinkTimeout)
		}
		switch item.Event {
		case whatsmeow.QRChannelEventCode:
			if phone == "" {
				fmt.Fprintf(out, "\nOn the bot's phone open WhatsApp → Settings → Linked devices → Link a device, and scan this code (a new one comes in %s):\n\n", item.Timeout.Round(time.Second))
				opts.DrawQR(item.Code, out)
				continue
			}
			if paired {
				continue
			}
			code, err := l.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
			if err != nil {
				l.Disconnect()
				return pairError(err)
			}
			paired = true
			fmt.Fprintf(out, "\nOn the phone +%s open the WhatsApp notification, or WhatsApp → Settings → Linked devices → "+
				"Link a device → Link with phone number instead, and type this code:\n\n    %s\n\nWaiting for the phone…\n", phone, code)
		case whatsmeow.QRChannelSuccess.Event:
			fmt.Fprintln(out, "\nThe phone accepted. Finishing the setup…")
			if !l.WaitForConnection(opts.SetupTimeout) {
				fmt.Fprintln(out, "The first connection is taking long; `cropshield serve` finishes it.")
			}
			l.Disconnect()
			return nil
		case whatsmeow.QRChannelTimeout.Event:
			l.Disconnect()
			what := "QR codes were"
			if phone != "" {
				what = "pairing code was"
			}
			return fmt.Errorf("%w: the %s not used in time; run the command again and have the phone at hand", ErrLinkTimeout, what)
		case whatsmeow.QRChannelClientOutdated.Event:
			l.Disconnect()
			return fmt.Errorf("%w: update go.mau.fi/whatsmeow and rebuild cropshield", ErrClientOutdated)
		case whatsmeow.QRChannelScannedWithoutMultidevice.Event:
			fmt.Fprintln(out, "The phone scanned the code but has linked devices turned off: update WhatsApp on the phone, then scan again.")
		case whatsmeow.QRChannelErrUnexpectedEvent.Event:
			l.Disconnect()
			return fmt.Errorf("%w: unexpected answer from WhatsApp (is this device linked already?)", ErrLinkFailed)
		case whatsmeow.QRChannelEventError:
			l.Disconnect()
			return fmt.Errorf("%w: %w", ErrLinkFailed, item.Error)
		}
	}
}

// pairError explains why WhatsApp refused to give a pairing code.
func pairError(err error) error {
	var iq *whatsmeow.IQError
	switch {
	case errors.Is(err, whatsmeow.ErrPhoneNumberTooShort), errors.Is(err, whatsmeow.ErrPhoneNumberIsNotInternational):
		return fmt.Errorf("%w: %w", ErrBadPhone, err)
	case errors.As(err, &iq) && iq.Code == 429:
		return fmt.Errorf("%w: WhatsApp is rate-limiting pairing codes for this number; wait an hour or more before "+
			"trying again, or scan a QR code instead (leave out --phone)", ErrRateLimited)
	case errors.As(err, &iq) && iq.Code == 400:
		return fmt.Errorf("%w: WhatsApp rejected the number (is it registered on WhatsApp?): %w", ErrLinkFailed, err)
	}
	return fmt.Errorf("%w: request a pairing code: %w", ErrLinkFailed, err)
}

// Status is what the store says about the linked device.
type Status struct {
	Linked   bool
	Phone    string // E.164
	LID      string
	PushName string
	Platform string
}

// ReadStatus reads the linked device without connecting.
func ReadStatus(ctx context.Context, st *Store) (Status, error) {
	d, err := st.Device(ctx)
	if err != nil {
		return Status{}, err
	}
	s := Status{}
	if d.ID != nil {
		s = Status{Linked: true, Phone: "+" + d.ID.User, PushName: d.PushName, Platform: d.Platform}
		if !d.LID.IsEmpty() {
			s.LID = d.LID.ToNonAD().String()
		}
	}
	return s, nil
}

// Unlinker is the part of *whatsmeow.Client that unlinking uses.
type Unlinker interface {
	Connect() error
	Disconnect()
	WaitForConnection(timeout time.Duration) bool
	Logout(ctx context.Context) error
}

// Unlink tells WhatsApp to remove the linked device and deletes its keys. When WhatsApp cannot be
// told (offline, or the phone removed the device already) the keys are deleted all the same and
// the returned warning says to check the phone's list of linked devices.
func Unlink(ctx context.Context, u Unlinker, device *store.Device, timeout time.Duration) (warning string, err error) {
	if device.ID == nil {
		return "", ErrNotLinked
	}
	var remote error
	if err := u.Connect(); err != nil {
		remote = err
	} else if !u.WaitForConnection(timeout) {
		remote = errors.New("no logged-in connection")
	} else {
		remote = u.Logout(ctx)
	}
	if remote == nil {
		return "", nil
	}
	u.Disconnect()
	if err := device.Delete(ctx); err != nil {
		return "", fmt.Errorf("%w: delete the device keys: %w", ErrStore, err)
	}
	return fmt.Sprintf("WhatsApp could not be told (%v): the keys are deleted here; on the phone open WhatsApp → "+
		"Settings → Linked devices and log the bot out there if it is still listed", remote), nil
}
