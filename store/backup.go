package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// OpenReadOnly opens an existing database for reading only, sharing the file with other readers;
// it fails with ErrInUse (wrapping bbolt's timeout) when a writer (a running server) holds it
// beyond opts.Timeout. Nothing is created or migrated: a file written by a newer schema is
// refused with ErrNewerSchema.
func OpenReadOnly(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := notAFile("open read-only", path); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, boltOptions(opts, true))
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s: %w", ErrInUse, path, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{eng: &boltEngine{db: db, path: path}}
	var stored uint64
	err = db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
			if v := meta.Get([]byte(keySchemaVersion)); len(v) == 8 {
				stored = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	if err == nil && stored > SchemaVersion {
		err = fmt.Errorf("%w: %s has schema version %d, this build supports up to %d", ErrNewerSchema, path, stored, SchemaVersion)
	}
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return s, nil
}

// notAFile refuses a PostgreSQL URL where a bbolt file is needed, with ErrUnsupported.
func notAFile(op, target string) error {
	if dburl.IsURL(target) {
		return fmt.Errorf("%w: %s %s: only a bbolt file can be (use the database's own tools)", ErrUnsupported, op, dburl.Redact(target))
	}
	return nil
}

// boltOptions are the bbolt options for a timeout (Options.Timeout, else 5 s) and mode.
func boltOptions(opts Options, readOnly bool) *bolt.Options {
	bo := *bolt.DefaultOptions
	bo.Timeout = opts.Timeout
	if bo.Timeout <= 0 {
		bo.Timeout = defaultTimeout
	}
	bo.ReadOnly = readOnly
	bo.NoFreelistSync = true
	bo.FreelistType = bolt.FreelistMapType
	return &bo
}

// WriteFileAtomic writes a database copy to path: write fills a temporary file next to it, which
// is synced, checked (it opens as a bbolt database and passes bbolt's consistency check) and only
// then renamed to path (and the folder synced). A failed or cancelled copy leaves path as it was.
// It returns the copy's size.
func WriteFileAtomic(ctx context.Context, path string, write func(w io.Writer) error) (size int64, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	if err := write(f); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("store: backup: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("store: backup: close %s: %w", tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := CheckFile(ctx, tmp); err != nil {
		return 0, fmt.Errorf("store: backup: the copy is not sound: %w", err)
	}
	st, err := os.Stat(tmp)
	if err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	return st.Size(), syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync folder %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: sync folder %s: %w", dir, err)
	}
	return nil
}

// BackupFile writes a consistent copy of the open database to path (Backup into
// WriteFileAtomic): hot, while serving.
func (s *Store) BackupFile(ctx context.Context, path string) (int64, error) {
	return WriteFileAtomic(ctx, path, func(w io.Writer) error {
		_, err := s.Backup(ctx, w)
		return err
	})
}

// CheckFile opens a database file read-only (not one a server holds) and runs bbolt's consistency
// check over every page.
func CheckFile(ctx context.Context, path string) error {
	if err := notAFile("check", path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, boltOptions(Options{Timeout: time.Second}, true))
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			if err := ctx.Err(); err != nil {
				return err
			}
			errs = append(errs, e)
		}
		return errors.Join(errs...)
	})
	return errors.Join(err, db.Close())
}

// Check runs bbolt's consistency check on the open database.
// On PostgreSQL, whose pages are its own business, it checks nothing.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	be, ok := s.eng.(*boltEngine)
	if !ok {
		return nil
	}
	return wrapOp("check", be.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return errors.Join(errs...)
	}))
}

// compactTxSize is the bytes bbolt's Compact copies per transaction.
const compactTxSize = 64 << 20

// Compact rewrites the database at path into a new file without its free pages (bbolt's
// Compact), checks it and puts it in path's place, holding the file's lock throughout. It fails
// with ErrInUse if a server holds the file (compact is offline). It returns the sizes before and
// after.
func Compact(ctx context.Context, path string, opts Options) (before, after int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if err := notAFile("compact", path); err != nil {
		return 0, 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	before = fi.Size()
	src, err := bolt.Open(path, 0o600, boltOptions(opts, false))
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return 0, 0, fmt.Errorf("%w: %s: %w", ErrInUse, path, err)
		}
		return 0, 0, fmt.Errorf("store: compact: open %s: %w", path, err)
	}
	defer func() {
		if cerr := src.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("store: compact: close %s: %w", path, cerr))
		}
	}()
	after, err = WriteFileAtomic(ctx, path, func(w io.Writer) error {
		f, ok := w.(*os.File)
		if !ok {
			return fmt.Errorf("store: compact: not a file")
		}
		// bbolt compacts into a database of its own: open the temporary file as one.
		dst, err := bolt.Open(f.Name(), 0o600, boltOptions(opts, false))
		if err != nil {
			return fmt.Errorf("store: compact: %w", err)
		}
		if err := bolt.Compact(dst, src, compactTxSize); err != nil {
			return errors.Join(fmt.Errorf("store: compact: %w", err), dst.Close())
		}
		if err := dst.Close(); err != nil {
			return fmt.Errorf("store: compact: %w", err)
		}
		return nil
	})
	if err != nil {
		return before, 0, err
	}
	return before, after, nil
}
