package whatsapp

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
	_ "github.com/lib/pq" // database/sql driver "postgres"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// Store is the WhatsApp side's SQL database: whatsmeow's device store (the linked device's keys,
// Signal sessions, contacts, LID↔phone map, decrypted-event buffer) and the adapter's own tables
// (the received messages, which replies quote and whose media keys download their photos, and
// each user's alternate id). The messages waiting to be answered are in the bot's intake, not
// here. It is SQLite in its own file
// beside the bbolt database, or PostgreSQL.
type Store struct {
	db        *sql.DB
	postgres  bool
	container *sqlstore.Container
	where     string // the location with any password removed, for messages
}

// SQLiteDSN is the modernc.org/sqlite data source name for a database file: foreign keys on
// (whatsmeow refuses to work without them), a busy timeout, WAL, fully synchronous commits (a
// message is acknowledged to WhatsApp only once its row is on disk) and write transactions that
// take the lock when they begin.
func SQLiteDSN(path string) string {
	return path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_txlock=immediate"
}

// OpenStore opens (creating and upgrading as needed) the store at location: a SQLite file path
// (its folder is created 0700, the file 0600) or a postgres:// URL.
func OpenStore(ctx context.Context, location string, log *slog.Logger) (*Store, error) {
	s := &Store{postgres: dburl.IsURL(location), where: dburl.Redact(location)}
	var err error
	if s.postgres {
		s.db, err = sql.Open("postgres", location)
	} else {
		if location == "" || strings.ContainsRune(location, '?') {
			return nil, fmt.Errorf("%w: SQLite path %q", ErrStore, location)
		}
		if err := os.MkdirAll(filepath.Dir(location), 0o700); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStore, err)
		}
		// Create the file 0600 ourselves: it holds the keys of the linked device.
		f, ferr := os.OpenFile(location, os.O_RDWR|os.O_CREATE, 0o600)
		if ferr != nil {
			return nil, fmt.Errorf("%w: %w", ErrStore, ferr)
		}
		if ferr := f.Close(); ferr != nil {
			return nil, fmt.Errorf("%w: %w", ErrStore, ferr)
		}
		s.db, err = sql.Open("sqlite", SQLiteDSN(location))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrStore, s.where, err)
	}
	dialect := "sqlite"
	if s.postgres {
		dialect = "postgres"
	}
	s.container = sqlstore.NewWithDB(s.db, dialect, newWALogger(log, "Database", false))
	if err := s.container.Upgrade(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("%w: upgrade device store in %s: %w", ErrStore, s.where, err), s.db.Close())
	}
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("%w: create adapter tables in %s: %w", ErrStore, s.where, err), s.db.Close())
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%w: close %s: %w", ErrStore, s.where, err)
	}
	return nil
}

// Container is whatsmeow's device container.
func (s *Store) Container() *sqlstore.Container { return s.container }

// Device returns the linked device, or a new unlinked one (ID nil) if none is linked yet.
func (s *Store) Device(ctx context.Context) (*store.Device, error) {
	d, err := s.container.GetFirstDevice(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: read device: %w", ErrStore, err)
	}
	return d, nil
}

func (s *Store) migrate(ctx context.Context) error {
	blob := "BLOB"
	if s.postgres {
		blob = "BYTEA"
	}
	for _, q := range []string{
		// The received messages: every message handed to the bot, recorded before WhatsApp gets
		// its receipt. state: 3 handed to the intake; from older versions, which kept their
		// own queue here, 0 pending (handed to the intake at the next start), 1 done, 2 failed.
		`CREATE TABLE IF NOT EXISTS cropshield_wa_inbox (
			chat_jid TEXT NOT NULL,
			msg_id   TEXT NOT NULL,
			chat_id  TEXT NOT NULL,
			seq      BIGINT NOT NULL,
			state    INTEGER NOT NULL DEFAULT 0,
			meta     TEXT NOT NULL,
			message  ` + blob + ` NOT NULL,
			PRIMARY KEY (chat_jid, msg_id)
		)`,
		`CREATE INDEX IF NOT EXISTS cropshield_wa_inbox_state ON cropshield_wa_inbox (state, seq)`,
		`CREATE INDEX IF NOT EXISTS cropshield_wa_inbox_chat ON cropshield_wa_inbox (chat_id, seq)`,
		// A user's alternate id: the phone-number JID of a LID, learnt from the messages.
		`CREATE TABLE IF NOT EXISTS cropshield_wa_ids (
			lid     TEXT PRIMARY KEY,
			pn      TEXT NOT NULL,
			updated BIGINT NOT NULL
		)`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// inboxRow is one received message as the inbox keeps it.
type inboxRow struct {
	ChatJID string // the chat as WhatsApp names it
	MsgID   string
	Seq     int64 // receive order
	Meta    meta
	Message []byte // the (unwrapped) waE2E.Message, protobuf
}

// meta is what the adapter decided about a message when it arrived, so that a message handed in
// again after a restart gets the same ids.
type meta struct {
	ChatID     string    `json:"chat_id"` // the canonical chat id handed to the handler
	Group      bool      `json:"group"`
	Sender     string    `json:"sender"`               // the sender's JID as WhatsApp gave it
	SenderID   string    `json:"sender_id"`            // the canonical user id
	Phone      string    `json:"phone,omitempty"`      // E.164
	PushName   string    `json:"push_name,omitempty"`  //
	Text       string    `json:"text,omitempty"`       // text or caption, bot mention removed
	ViewOnce   bool      `json:"view_once,omitempty"`  //
	Command    string    `json:"command,omitempty"`    // the slash command's name, if any
	FromMe     bool      `json:"from_me,omitempty"`    // for the media retry receipt
	Time       time.Time `json:"time"`                 // WhatsApp's timestamp
	Addressing string    `json:"addressing,omitempty"` // pn or lid
}

// insertInbox records a message; inserted is false if it was recorded before (delivered again).
func (s *Store) insertInbox(ctx context.Context, r inboxRow) (inserted bool, err error) {
	m, err := json.Marshal(r.Meta)
	if err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO cropshield_wa_inbox (chat_jid, msg_id, chat_id, seq, state, meta, message)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chat_jid, msg_id) DO NOTHING`,
		r.ChatJID, r.MsgID, r.Meta.ChatID, r.Seq, stateHanded, string(m), r.Message)
	if err != nil {
		return false, fmt.Errorf("%w: record message: %w", ErrStore, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%w: record message: %w", ErrStore, err)
	}
	return n == 1, nil
}

// Row states: statePending is a message the intake does not have yet: one an older version left
// unanswered in its own queue, or one received while the intake was full (feed hands it in);
// every other message received is stateHanded (the intake has it).
const (
	statePending = 0
	stateHanded  = 3
)

func (s *Store) setInboxState(ctx context.Context, chatJID, msgID string, state int) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE cropshield_wa_inbox SET state = $1 WHERE chat_jid = $2 AND msg_id = $3`,
		state, chatJID, msgID); err != nil {
		return fmt.Errorf("%w: mark message %s: %w", ErrStore, msgID, err)
	}
	return nil
}

// selectRows reads inbox rows; scanRow decodes one.
const selectRows = `SELECT chat_jid, msg_id, seq, meta, message FROM cropshield_wa_inbox `

func scanRow(sc interface{ Scan(...any) error }) (inboxRow, error) {
	var r inboxRow
	var m string
	if err := sc.Scan(&r.ChatJID, &r.MsgID, &r.Seq, &m, &r.Message); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(m), &r.Meta); err != nil {
		return r, fmt.Errorf("message %s: %w", r.MsgID, err)
	}
	return r, nil
}

// pendingInbox returns the messages the intake does not have yet (statePending), oldest first.
func (s *Store) pendingInbox(ctx context.Context) ([]inboxRow, error) {
	rows, err := s.db.QueryContext(ctx, selectRows+`WHERE state = $1 ORDER BY seq`, statePending)
	if err != nil {
		return nil, fmt.Errorf("%w: read pending messages: %w", ErrStore, err)
	}
	defer rows.Close()
	var out []inboxRow
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("%w: read pending messages: %w", ErrStore, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: read pending messages: %w", ErrStore, err)
	}
	return out, nil
}

// receivedMessage finds a received message by the chat's JID and the message id.
func (s *Store) receivedMessage(ctx context.Context, chatJID, msgID string) (inboxRow, error) {
	return s.oneRow(ctx, selectRows+`WHERE chat_jid = $1 AND msg_id = $2`, chatJID, msgID)
}

// inboxMessage finds a received message by the canonical chat id and message id.
func (s *Store) inboxMessage(ctx context.Context, chatID, msgID string) (inboxRow, error) {
	return s.oneRow(ctx, selectRows+`WHERE chat_id = $1 AND msg_id = $2`, chatID, msgID)
}

// oneRow reads the message query (selectRows and a condition on a chat, $1, and msg_id, $2)
// finds; errNotFound if there is none.
func (s *Store) oneRow(ctx context.Context, query, chat, msgID string) (inboxRow, error) {
	r, err := scanRow(s.db.QueryRowContext(ctx, query, chat, msgID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNotFound
	}
	if err != nil {
		return r, fmt.Errorf("%w: read message %s: %w", ErrStore, msgID, err)
	}
	return r, nil
}

// lastReceived is the JID a chat last wrote from and when (zero if never, as far as the inbox
// remembers).
func (s *Store) lastReceived(ctx context.Context, chatID string) (types.JID, time.Time, error) {
	var jid string
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT chat_jid, seq FROM cropshield_wa_inbox WHERE chat_id = $1
		ORDER BY seq DESC LIMIT 1`, chatID).Scan(&jid, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return types.EmptyJID, time.Time{}, nil
	}
	if err != nil {
		return types.EmptyJID, time.Time{}, fmt.Errorf("%w: read chat %s: %w", ErrStore, chatID, err)
	}
	j, err := types.ParseJID(jid)
	if err != nil {
		return types.EmptyJID, time.Time{}, fmt.Errorf("%w: stored chat JID %q: %w", ErrStore, jid, err)
	}
	return j, time.Unix(0, seq), nil
}

// pruneInbox deletes the messages received before before (those an older version left pending
// stay until they are handed to the intake).
func (s *Store) pruneInbox(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM cropshield_wa_inbox WHERE state <> $1 AND seq < $2`, statePending, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("%w: prune inbox: %w", ErrStore, err)
	}
	return res.RowsAffected()
}

// rememberPair keeps a user's LID and phone-number JID.
func (s *Store) rememberPair(ctx context.Context, lid, pn types.JID, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO cropshield_wa_ids (lid, pn, updated) VALUES ($1, $2, $3)
		ON CONFLICT (lid) DO UPDATE SET pn = excluded.pn, updated = excluded.updated`,
		lid.ToNonAD().String(), pn.ToNonAD().String(), now.UnixNano()); err != nil {
		return fmt.Errorf("%w: remember %s: %w", ErrStore, lid, err)
	}
	return nil
}

// phoneOf returns the phone-number JID kept for a LID, or the empty JID.
func (s *Store) phoneOf(ctx context.Context, lid types.JID) (types.JID, error) {
	var pn string
	err := s.db.QueryRowContext(ctx, `SELECT pn FROM cropshield_wa_ids WHERE lid = $1`, lid.ToNonAD().String()).Scan(&pn)
	if errors.Is(err, sql.ErrNoRows) {
		return types.EmptyJID, nil
	}
	if err != nil {
		return types.EmptyJID, fmt.Errorf("%w: look up %s: %w", ErrStore, lid, err)
	}
	j, err := types.ParseJID(pn)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("%w: stored phone JID %q: %w", ErrStore, pn, err)
	}
	return j, nil
}
