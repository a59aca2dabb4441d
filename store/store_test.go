package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// testTime is a fixed instant so tests never depend on the clock.
var testTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// tempPath returns a database path in a fresh temporary directory.
func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "cropshield.db")
}

// newTestStore opens the database at path (a bbolt file or a PostgreSQL URL), or a fresh one
// if path is empty (newTarget: a bbolt file, or a PostgreSQL database on that backend). At
// cleanup it checks the database's consistency and closes it.
func newTestStore(t testing.TB, path string) *Store {
	t.Helper()
	if path == "" {
		path = newTarget(t)
	}
	s, err := Open(context.Background(), path, Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Check(context.Background()); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// setSchemaVersion writes a schema version straight into a closed database.
func setSchemaVersion(t *testing.T, target string, v uint64) {
	t.Helper()
	setMeta(t, target, binary.BigEndian.AppendUint64(nil, v))
}

// setMeta writes the schema version's raw bytes into a closed database: into the bbolt file, or
// through the engine into a PostgreSQL database (created by an Open first).
func setMeta(t *testing.T, target string, v []byte) {
	t.Helper()
	if dburl.IsURL(target) {
		s, err := Open(t.Context(), target, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.eng.update(t.Context(), func(tx Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), v)
		})
		if err := errors.Join(err, s.Close()); err != nil {
			t.Fatal(err)
		}
		return
	}
	db, err := bolt.Open(target, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return b.Put([]byte(keySchemaVersion), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenNewFile(t *testing.T) {
	path := newTarget(t)
	s := newTestStore(t, path)

	if !onPG() { // a file's mode
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("file mode = %v, want 0600", got)
		}
	}
	err := s.eng.view(context.Background(), func(tx Tx) error {
		for _, name := range allBuckets() {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing", name)
			}
		}
		v := tx.Bucket([]byte(bucketMeta)).Get([]byte(keySchemaVersion))
		if len(v) != 8 || binary.BigEndian.Uint64(v) != SchemaVersion {
			t.Errorf("schema version = %x, want %d", v, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenSchemaVersion(t *testing.T) {
	tests := []struct {
		name    string
		version uint64
		wantErr error
	}{
		{"current", SchemaVersion, nil},
		{"newer", SchemaVersion + 1, ErrNewerSchema},
		{"much newer", SchemaVersion + 41, ErrNewerSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newTarget(t)
			setSchemaVersion(t, path, tt.version)
			before := snapshot(t, path)

			s, err := Open(t.Context(), path, Options{Timeout: time.Second})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if s != nil {
				t.Errorf("Open returned a store with an error")
			}
			msg := err.Error()
			for _, want := range []string{path, strconv.FormatUint(tt.version, 10), strconv.Itoa(SchemaVersion)} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if after := snapshot(t, path); !bytes.Equal(before, after) {
				t.Errorf("Open modified a database with a newer schema")
			}
			if onPG() {
				return
			}
			// The lock was released: the file can be opened again directly.
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("file still locked after failed Open: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenMalformedSchemaVersion(t *testing.T) {
	path := newTarget(t)
	setMeta(t, path, []byte("1"))
	if s, err := Open(t.Context(), path, Options{}); err == nil {
		_ = s.Close()
		t.Fatal("Open accepted a malformed schema version")
	}
}

func TestOpenCompleteFileIsNotRewritten(t *testing.T) {
	path := newTarget(t)
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, path)
	newTestStore(t, path)
	if after := snapshot(t, path); !bytes.Equal(before, after) {
		t.Errorf("reopening a complete database wrote to it")
	}
}

func TestOpenLockedFileTimesOut(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		timeout time.Duration // context deadline, 0 for none
		wantCtx error
	}{
		{"options timeout", Options{Timeout: 100 * time.Millisecond}, 0, nil},
		{"context deadline shorter than timeout", Options{}, 100 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skipOnPG(t, "a second Open waits for the file's lock (a PostgreSQL database is shared)")
			path := tempPath(t)
			newTestStore(t, path)

			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			s, err := Open(ctx, path, tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("second Open of a locked file succeeded")
			}
			if !errors.Is(err, berrors.ErrTimeout) {
				t.Errorf("error = %v, want bbolt ErrTimeout", err)
			}
			if tt.wantCtx != nil && !errors.Is(err, tt.wantCtx) {
				t.Errorf("error = %v, want %v", err, tt.wantCtx)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

func TestOpenInvalidPath(t *testing.T) {
	if _, err := Open(t.Context(), "", Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open(\"\") error = %v, want ErrInvalid", err)
	}
	missingDir := filepath.Join(t.TempDir(), "no", "such", "dir", "db")
	if _, err := Open(t.Context(), missingDir, Options{}); err == nil {
		t.Errorf("Open in a missing directory succeeded")
	}
}

// cancelledCalls lists a call of every context-taking method.
func cancelledCalls(s *Store, newPath string) map[string]func(context.Context) error {
	chat := Chat{Platform: "telegram", ID: "1"}
	user := User{Platform: "telegram", ID: "1"}
	rec := Record{Platform: "telegram", ChatID: "1", Direction: Inbound, Seq: 1}
	return map[string]func(context.Context) error{
		"Open": func(ctx context.Context) error {
			_, err := Open(ctx, newPath, Options{})
			return err
		},
		"Backup": func(ctx context.Context) error { _, err := s.Backup(ctx, new(bytes.Buffer)); return err },
		"PutAnalysis": func(ctx context.Context) error {
			return s.PutAnalysis(ctx, Analysis{PhotoHash: "h", ModelVersion: "v1"}, nil, "")
		},
		"GetAnalysis":   func(ctx context.Context) error { _, err := s.GetAnalysis(ctx, "h", "v1"); return err },
		"CountAnalyses": func(ctx context.Context) error { _, err := s.CountAnalyses(ctx); return err },
		"PutAnalysis with photo": func(ctx context.Context) error {
			return s.PutAnalysis(ctx, Analysis{PhotoHash: "h", ModelVersion: "v1"}, []byte{1}, "image/jpeg")
		},
		"GetPhoto":     func(ctx context.Context) error { _, _, err := s.GetPhoto(ctx, "h"); return err },
		"PutContentID": func(ctx context.Context) error { return s.PutContentID(ctx, "telegram", "c", "h") },
		"LookupContentID": func(ctx context.Context) error {
			_, err := s.LookupContentID(ctx, "telegram", "c")
			return err
		},
		"TouchChat":       func(ctx context.Context) error { _, err := s.TouchChat(ctx, chat, testTime); return err },
		"TouchUser":       func(ctx context.Context) error { _, err := s.TouchUser(ctx, user, testTime); return err },
		"GetChat":         func(ctx context.Context) error { _, err := s.GetChat(ctx, "telegram", "1"); return err },
		"GetUser":         func(ctx context.Context) error { _, err := s.GetUser(ctx, "telegram", "1"); return err },
		"SetChatLanguage": func(ctx context.Context) error { return s.SetChatLanguage(ctx, "telegram", "1", "fr") },
		"SetUserLanguage": func(ctx context.Context) error { return s.SetUserLanguage(ctx, "telegram", "1", "fr") },
		"AppendMessage":   func(ctx context.Context) error { _, err := s.AppendMessage(ctx, rec); return err },
		"UpdateMessage":   func(ctx context.Context) error { return s.UpdateMessage(ctx, rec) },
		"Messages": func(ctx context.Context) error {
			_, err := s.Messages(ctx, "telegram", "1", 0, 10)
			return err
		},
		"RecentMessages": func(ctx context.Context) error {
			_, err := s.RecentMessages(ctx, "telegram", "1", 10)
			return err
		},
		"MigrateChat": func(ctx context.Context) error {
			_, err := s.MigrateChat(ctx, "telegram", "1", "2", testTime)
			return err
		},
		"MigrateUser": func(ctx context.Context) error {
			_, err := s.MigrateUser(ctx, "whatsapp", "1@lid", "2@s.whatsapp.net", testTime)
			return err
		},
	}
}

func TestCancelledContext(t *testing.T) {
	s := newTestStore(t, "")
	newPath := tempPath(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range cancelledCalls(s, newPath) {
		t.Run(name, func(t *testing.T) {
			if err := call(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
		})
	}
	// Nothing was written.
	if _, _, err := s.GetPhoto(t.Context(), "h"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetPhoto after cancelled PutAnalysis: %v, want ErrNotFound", err)
	}
	if _, err := s.GetChat(t.Context(), "telegram", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetChat after cancelled TouchChat: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(newPath); err == nil {
		t.Errorf("Open with a cancelled context created its file")
	}
}

func TestInvalidArguments(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	if _, err := s.TouchChat(ctx, Chat{Platform: "telegram", ID: "1"}, testTime); err != nil {
		t.Fatal(err)
	}
	rec := Record{Platform: "telegram", ChatID: "1", Direction: Inbound}
	withRec := func(f func(*Record)) Record { r := rec; f(&r); return r }
	tests := []struct {
		name string
		call func() error
	}{
		{"PutAnalysis empty hash", func() error { return s.PutAnalysis(ctx, Analysis{ModelVersion: "v1"}, nil, "") }},
		{"PutAnalysis empty model", func() error { return s.PutAnalysis(ctx, Analysis{PhotoHash: "h"}, nil, "") }},
		{"PutAnalysis NaN prob", func() error {
			return s.PutAnalysis(ctx, Analysis{PhotoHash: "h", ModelVersion: "v1", Top: []Candidate{{"x", math.NaN()}}}, nil, "")
		}},
		{"GetAnalysis empty hash", func() error { _, err := s.GetAnalysis(ctx, "", "v1"); return err }},
		{"GetAnalysis empty model", func() error { _, err := s.GetAnalysis(ctx, "h", ""); return err }},
		{"PutAnalysis with photo, empty hash", func() error {
			return s.PutAnalysis(ctx, Analysis{ModelVersion: "v1"}, []byte{1}, "image/jpeg")
		}},
		{"GetPhoto empty hash", func() error { _, _, err := s.GetPhoto(ctx, ""); return err }},
		{"PutContentID empty platform", func() error { return s.PutContentID(ctx, "", "c", "h") }},
		{"PutContentID NUL content id", func() error { return s.PutContentID(ctx, "telegram", "a\x00b", "h") }},
		{"PutContentID empty hash", func() error { return s.PutContentID(ctx, "telegram", "c", "") }},
		{"LookupContentID empty id", func() error { _, err := s.LookupContentID(ctx, "telegram", ""); return err }},
		{"TouchChat NUL platform", func() error {
			_, err := s.TouchChat(ctx, Chat{Platform: "tele\x00gram", ID: "1"}, testTime)
			return err
		}},
		{"TouchChat empty id", func() error { _, err := s.TouchChat(ctx, Chat{Platform: "telegram"}, testTime); return err }},
		{"TouchUser NUL id", func() error {
			_, err := s.TouchUser(ctx, User{Platform: "telegram", ID: "1\x00"}, testTime)
			return err
		}},
		{"GetChat empty platform", func() error { _, err := s.GetChat(ctx, "", "1"); return err }},
		{"GetUser NUL id", func() error { _, err := s.GetUser(ctx, "telegram", "\x00"); return err }},
		{"SetChatLanguage NUL id", func() error { return s.SetChatLanguage(ctx, "telegram", "1\x002", "fr") }},
		{"SetUserLanguage empty id", func() error { return s.SetUserLanguage(ctx, "telegram", "", "fr") }},
		{"MigrateChat to itself", func() error { _, err := s.MigrateChat(ctx, "telegram", "1", "1", testTime); return err }},
		{"MigrateChat empty new id", func() error { _, err := s.MigrateChat(ctx, "telegram", "1", "", testTime); return err }},
		{"MigrateUser to itself", func() error { _, err := s.MigrateUser(ctx, "whatsapp", "1@lid", "1@lid", testTime); return err }},
		{"MigrateUser NUL new id", func() error {
			_, err := s.MigrateUser(ctx, "whatsapp", "1@lid", "2\x00", testTime)
			return err
		}},
		{"MigrateUser empty old id", func() error { _, err := s.MigrateUser(ctx, "whatsapp", "", "2", testTime); return err }},
		{"AppendMessage empty chat", func() error {
			_, err := s.AppendMessage(ctx, withRec(func(r *Record) { r.ChatID = "" }))
			return err
		}},
		{"AppendMessage bad direction", func() error {
			_, err := s.AppendMessage(ctx, withRec(func(r *Record) { r.Direction = "sideways" }))
			return err
		}},
		{"AppendMessage year 10000", func() error {
			_, err := s.AppendMessage(ctx, withRec(func(r *Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }))
			return err
		}},
		{"UpdateMessage NUL chat", func() error {
			return s.UpdateMessage(ctx, withRec(func(r *Record) { r.ChatID = "\x00"; r.Seq = 1 }))
		}},
		{"Messages zero limit", func() error { _, err := s.Messages(ctx, "telegram", "1", 0, 0); return err }},
		{"Messages NUL chat", func() error { _, err := s.Messages(ctx, "telegram", "\x00", 0, 1); return err }},
		{"RecentMessages negative limit", func() error { _, err := s.RecentMessages(ctx, "telegram", "1", -1); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrInvalid) {
				t.Errorf("error = %v, want ErrInvalid", err)
			}
		})
	}
	if n, err := s.CountAnalyses(ctx); err != nil || n != 0 {
		t.Errorf("CountAnalyses after invalid puts = %d, %v; want 0", n, err)
	}
}

// populate writes one of everything and returns what it wrote.
type fixture struct {
	analysis Analysis
	photo    []byte
	chat     Chat
	user     User
	records  []Record
}

func populate(t *testing.T, s *Store) fixture {
	t.Helper()
	ctx := t.Context()
	f := fixture{
		analysis: Analysis{
			PhotoHash:    strings.Repeat("ab", 32),
			ModelVersion: "mobilenetv3-2025.06",
			Top:          []Candidate{{"Tomato___Late_blight", 0.91}, {"Tomato___Early_blight", 0.06}, {"Tomato___healthy", 0.01}},
			Overlay:      bytes.Repeat([]byte{0xff, 0xd8, 0x42}, 1000),
			InferenceMS:  37.5,
			CreatedAt:    testTime,
		},
		photo: bytes.Repeat([]byte("photo"), 500),
	}
	if err := s.PutAnalysis(ctx, f.analysis, f.photo, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContentID(ctx, "telegram", "AQADuniq", f.analysis.PhotoHash); err != nil {
		t.Fatal(err)
	}
	var err error
	if _, err = s.TouchChat(ctx, Chat{Platform: "telegram", ID: "-100", Kind: "group", Title: "Growers"}, testTime); err != nil {
		t.Fatal(err)
	}
	if err := s.SetChatLanguage(ctx, "telegram", "-100", "sw"); err != nil {
		t.Fatal(err)
	}
	if f.chat, err = s.GetChat(ctx, "telegram", "-100"); err != nil {
		t.Fatal(err)
	}
	if _, err = s.TouchUser(ctx, User{Platform: "telegram", ID: "42", Name: "Amina", LangHint: "en"}, testTime); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserLanguage(ctx, "telegram", "42", "fr"); err != nil {
		t.Fatal(err)
	}
	if f.user, err = s.GetUser(ctx, "telegram", "42"); err != nil {
		t.Fatal(err)
	}
	for i, r := range []Record{
		{Time: testTime, Platform: "telegram", ChatID: "-100", Direction: Inbound, SenderID: "42", SenderName: "Amina", MessageID: "7"},
		{Time: testTime.Add(time.Second), Platform: "telegram", ChatID: "-100", Direction: Outbound, Text: "Late blight", ReplyTo: "7"},
	} {
		seq, err := s.AppendMessage(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = seq
		if i == 0 {
			r.PhotoHash = f.analysis.PhotoHash
			if err := s.UpdateMessage(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		f.records = append(f.records, r)
	}
	return f
}

// verify checks that s holds everything in f.
func (f fixture) verify(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	a, err := s.GetAnalysis(ctx, f.analysis.PhotoHash, f.analysis.ModelVersion)
	if err != nil {
		t.Fatalf("GetAnalysis: %v", err)
	}
	assertAnalysis(t, a, f.analysis)
	if n, err := s.CountAnalyses(ctx); err != nil || n != 1 {
		t.Errorf("CountAnalyses = %d, %v; want 1", n, err)
	}
	data, mime, err := s.GetPhoto(ctx, f.analysis.PhotoHash)
	if err != nil || !bytes.Equal(data, f.photo) || mime != "image/jpeg" {
		t.Errorf("GetPhoto = %d bytes, %q, %v; want %d bytes, image/jpeg", len(data), mime, err, len(f.photo))
	}
	if h, err := s.LookupContentID(ctx, "telegram", "AQADuniq"); err != nil || h != f.analysis.PhotoHash {
		t.Errorf("LookupContentID = %q, %v", h, err)
	}
	if c, err := s.GetChat(ctx, "telegram", "-100"); err != nil || c != f.chat || c.Language != "sw" {
		t.Errorf("GetChat = %+v, %v; want %+v", c, err, f.chat)
	}
	if u, err := s.GetUser(ctx, "telegram", "42"); err != nil || u != f.user || u.Language != "fr" {
		t.Errorf("GetUser = %+v, %v; want %+v", u, err, f.user)
	}
	got, err := s.Messages(ctx, "telegram", "-100", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	assertRecords(t, got, f.records)
}

func TestReopenKeepsEverything(t *testing.T) {
	path := newTarget(t)
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := populate(t, s)
	f.verify(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f.verify(t, newTestStore(t, path))
}

func TestBackup(t *testing.T) {
	skipOnPG(t, "Backup copies the bbolt file (PostgreSQL has pg_dump)")
	s := newTestStore(t, "")
	f := populate(t, s)

	backupPath := filepath.Join(t.TempDir(), "backup.db")
	out, err := os.OpenFile(backupPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Backup(t.Context(), out)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(backupPath)
	if err != nil {
		t.Fatal(err)
	}
	if n != fi.Size() {
		t.Errorf("Backup returned %d bytes, file has %d", n, fi.Size())
	}
	f.verify(t, newTestStore(t, backupPath))
	// The original is still usable.
	f.verify(t, s)
}

// cancellingWriter cancels its context after the first write.
type cancellingWriter struct {
	cancel context.CancelFunc
	n      int
}

func (w *cancellingWriter) Write(p []byte) (int, error) {
	w.cancel()
	w.n += len(p)
	return len(p), nil
}

func TestBackupCancelledMidway(t *testing.T) {
	skipOnPG(t, "Backup copies the bbolt file (PostgreSQL has pg_dump)")
	s := newTestStore(t, "")
	populate(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &cancellingWriter{cancel: cancel}
	n, err := s.Backup(ctx, w)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Backup error = %v, want context.Canceled", err)
	}
	if int64(w.n) != n {
		t.Errorf("Backup reported %d bytes, writer got %d", n, w.n)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := Open(t.Context(), newTarget(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = s.GetChat(t.Context(), "telegram", "1")
	if !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Errorf("GetChat on a closed store: %v, want ErrDatabaseNotOpen", err)
	}
}

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "cropshield")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "cropshield.db"), Options{Timeout: time.Second})
	if err != nil {
		panic(err)
	}
	_, err = s.GetAnalysis(ctx, "0f1e", "v1")
	fmt.Println(errors.Is(err, ErrNotFound))
	if err := s.Close(); err != nil {
		panic(err)
	}
	// Output: true
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestBackupWriterError(t *testing.T) {
	skipOnPG(t, "Backup copies the bbolt file (PostgreSQL has pg_dump)")
	s := newTestStore(t, "")
	errDiskFull := errors.New("disk full")
	if _, err := s.Backup(t.Context(), failingWriter{errDiskFull}); !errors.Is(err, errDiskFull) {
		t.Errorf("Backup error = %v, want it to wrap the writer's error", err)
	}
}
