package whatsapp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"
)

// TestStoreOpensAndUpgradesOnSQLite: a new file is created 0600 with foreign keys, WAL and the
// busy timeout in force, whatsmeow's schema upgraded to the latest version and the adapter's
// tables beside it; opening it again is a no-op that keeps a linked device.
func TestStoreOpensAndUpgradesOnSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "whatsapp.db")
	st, err := OpenStore(ctx, path, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v %v, want 0600", fi.Mode(), err)
	}
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"foreign_keys", "1"}, {"journal_mode", "wal"}, {"busy_timeout", "10000"}, {"synchronous", "2"},
	} {
		var got string
		if err := st.db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil || got != tc.want {
			t.Errorf("PRAGMA %s = %q (%v), want %q", tc.pragma, got, err, tc.want)
		}
	}
	var version int
	if err := st.db.QueryRowContext(ctx, "SELECT version FROM whatsmeow_version").Scan(&version); err != nil || version != len(upgrades.Table) {
		t.Errorf("whatsmeow schema version %d (%v), want %d", version, err, len(upgrades.Table))
	}
	for _, table := range []string{"whatsmeow_device", "whatsmeow_sessions", "whatsmeow_lid_map", "whatsmeow_event_buffer", "cropshield_wa_inbox", "cropshield_wa_ids"} {
		var n int
		if err := st.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1", table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d %v", table, n, err)
		}
	}
	// Not linked yet; link a device as pairing would.
	s, err := ReadStatus(ctx, st)
	if err != nil || s.Linked {
		t.Fatalf("status of a new store: %+v %v", s, err)
	}
	linkedDevice(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openTestStore(t, path)
	s, err = ReadStatus(ctx, st)
	want := Status{Linked: true, Phone: "+254700000001", LID: "111111111111111@lid", PushName: "CropShield", Platform: "android"}
	if err != nil || s != want {
		t.Fatalf("status after reopening: %+v %v, want %+v", s, err, want)
	}
}

// TestReceivedMessages: the table of received messages records each once, finds it for a quote
// and a download, knows where a chat last wrote from, hands over what an older version left
// pending in it, and prunes the old ones.
func TestReceivedMessages(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, "")
	at := time.Unix(1700000000, 0)
	row := func(chat, id string, seq int64) inboxRow {
		return inboxRow{ChatJID: chat, MsgID: id, Seq: at.Add(time.Duration(seq) * time.Second).UnixNano(),
			Meta: meta{ChatID: "c-" + chat, Sender: chat, SenderID: chat, Time: at}, Message: []byte{1, 2, 3}}
	}
	for _, tc := range []struct {
		r    inboxRow
		want bool
	}{
		{row("a@s.whatsapp.net", "1", 1), true},
		{row("a@s.whatsapp.net", "1", 5), false}, // delivered again
		{row("a@s.whatsapp.net", "2", 2), true},
		{row("b@s.whatsapp.net", "1", 3), true}, // ids are unique per chat only
	} {
		if got, err := st.insertInbox(ctx, tc.r); err != nil || got != tc.want {
			t.Fatalf("insert %s/%s: %v %v, want %v", tc.r.ChatJID, tc.r.MsgID, got, err, tc.want)
		}
	}
	if pending, err := st.pendingInbox(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("messages received now are the intake's, none pending here: %+v %v", pending, err)
	}
	// An older version left messages 2 and b/1 pending in its own queue: they are handed over.
	if _, err := st.db.ExecContext(ctx, `UPDATE cropshield_wa_inbox SET state = $1 WHERE NOT (chat_jid = 'a@s.whatsapp.net' AND msg_id = '1')`, statePending); err != nil {
		t.Fatal(err)
	}
	pending, err := st.pendingInbox(ctx)
	if err != nil || len(pending) != 2 || pending[0].MsgID != "2" || pending[1].ChatJID != "b@s.whatsapp.net" || pending[0].Meta.ChatID != "c-a@s.whatsapp.net" {
		t.Fatalf("pending %+v %v", pending, err)
	}
	if err := st.setInboxState(ctx, "b@s.whatsapp.net", "1", stateHanded); err != nil {
		t.Fatal(err)
	}
	if r, err := st.receivedMessage(ctx, "b@s.whatsapp.net", "1"); err != nil || r.Meta.ChatID != "c-b@s.whatsapp.net" {
		t.Errorf("received message %+v %v", r, err)
	}
	jid, last, err := st.lastReceived(ctx, "c-a@s.whatsapp.net")
	if err != nil || jid.String() != "a@s.whatsapp.net" || !last.Equal(at.Add(2*time.Second)) {
		t.Errorf("last received %v %v %v", jid, last, err)
	}
	if _, last, err := st.lastReceived(ctx, "nobody"); err != nil || !last.IsZero() {
		t.Errorf("last received of a stranger %v %v", last, err)
	}
	if n, err := st.pruneInbox(ctx, at.Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("pruned %d %v, want the 2 not left pending by an older version", n, err)
	}
	if _, err := st.inboxMessage(ctx, "c-a@s.whatsapp.net", "1"); !errors.Is(err, errNotFound) {
		t.Errorf("pruned message still found: %v", err)
	}
	if r, err := st.inboxMessage(ctx, "c-a@s.whatsapp.net", "2"); err != nil || r.Meta.Sender != "a@s.whatsapp.net" {
		t.Errorf("message %+v %v", r, err)
	}

	// Alternate ids.
	lid, pn := types.NewJID("222", types.HiddenUserServer), types.NewJID("254712345678", types.DefaultUserServer)
	if got, err := st.phoneOf(ctx, lid); err != nil || !got.IsEmpty() {
		t.Errorf("phone of an unknown LID: %v %v", got, err)
	}
	if err := st.rememberPair(ctx, lid, pn, at); err != nil {
		t.Fatal(err)
	}
	if err := st.rememberPair(ctx, lid, pn, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := st.phoneOf(ctx, lid); err != nil || got != pn {
		t.Errorf("phone of the LID: %v %v", got, err)
	}
}

// TestLocations: a PostgreSQL location is never shown with its passwords (in the user info or
// as a parameter), in the errors of a store that cannot be opened.
func TestLocations(t *testing.T) {
	for _, in := range []string{
		"postgres://bot:s3cret@127.0.0.1:1/cropshield?sslmode=disable&connect_timeout=2",
		"postgresql://bot@127.0.0.1:1/cs?password=s3cret&sslmode=disable&connect_timeout=2",
	} {
		_, err := OpenStore(context.Background(), in, testLogger)
		if err == nil {
			t.Fatalf("%q: opened a store where no server listens", in)
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("%q: error %q, want the password shown as xxxxx", in, err)
		}
	}
	if _, err := OpenStore(context.Background(), "bad?name.db", testLogger); err == nil {
		t.Error("a path with ? was accepted")
	}
}
