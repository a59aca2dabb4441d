package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestBackupFileWhileWriting(t *testing.T) {
	skipOnPG(t, "BackupFile copies the bbolt file (PostgreSQL has pg_dump)")
	ctx := context.Background()
	s := newTestStore(t, "")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.AppendMessage(ctx, Record{Time: testTime, Platform: "webchat", ChatID: fmt.Sprint("c", w), Direction: Inbound, Text: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	before := len(logged(t, s))
	path := filepath.Join(t.TempDir(), "backup.db")
	n, err := s.BackupFile(ctx, path)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != n || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	b, err := OpenReadOnly(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(logged(t, b)); got < before {
		t.Errorf("backup holds %d messages, %d were written before it began", got, before)
	}
	if _, err := b.AppendMessage(ctx, Record{Time: testTime, Platform: "webchat", ChatID: "x", Direction: Inbound}); err == nil {
		t.Error("a read-only store wrote")
	}
}

func TestOpenReadOnlyRefusesWhileServing(t *testing.T) {
	skipOnPG(t, "a read-only open of the file a server holds")
	ctx := context.Background()
	path := tempPath(t)
	s := newTestStore(t, path)
	if _, err := OpenReadOnly(ctx, path, Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrInUse) {
		t.Fatalf("read-only open while a writer holds the file: %v", err)
	}
	if _, err := OpenReadOnly(ctx, filepath.Join(t.TempDir(), "none.db"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	_ = s
}

func TestWriteFileAtomicKeepsTheOldFileOnFailure(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := WriteFileAtomic(ctx, path, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write: %v", err)
	}
	// A copy that is not a sound database is refused before it replaces anything.
	if _, err := WriteFileAtomic(ctx, path, func(w io.Writer) error {
		_, err := w.Write(make([]byte, 8192))
		return err
	}); err == nil {
		t.Fatal("a copy of zeros was accepted")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "old" {
		t.Errorf("the old file: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}
