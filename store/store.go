// Package store persists CropShield's state in a single bbolt file or in a
// PostgreSQL database (Open takes a path or a postgres:// URL): analyses keyed by photo hash (with their Grad-CAM overlays), the photos
// themselves, an index from platform content ids to photo hashes, chats and
// users with their language preferences, and one message log per chat.
// For the review dashboard it also keeps a summary of each conversation
// (updated in the same transaction as each message, indexed by last
// activity), staff corrections by photo hash, daily statistics, and staff
// accounts and sessions with an audit log of administrative actions
// (summary.go, staff.go, staffadmin.go). The analysis cache (analyses and
// overlays) can be cleared without touching anything else (cache.go).
//
// Every method takes a context first and returns ctx.Err() without touching
// the database if the context is already done. Byte slices returned by the
// store are copies and stay valid after the transaction that read them.
// Records are encoded as JSON; binary blobs (photos, overlays) live in their
// own buckets.
//
// One process owns a bbolt file: Open takes an exclusive lock and gives up
// after Options.Timeout instead of waiting forever. A PostgreSQL database is
// shared by any number of processes (replicas); the store's logic is the
// same code on both engines (kv.go), with write transactions serialized on
// both.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors returned by the store. Callers test them with errors.Is; the
// returned errors wrap them with the details.
var (
	// ErrNotFound reports that the requested record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrNewerSchema reports a database written by a newer CropShield.
	ErrNewerSchema = errors.New("store: database written by a newer version of CropShield")
	// ErrInvalid reports an invalid argument: an empty hash, an empty id, an
	// id containing NUL, a non-positive limit, an unencodable value...
	ErrInvalid = errors.New("store: invalid argument")
	// ErrExists reports that a record to be created exists already.
	ErrExists = errors.New("store: already exists")
	// ErrInUse reports that another process (a running server) holds the database file.
	ErrInUse = errors.New("store: database in use by another process")
	// ErrUnsupported reports an operation the database's engine does not offer (a bbolt file
	// backup on PostgreSQL, say).
	ErrUnsupported = errors.New("store: not supported by this database")
)

// SchemaVersion is the version of the on-disk layout written by this build.
const SchemaVersion = 1

// defaultTimeout is the lock wait used when Options.Timeout is not positive.
const defaultTimeout = 5 * time.Second

// Top-level bucket names.
const (
	bucketMeta       = "meta"
	bucketAnalyses   = "analyses"   // photo hash → analysisRec (JSON)
	bucketOverlays   = "overlays"   // photo hash → overlay JPEG
	bucketPhotos     = "photos"     // photo hash → photo bytes
	bucketPhotoMeta  = "photo_meta" // photo hash → photoRec (JSON)
	bucketContentIDs = "content_ids"
	bucketChats      = "chats"
	bucketUsers      = "users"
	bucketMessages   = "messages" // chat key → nested bucket: seq → msgRec (JSON)
	bucketTurns      = "turns"    // platform, chat, message id → turnRec (JSON)

	keySchemaVersion = "schema_version" // in bucketMeta, big-endian uint64
)

// allBuckets lists the top-level buckets Open creates.
func allBuckets() []string {
	return []string{
		bucketMeta, bucketAnalyses, bucketOverlays, bucketPhotos, bucketPhotoMeta,
		bucketContentIDs, bucketChats, bucketUsers, bucketMessages, bucketTurns,
		bucketInbox, bucketInboxOffsets,
		bucketSummaries, bucketSummaryIndex, bucketCorrections, bucketStaffActions, bucketDailyStats,
		bucketStaff, bucketStaffSessions, bucketCropQuestions, bucketPhotoSent, bucketForgetPending, bucketRefsPending,
	}
}

// Options configures Open.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// Store (in this or another process), or, on PostgreSQL, for a
	// connection. Zero or negative means 5s.
	Timeout time.Duration
	// PoolSize is the most connections a Store opens to PostgreSQL at once
	// (transactions beyond it wait for one; write transactions, queued for
	// the write lock, take half of them at most, leaving the rest to reads).
	// Zero or negative means 8. bbolt ignores it.
	PoolSize int
	// QueryTimeout bounds each PostgreSQL transaction whose context has no
	// deadline. Zero or negative means 30s. bbolt ignores it.
	QueryTimeout time.Duration
}

// Store is a CropShield database. It is safe for concurrent use.
type Store struct {
	eng engine
}

// Open opens the database at target: a PostgreSQL database if target is a
// postgres:// or postgresql:// URL, else a bbolt file.
//
// A bbolt file is created if needed with file mode 0600. Open creates the
// buckets and, on a new database, records SchemaVersion. A database whose
// stored schema version is greater than SchemaVersion is left untouched and
// Open returns an error wrapping ErrNewerSchema. If the file's lock cannot
// be taken within opts.Timeout Open fails with an error wrapping bbolt's
// errors.ErrTimeout; if ctx's deadline comes first, the error also wraps
// context.DeadlineExceeded.
//
// On PostgreSQL Open first applies the SQL migrations this build has and the
// database lacks (store/migrations, recorded in schema_migrations, under an
// advisory lock so that replicas starting together do not race); a database
// migrated by a newer build is refused with ErrNewerSchema. Any number of
// Stores, in any number of processes, may share the database: their write
// transactions run one at a time, as bbolt's do. Messages and errors show
// the URL without its password.
func Open(ctx context.Context, target string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if target == "" {
		return nil, fmt.Errorf("%w: empty database path", ErrInvalid)
	}
	if dburl.IsURL(target) {
		return openPostgres(ctx, target, opts)
	}
	path := target
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	byDeadline := false
	if deadline, ok := ctx.Deadline(); ok {
		if d := time.Until(deadline); d < timeout {
			timeout = max(d, time.Millisecond) // bbolt waits forever on 0
			byDeadline = true
		}
	}
	bo := *bolt.DefaultOptions
	bo.Timeout = timeout
	// The freelist is rebuilt from the pages on open instead of written with every commit: fewer
	// pages per fsync on the message path (etcd runs bbolt this way).
	bo.NoFreelistSync = true
	bo.FreelistType = bolt.FreelistMapType
	db, err := bolt.Open(path, 0o600, &bo)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("store: open %s: %w: %w", path, cerr, err)
		}
		if byDeadline && errors.Is(err, berrors.ErrTimeout) {
			// bbolt gives up just before the deadline it was given.
			return nil, fmt.Errorf("store: open %s: %w: %w", path, context.DeadlineExceeded, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{eng: &boltEngine{db: db, path: path}}
	if err := s.init(context.WithoutCancel(ctx)); err != nil {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("store: close %s: %w", path, cerr))
		}
		return nil, err
	}
	return s, nil
}

// openPostgres is Open for a PostgreSQL URL.
func openPostgres(ctx context.Context, url string, opts Options) (*Store, error) {
	pe, err := openPG(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{eng: pe}
	if err := s.init(context.WithoutCancel(ctx)); err != nil {
		return nil, errors.Join(err, pe.close())
	}
	return s, nil
}

// init checks the schema version and creates what is missing. It writes
// nothing when the file is already complete, and nothing at all when the
// file comes from a newer schema.
func (s *Store) init(ctx context.Context) error {
	var stored uint64
	complete := true
	err := s.eng.view(ctx, func(tx Tx) error {
		for _, name := range allBuckets() {
			if tx.Bucket([]byte(name)) == nil {
				complete = false
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return nil
		}
		v := meta.Get([]byte(keySchemaVersion))
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("store: %s: malformed schema version %x", s.eng.name(), v)
		}
		stored = binary.BigEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.eng.name(), err)
	}
	if stored > SchemaVersion {
		return fmt.Errorf("%w: %s has schema version %d, this build supports up to %d",
			ErrNewerSchema, s.eng.name(), stored, SchemaVersion)
	}
	if complete && stored == SchemaVersion {
		return nil
	}
	// Migrations from older versions go here, keyed on stored. Version 1 is
	// the first, so a missing version means a new file.
	err = s.eng.update(ctx, func(tx Tx) error {
		newSummaries := tx.Bucket([]byte(bucketSummaries)) == nil
		for _, name := range allBuckets() {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		if newSummaries {
			if err := backfillSummaries(tx); err != nil {
				return fmt.Errorf("build conversation summaries: %w", err)
			}
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), seqKey(SchemaVersion))
	})
	if err != nil {
		return fmt.Errorf("store: initialize %s: %w", s.eng.name(), err)
	}
	return nil
}

// Shared reports whether other processes may use this store at the same time (PostgreSQL: the
// replicas); a bbolt file is this process's alone.
func (s *Store) Shared() bool {
	_, ok := s.eng.(*pgEngine)
	return ok
}

// Close closes the database file and releases its lock.
func (s *Store) Close() error {
	if err := s.eng.close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.eng.name(), err)
	}
	return nil
}

// Backup writes a consistent copy of the whole database to w from a read
// transaction (Tx.WriteTo), so writers are not blocked. It returns the
// number of bytes written. Cancelling ctx stops the copy at the next write.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	be, ok := s.eng.(*boltEngine)
	if !ok {
		return 0, fmt.Errorf("%w: backup of %s (use the database's own tools: pg_dump)", ErrUnsupported, s.eng.name())
	}
	var n int64
	cw := &ctxWriter{ctx: ctx, w: w}
	err := be.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(cw)
		return err
	})
	if err != nil {
		if cw.err != nil {
			// bbolt flattens some write errors to strings; report the
			// writer's own error so errors.Is still sees it.
			err = cw.err
		}
		return n, fmt.Errorf("store: backup %s: %w", s.eng.name(), err)
	}
	return n, nil
}

// ctxWriter fails writes once its context is done and remembers the first
// write error.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	err error
}

func (cw *ctxWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	if cw.err = cw.ctx.Err(); cw.err != nil {
		return 0, cw.err
	}
	n, err := cw.w.Write(p)
	cw.err = err
	return n, err
}

// view runs fn in a read transaction after checking ctx. Errors that already
// wrap one of the package's sentinels are returned as they are; others are
// prefixed with op.
func (s *Store) view(ctx context.Context, op string, fn func(tx Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrapOp(op, s.eng.view(ctx, fn))
}

// update is view for read-write transactions.
func (s *Store) update(ctx context.Context, op string, fn func(tx Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrapOp(op, s.eng.update(ctx, fn))
}

func wrapOp(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNewerSchema) || errors.Is(err, ErrExists) {
		return err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// bucket returns a top-level bucket, or an error if Open did not create it.
func bucket(tx Tx, name string) (Bucket, error) {
	b := tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("bucket %q missing", name)
	}
	return b, nil
}

// maxIDLen bounds an id (a chat's, a user's, a message's...), so that the keys made of them
// (several joined, in a nested bucket's path) stay under PostgreSQL's index row limit (2,704
// bytes) as well as bbolt's key limit: both engines refuse the same ids.
const maxIDLen = 512

// checkID rejects empty values, values longer than maxIDLen and values containing NUL, the
// separator of composite keys.
func checkID(what, v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(v) > maxIDLen {
		return fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrInvalid, what, len(v), maxIDLen)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%w: %s contains NUL", ErrInvalid, what)
	}
	return nil
}

// compositeKey joins checked ids with NUL.
func compositeKey(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

// seqKey encodes a sequence number as a sortable big-endian key.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// utc normalizes a time for storage: UTC, no monotonic reading, so a
// returned record equals the one read back later.
func utc(t time.Time) time.Time {
	return t.UTC()
}
