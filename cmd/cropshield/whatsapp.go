package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/mdp/qrterminal/v3"
	wastore "go.mau.fi/whatsmeow/store"

	"github.com/cropshield/cropshield/adapters/whatsapp"
	"github.com/cropshield/cropshield/internal/dburl"
)

// whatsappConfig is the WhatsApp channel's part of `serve`. The channel runs with --whatsapp
// (CROPSHIELD_WHATSAPP=true) once a phone is linked with `cropshield whatsapp link`.
type whatsappConfig struct {
	enabled        bool
	db             string
	groupPhotos    string
	diagnoseWord   string
	chatInterval   time.Duration
	globalInterval time.Duration
	replyWindow    time.Duration
}

func (c *whatsappConfig) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "whatsapp", false, "run the WhatsApp channel (link the bot's phone first: cropshield whatsapp link)")
	registerWhatsAppDB(fs, &c.db)
	fs.StringVar(&c.groupPhotos, "whatsapp-group-photos", "addressed", "photos answered in WhatsApp groups: addressed (mentioning the bot, or a caption starting with --whatsapp-diagnose-word) or all")
	fs.StringVar(&c.diagnoseWord, "whatsapp-diagnose-word", "/diagnose", "a caption starting with this word asks for a diagnosis in a WhatsApp group")
	fs.DurationVar(&c.chatInterval, "whatsapp-chat-interval", time.Second, "least time between two WhatsApp messages to one chat")
	fs.DurationVar(&c.globalInterval, "whatsapp-global-interval", 300*time.Millisecond, "least time between any two WhatsApp messages the bot sends")
	fs.DurationVar(&c.replyWindow, "whatsapp-reply-window", 7*24*time.Hour, "replies (also staff replies) go only to chats that wrote within this time")
}

// registerWhatsAppDB adds --whatsapp-db. Its value may be a postgres:// URL with a password, so
// it is never printed (see isSecret).
func registerWhatsAppDB(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "whatsapp-db", "", "WhatsApp device store: a SQLite file (default: whatsapp.db beside --db) or a postgres:// URL")
}

// checkWhatsAppDB refuses WhatsApp without --whatsapp-db when --db is a PostgreSQL URL: there
// is no folder to put whatsapp.db in.
func checkWhatsAppDB(enabled bool, flagValue, db string) error {
	if !enabled || flagValue != "" || !dburl.IsURL(db) {
		return nil
	}
	return fmt.Errorf("%w: --db is a PostgreSQL URL: give the WhatsApp store with --whatsapp-db (a SQLite file, or a postgres:// URL); replicas given the same one share the linked phone, and one at a time runs it (the others stand by)", errUsage)
}

// whatsappDBLocation is --whatsapp-db, or whatsapp.db beside the bbolt file.
func whatsappDBLocation(flagValue, bboltPath string) string {
	if flagValue != "" {
		return flagValue
	}
	return filepath.Join(filepath.Dir(bboltPath), "whatsapp.db")
}

func (c *whatsappConfig) options() (whatsapp.Options, error) {
	opts := whatsapp.Options{DiagnoseWord: c.diagnoseWord, ChatInterval: c.chatInterval, GlobalInterval: c.globalInterval,
		ReplyWindow: c.replyWindow}
	switch c.groupPhotos {
	case "addressed":
	case "all":
		opts.GroupAllPhotos = true
	default:
		return opts, fmt.Errorf("%w: --whatsapp-group-photos %q: want addressed or all", errUsage, c.groupPhotos)
	}
	// Pacing below these would make the bot look like a bulk sender.
	if c.chatInterval < 500*time.Millisecond || c.globalInterval < 100*time.Millisecond {
		return opts, fmt.Errorf("%w: --whatsapp-chat-interval must be at least 500ms and --whatsapp-global-interval at least 100ms (numbers that send fast get banned)", errUsage)
	}
	return opts, nil
}

// adapter opens the WhatsApp store and builds the adapter; users (the bot's store) is where a
// farmer known by LID moves to their phone-number id. closeStore closes the store after the
// adapter stopped. An unlinked device is not an error here: the adapter's Run reports it, so
// /healthz says what to do and the other channels keep serving.
func (c *whatsappConfig) adapter(ctx context.Context, log *slog.Logger, bboltPath string, users whatsapp.Users) (a *whatsapp.Adapter, closeStore func() error, err error) {
	opts, err := c.options()
	if err != nil {
		return nil, nil, err
	}
	opts.Users = users
	loc := whatsappDBLocation(c.db, bboltPath)
	wlog := log.With("adapter", "whatsapp")
	st, err := whatsapp.OpenStore(ctx, loc, wlog)
	if err != nil {
		return nil, nil, err
	}
	device, err := st.Device(ctx)
	if err != nil {
		return nil, nil, errors.Join(err, st.Close())
	}
	if device.ID == nil {
		wlog.Error("no phone linked for WhatsApp: run `cropshield whatsapp link` (then restart); the other channels keep serving", "db", dburl.Redact(loc))
	}
	client := whatsapp.WrapClient(whatsapp.NewWhatsmeowClient(device, wlog))
	return whatsapp.New(wlog, client, st, opts), st.Close, nil
}

const whatsappUsage = `usage:
  cropshield whatsapp link [--phone +254712345678]   link the bot's phone: scan the QR code shown, or with
                                                     --phone type the pairing code on that phone
  cropshield whatsapp status                         show the linked phone and the messages waiting
  cropshield whatsapp unlink                         log the bot out of WhatsApp and delete its keys

Each takes --db (default data/cropshield.db; the WhatsApp store is whatsapp.db beside it) or
--whatsapp-db (a SQLite file or a postgres:// URL; needed when --db is a postgres:// URL). Stop
'cropshield serve' before link or unlink.
`

// whatsappCmd links, shows and unlinks the bot's WhatsApp account.
func whatsappCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	sub, fs, args, err := subcommand("whatsapp", whatsappUsage, "link, status or unlink", args, stderr)
	if err != nil {
		return err
	}
	db := fs.String("db", defaultDB, "bbolt database file; the WhatsApp store defaults to whatsapp.db beside it")
	var waDB, phone, logLevel string
	registerWhatsAppDB(fs, &waDB)
	fs.StringVar(&logLevel, "log-level", "warn", "log level of the WhatsApp library: debug, info, warn or error")
	timeout := 3 * time.Minute
	switch sub {
	case "link":
		fs.StringVar(&phone, "phone", "", "the bot's phone number in international form (+254712345678): show a pairing code to type on it instead of a QR code")
		fs.DurationVar(&timeout, "timeout", timeout, "how long to wait for the phone")
	case "status", "unlink":
	default:
		fmt.Fprint(stderr, whatsappUsage)
		return fmt.Errorf("%w: unknown whatsapp subcommand %q", errUsage, sub)
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: whatsapp %s takes no arguments, got %q", errUsage, sub, fs.Args())
	}
	if phone != "" {
		if _, err := whatsapp.ParsePhone(phone); err != nil {
			return fmt.Errorf("%w: --phone: %w", errUsage, err)
		}
	}
	if err := checkWhatsAppDB(true, waDB, *db); err != nil {
		return err
	}
	log, err := newLogger(stderr, "text", logLevel)
	if err != nil {
		return err
	}
	loc := whatsappDBLocation(waDB, *db)
	st, err := whatsapp.OpenStore(ctx, loc, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	switch sub {
	case "status":
		return whatsappStatus(ctx, st, loc, stdout)
	case "link":
		return whatsappLink(ctx, st, log, phone, timeout, stdout)
	default:
		return whatsappUnlink(ctx, st, log, stdout)
	}
}

func whatsappStatus(ctx context.Context, st *whatsapp.Store, loc string, stdout io.Writer) error {
	s, err := whatsapp.ReadStatus(ctx, st)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store:    %s\n", dburl.Redact(loc))
	if !s.Linked {
		fmt.Fprintf(stdout, "linked:   no (run: cropshield whatsapp link)\n")
	} else {
		fmt.Fprintf(stdout, "linked:   %s", s.Phone)
		if s.PushName != "" {
			fmt.Fprintf(stdout, " (%s)", s.PushName)
		}
		fmt.Fprintln(stdout)
		if s.LID != "" {
			fmt.Fprintf(stdout, "lid:      %s\n", s.LID)
		}
		if s.Platform != "" {
			fmt.Fprintf(stdout, "phone os: %s\n", s.Platform)
		}
	}
	return nil
}

func whatsappLink(ctx context.Context, st *whatsapp.Store, log *slog.Logger, phone string, timeout time.Duration, stdout io.Writer) error {
	device, err := st.Device(ctx)
	if err != nil {
		return err
	}
	if device.ID != nil {
		return fmt.Errorf("%w: +%s; run `cropshield whatsapp unlink` first to link another phone", whatsapp.ErrAlreadyLinked, device.ID.User)
	}
	// The name the phone lists under Linked devices. whatsmeow keeps it in a package variable
	// that the pairing reads; this command is the only user in the process.
	wastore.SetOSInfo("CropShield", [3]uint32{1, 0, 0})
	client := whatsapp.NewWhatsmeowClient(device, log)
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = whatsapp.Link(lctx, client, whatsapp.LinkOptions{Phone: phone, Out: stdout,
		DrawQR: func(code string, w io.Writer) { qrterminal.GenerateHalfBlock(code, qrterminal.L, w) }})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Linked: the bot answers as +%s once `cropshield serve --whatsapp` runs.\n"+
		"Keep that phone switched on, with WhatsApp and mobile data, and open WhatsApp on it at least every two weeks:\n"+
		"a phone offline for about 14 days logs its linked devices out.\n", client.Store.ID.User)
	return nil
}

func whatsappUnlink(ctx context.Context, st *whatsapp.Store, log *slog.Logger, stdout io.Writer) error {
	device, err := st.Device(ctx)
	if err != nil {
		return err
	}
	if device.ID == nil {
		return fmt.Errorf("%w: nothing to unlink", whatsapp.ErrNotLinked)
	}
	phone := device.ID.User
	client := whatsapp.NewWhatsmeowClient(device, log)
	warning, err := whatsapp.Unlink(ctx, client, device, 30*time.Second)
	if err != nil {
		return err
	}
	if warning != "" {
		fmt.Fprintln(stdout, warning)
	}
	fmt.Fprintf(stdout, "Unlinked +%s.\n", phone)
	return nil
}
