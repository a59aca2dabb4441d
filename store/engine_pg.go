package store

import (
	"bytes"
	"context"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	berrors "go.etcd.io/bbolt/errors"
)

// The PostgreSQL engine keeps bbolt's ordered key space in one table (migrations/0001_kv.sql):
// kv(path, key, value, seq, is_bucket), one row per key, where path names the bucket. Write
// transactions take one advisory lock first, so they run one after another across every process
// on the database, exactly as bbolt's writers do in one process; read transactions see one
// snapshot (REPEATABLE READ READ ONLY). Every query runs under the transaction's context.

// Defaults of the PostgreSQL options.
const (
	defaultPoolSize     = 8
	defaultQueryTimeout = 30 * time.Second
)

// Advisory lock keys (pg_advisory_xact_lock): one for every write transaction, one for applying
// migrations.
const (
	pgWriteLock     int64 = 0x43726f7053680001 // "CropSh" 1
	pgMigrationLock int64 = 0x43726f7053680002
)

// Limits bbolt enforces. PostgreSQL's index refuses rows over 2,704 bytes (path and key
// together), less than bbolt's keys may be: the store bounds its ids (checkID) so that its keys
// stay far below, and both engines refuse the same ids.
const (
	maxKeySize   = 32768
	maxValueSize = (1 << 31) - 2
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered SQL file of migrations/.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || path.Ext(e.Name()) != ".sql" {
			return nil, fmt.Errorf("migration %q: name is not NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// pgEngine is the PostgreSQL engine.
type pgEngine struct {
	closed       atomic.Bool
	pool         *pgxpool.Pool
	url          string // redacted
	secrets      []string
	queryTimeout time.Duration
	// writers admits write transactions to the pool: half its connections at most, so that
	// writers queued for the write lock (behind a long write of any replica) leave connections
	// for reads, which never wait for writers on bbolt either. Writes run one at a time anyway.
	writers chan struct{}
}

// openPG connects to the database at rawURL and applies the migrations this build has and the
// database lacks. A database migrated by a newer build is refused with ErrNewerSchema.
func openPG(ctx context.Context, rawURL string, opts Options) (*pgEngine, error) {
	e := &pgEngine{url: dburl.Redact(rawURL), secrets: dburl.Secrets(rawURL), queryTimeout: opts.QueryTimeout}
	if e.queryTimeout <= 0 {
		e.queryTimeout = defaultQueryTimeout
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, e.err("open", err)
	}
	cfg.MaxConns = int32(opts.PoolSize)
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultPoolSize
	}
	e.writers = make(chan struct{}, max(1, cfg.MaxConns/2))
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	cfg.ConnConfig.ConnectTimeout = timeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, e.err("open", err)
	}
	e.pool = pool
	mctx, cancel := context.WithTimeout(ctx, timeout+e.queryTimeout)
	defer cancel()
	if err := e.migrate(mctx); err != nil {
		pool.Close()
		return nil, err
	}
	return e, nil
}

// migrate applies the missing migrations in one transaction holding the migration lock, so that
// replicas starting together apply each once.
func (e *pgEngine) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("store: %s: %w", e.url, err)
	}
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgMigrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
			return err
		}
		if latest := len(ms); have > latest {
			return fmt.Errorf("%w: %s has migration %d, this build has up to %d",
				ErrNewerSchema, e.url, have, latest)
		}
		for _, m := range ms[have:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.version); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if errors.Is(err, ErrNewerSchema) {
		return err
	}
	return e.err("migrate", err)
}

// err wraps a database error with the (redacted) URL, hiding the password wherever it appears.
func (e *pgEngine) err(op string, err error) error {
	if err == nil {
		return nil
	}
	return dburl.Hide(fmt.Errorf("store: %s %s: %w", op, e.url, err), e.secrets)
}

func (e *pgEngine) name() string { return e.url }

func (e *pgEngine) close() error {
	e.closed.Store(true)
	e.pool.Close()
	return nil
}

// txCtx bounds a transaction by the query timeout when ctx has no deadline.
func (e *pgEngine) txCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, e.queryTimeout)
}

func (e *pgEngine) view(ctx context.Context, fn func(Tx) error) error { return e.run(ctx, false, fn) }

func (e *pgEngine) update(ctx context.Context, fn func(Tx) error) error { return e.run(ctx, true, fn) }

// run runs fn in a transaction: a write transaction (READ COMMITTED) takes the write lock first,
// so writers run one at a time across processes and each statement after the lock sees every
// write committed before it; a read transaction reads one snapshot (REPEATABLE READ READ ONLY).
// The transaction's start, the lock and the list of top-level buckets go in one round trip.
func (e *pgEngine) run(ctx context.Context, writable bool, fn func(Tx) error) error {
	if e.closed.Load() {
		return fmt.Errorf("store: %s: %w", e.url, berrors.ErrDatabaseNotOpen) // as bbolt's engine
	}
	ctx, cancel := e.txCtx(ctx)
	defer cancel()
	if writable {
		select {
		case e.writers <- struct{}{}:
			defer func() { <-e.writers }()
		case <-ctx.Done():
			return e.err("wait for a turn to write", ctx.Err())
		}
	}
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return e.err("connect", err)
	}
	// A connection left inside a transaction (a failed ROLLBACK) is closed by the pool.
	defer conn.Release()
	t := &pgTx{ctx: ctx, q: conn, writable: writable, buckets: map[string]bool{"": true}}
	if err := t.begin(); err != nil {
		t.rollback()
		return e.err("begin", err)
	}
	ferr := fn(t)
	if t.err != nil || ferr != nil || !writable {
		t.rollback()
		if t.err != nil {
			return e.err("query", t.err)
		}
		return ferr
	}
	// The COMMIT is not given up when ctx ends while it is in flight (pgx would close the
	// connection): past its commit record the server commits all the same, and the caller, told
	// it failed, would act on a write that happened (the handler sends no reply whose attempt it
	// could not note, and never one whose attempt is noted). As on bbolt, once fn has returned
	// nil the transaction commits unless the database fails; the COMMIT has a bound of its own.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), e.queryTimeout)
	defer ccancel()
	if _, err := conn.Exec(cctx, "COMMIT"); err != nil {
		return e.err("commit", err)
	}
	return nil
}

// pgTx is a transaction. The first failed query is kept in err: later operations do nothing and
// the transaction ends with that error (a Get cannot report it).
type pgTx struct {
	ctx      context.Context
	q        *pgxpool.Conn
	writable bool
	err      error
	gen      uint64          // bumped by every change of keys, so cursors refetch
	buckets  map[string]bool // bucket path → exists, as known in this transaction
	rootAll  bool            // buckets lists every top-level bucket
	id       uint64
	hasID    bool
}

// begin starts the transaction (taking the write lock in a write transaction) and lists the
// top-level buckets, in one round trip. No other writer changes the list during the transaction:
// a write transaction holds the lock, a read transaction reads one snapshot.
func (t *pgTx) begin() error {
	b := &pgx.Batch{}
	if t.writable {
		b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
		b.Queue("SELECT pg_advisory_xact_lock($1)", pgWriteLock)
	} else {
		b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	}
	b.Queue("SELECT key FROM kv WHERE path = '\\x'::bytea AND is_bucket")
	br := t.q.SendBatch(t.ctx, b)
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			return errors.Join(err, br.Close())
		}
	}
	rows, err := br.Query()
	if err != nil {
		return errors.Join(err, br.Close())
	}
	for rows.Next() {
		var name []byte
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return errors.Join(err, br.Close())
		}
		t.buckets[string(bucketPath(nil, name))] = true
	}
	rows.Close()
	if err := errors.Join(rows.Err(), br.Close()); err != nil {
		return err
	}
	t.rootAll = true
	return nil
}

// rollback ends the transaction without committing; if that fails the pool closes the
// connection, which ends it too.
func (t *pgTx) rollback() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 5*time.Second)
	defer cancel()
	_, _ = t.q.Exec(ctx, "ROLLBACK")
}

// fail records the transaction's first error and returns it.
func (t *pgTx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return t.err
}

// bucketPath is a nested bucket's path: its parent's followed by its length-prefixed name.
func bucketPath(parent, name []byte) []byte {
	p := make([]byte, 0, len(parent)+binary.MaxVarintLen64+len(name))
	p = append(p, parent...)
	p = binary.AppendUvarint(p, uint64(len(name)))
	return append(p, name...)
}

// prefixEnd is the least byte string greater than every string starting with p, or nil if
// there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// nonNil makes an empty bytea parameter non-NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// lookup returns whether key exists in the bucket at parent and whether it is a bucket.
func (t *pgTx) lookup(parent, key []byte) (exists, isBucket bool) {
	if t.err != nil {
		return false, false
	}
	err := t.q.QueryRow(t.ctx, "SELECT is_bucket FROM kv WHERE path = $1 AND key = $2", nonNil(parent), key).Scan(&isBucket)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false
	}
	if err != nil {
		t.fail(err)
		return false, false
	}
	return true, isBucket
}

// bucket returns the nested bucket name of the bucket at parent, or nil.
func (t *pgTx) bucket(parent, name []byte) Bucket {
	if t.err != nil || len(name) == 0 {
		return nil
	}
	p := bucketPath(parent, name)
	exists, known := t.buckets[string(p)]
	if !known && len(parent) == 0 && t.rootAll {
		exists, known = false, true
	}
	if !known {
		var isBucket bool
		exists, isBucket = t.lookup(parent, name)
		if t.err != nil {
			return nil
		}
		exists = exists && isBucket
		t.buckets[string(p)] = exists
	}
	if !exists {
		return nil
	}
	return &pgBucket{tx: t, parent: nonNil(parent), name: bytes.Clone(name), path: p}
}

// createBucket creates the nested bucket name of the bucket at parent; if it exists it returns
// it (ifNotExists) or fails with bbolt's ErrBucketExists.
func (t *pgTx) createBucket(parent, name []byte, ifNotExists bool) (Bucket, error) {
	if t.err != nil {
		return nil, t.err
	}
	if !t.writable {
		return nil, berrors.ErrTxNotWritable
	}
	if len(name) == 0 {
		return nil, berrors.ErrBucketNameRequired
	}
	if len(name) > maxKeySize {
		return nil, berrors.ErrKeyTooLarge
	}
	if b := t.bucket(parent, name); b != nil {
		if ifNotExists {
			return b, nil
		}
		return nil, berrors.ErrBucketExists
	}
	if t.err != nil {
		return nil, t.err
	}
	tag, err := t.q.Exec(t.ctx, "INSERT INTO kv (path, key, value, is_bucket) VALUES ($1, $2, NULL, true) ON CONFLICT DO NOTHING", nonNil(parent), name)
	if err != nil {
		return nil, t.fail(err)
	}
	if tag.RowsAffected() == 0 {
		return nil, berrors.ErrIncompatibleValue // a value has the name
	}
	t.gen++
	p := bucketPath(parent, name)
	t.buckets[string(p)] = true
	return &pgBucket{tx: t, parent: nonNil(parent), name: bytes.Clone(name), path: p}, nil
}

// deleteBucket removes the nested bucket name of the bucket at parent and everything in it.
func (t *pgTx) deleteBucket(parent, name []byte) error {
	if t.err != nil {
		return t.err
	}
	if !t.writable {
		return berrors.ErrTxNotWritable
	}
	exists, isBucket := t.lookup(parent, name)
	if t.err != nil {
		return t.err
	}
	if !exists {
		return berrors.ErrBucketNotFound
	}
	if !isBucket {
		return berrors.ErrIncompatibleValue
	}
	p := bucketPath(parent, name)
	var err error
	if end := prefixEnd(p); end != nil {
		_, err = t.q.Exec(t.ctx, "DELETE FROM kv WHERE path >= $1 AND path < $2", p, end)
	} else {
		_, err = t.q.Exec(t.ctx, "DELETE FROM kv WHERE path >= $1", p)
	}
	if err == nil {
		_, err = t.q.Exec(t.ctx, "DELETE FROM kv WHERE path = $1 AND key = $2", nonNil(parent), name)
	}
	if err != nil {
		return t.fail(err)
	}
	t.gen++
	// Nested buckets went too: forget what is known below p.
	for k := range t.buckets {
		if strings.HasPrefix(k, string(p)) {
			delete(t.buckets, k)
		}
	}
	t.buckets[string(p)] = false
	return nil
}

func (t *pgTx) Bucket(name []byte) Bucket { return t.bucket(nil, name) }

func (t *pgTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	return t.createBucket(nil, name, true)
}

func (t *pgTx) CreateBucket(name []byte) (Bucket, error) { return t.createBucket(nil, name, false) }

func (t *pgTx) DeleteBucket(name []byte) error { return t.deleteBucket(nil, name) }

// ID: a write transaction takes the next id from kv_txid the first time it asks (writes are
// serialized, so ids grow in commit order); a read transaction sees the last one committed
// before its snapshot.
func (t *pgTx) ID() uint64 {
	if t.hasID || t.err != nil {
		return t.id
	}
	var id int64
	var err error
	if t.writable {
		err = t.q.QueryRow(t.ctx, "UPDATE kv_txid SET id = id + 1 RETURNING id").Scan(&id)
	} else {
		err = t.q.QueryRow(t.ctx, "SELECT id FROM kv_txid").Scan(&id)
	}
	if err != nil {
		t.fail(err)
		return 0
	}
	t.id, t.hasID = uint64(id), true
	return t.id
}

// pgBucket is a bucket: the rows whose path is path.
type pgBucket struct {
	tx     *pgTx
	parent []byte // the path of the bucket holding this one's marker row
	name   []byte
	path   []byte
}

func (b *pgBucket) Get(key []byte) []byte {
	t := b.tx
	if t.err != nil || len(key) == 0 {
		return nil
	}
	var v []byte
	err := t.q.QueryRow(t.ctx, "SELECT value FROM kv WHERE path = $1 AND key = $2", b.path, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		t.fail(err)
		return nil
	}
	return v // nil for a nested bucket
}

func (b *pgBucket) Put(key, value []byte) error {
	t := b.tx
	switch {
	case t.err != nil:
		return t.err
	case !t.writable:
		return berrors.ErrTxNotWritable
	case len(key) == 0:
		return berrors.ErrKeyRequired
	case len(key) > maxKeySize:
		return berrors.ErrKeyTooLarge
	case int64(len(value)) > maxValueSize:
		return berrors.ErrValueTooLarge
	}
	var one int
	err := t.q.QueryRow(t.ctx, `INSERT INTO kv (path, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value WHERE NOT kv.is_bucket
		RETURNING 1`, b.path, key, nonNil(value)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return berrors.ErrIncompatibleValue // a nested bucket has the name
	}
	if err != nil {
		return t.fail(err)
	}
	t.gen++
	return nil
}

func (b *pgBucket) Delete(key []byte) error {
	t := b.tx
	if t.err != nil {
		return t.err
	}
	if !t.writable {
		return berrors.ErrTxNotWritable
	}
	var isBucket bool
	err := t.q.QueryRow(t.ctx, `WITH d AS (DELETE FROM kv WHERE path = $1 AND key = $2 AND NOT is_bucket RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM kv WHERE path = $1 AND key = $2 AND is_bucket)`, b.path, key).Scan(&isBucket)
	if err != nil {
		return t.fail(err)
	}
	if isBucket {
		return berrors.ErrIncompatibleValue
	}
	t.gen++
	return nil
}

func (b *pgBucket) Cursor() Cursor { return &pgCursor{b: b} }

func (b *pgBucket) ForEach(fn func(k, v []byte) error) error {
	c := &pgCursor{b: b}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.tx.err
}

func (b *pgBucket) ForEachBucket(fn func(k []byte) error) error {
	c := &pgCursor{b: b, bucketsOnly: true}
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := fn(k); err != nil {
			return err
		}
	}
	return b.tx.err
}

func (b *pgBucket) Bucket(name []byte) Bucket { return b.tx.bucket(b.path, name) }

func (b *pgBucket) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	return b.tx.createBucket(b.path, name, true)
}

func (b *pgBucket) DeleteBucket(name []byte) error { return b.tx.deleteBucket(b.path, name) }

func (b *pgBucket) NextSequence() (uint64, error) {
	t := b.tx
	if t.err != nil {
		return 0, t.err
	}
	if !t.writable {
		return 0, berrors.ErrTxNotWritable
	}
	var seq int64
	if err := t.q.QueryRow(t.ctx, "UPDATE kv SET seq = seq + 1 WHERE path = $1 AND key = $2 RETURNING seq", b.parent, b.name).Scan(&seq); err != nil {
		return 0, t.fail(err)
	}
	return uint64(seq), nil
}

func (b *pgBucket) Sequence() uint64 {
	t := b.tx
	if t.err != nil {
		return 0
	}
	var seq int64
	if err := t.q.QueryRow(t.ctx, "SELECT seq FROM kv WHERE path = $1 AND key = $2", b.parent, b.name).Scan(&seq); err != nil {
		t.fail(err)
		return 0
	}
	return uint64(seq)
}

func (b *pgBucket) SetSequence(v uint64) error {
	t := b.tx
	if t.err != nil {
		return t.err
	}
	if !t.writable {
		return berrors.ErrTxNotWritable
	}
	if _, err := t.q.Exec(t.ctx, "UPDATE kv SET seq = $3 WHERE path = $1 AND key = $2", b.parent, b.name, int64(v)); err != nil {
		return t.fail(err)
	}
	return nil
}

// Stats counts the bucket's keys (values and nested buckets) and the bytes of their keys and
// values.
func (b *pgBucket) Stats() BucketStats {
	t := b.tx
	if t.err != nil {
		return BucketStats{}
	}
	var s BucketStats
	if err := t.q.QueryRow(t.ctx, "SELECT count(*), coalesce(sum(length(key) + coalesce(length(value), 0)), 0) FROM kv WHERE path = $1", b.path).Scan(&s.KeyN, &s.Bytes); err != nil {
		t.fail(err)
		return BucketStats{}
	}
	return s
}

// Cursor pages: the first fetch after a positioning move is small (a First() that only asks
// whether a bucket is empty should not read 64 photos), the following ones grow, up to 64 rows
// and about cursorPageBytes by the size of the rows read so far (photos come a few at a time).
const (
	cursorFirstPage = 4
	cursorMaxPage   = 64
	cursorPageBytes = 1 << 20
)

// pgCursor walks a bucket a page of rows at a time. It stands on key pos (the last key it
// returned, or the key it sought); after falling off either end it stays where it was, as
// bbolt's does.
type pgCursor struct {
	b           *pgBucket
	bucketsOnly bool // ForEachBucket: nested buckets only

	pos    []byte // current key; nil before the first move
	onKey  bool   // pos is a key of the bucket (not a sought key past the end)
	isBkt  bool   // the key under the cursor is a nested bucket
	page   []pgRow
	next   int    // index in page of the next row in direction dir
	dir    int    // +1: page ascends from pos; -1: descends
	full   bool   // the page was full: more rows may follow it
	gen    uint64 // tx.gen when the page was read
	pageSz int
	rowSz  int // the largest row read so far, in bytes
}

type pgRow struct {
	key, value []byte
	isBucket   bool
}

// fetch reads up to n rows after (dir +1) or before (dir -1) from (inclusive if incl; all rows if
// from is nil) into the page.
func (c *pgCursor) fetch(from []byte, incl bool, dir, n int) {
	t := c.b.tx
	c.page, c.next, c.dir, c.full, c.gen = c.page[:0], 0, dir, false, t.gen
	if t.err != nil {
		return
	}
	var cond, order string
	switch {
	case from == nil:
		cond = "true"
	case dir > 0 && incl:
		cond = "key >= $2"
	case dir > 0:
		cond = "key > $2"
	case incl:
		cond = "key <= $2"
	default:
		cond = "key < $2"
	}
	order = "ASC"
	if dir < 0 {
		order = "DESC"
	}
	cols := "key, value, is_bucket"
	if c.bucketsOnly {
		cond += " AND is_bucket"
		cols = "key, NULL::bytea, is_bucket"
	}
	q := "SELECT " + cols + " FROM kv WHERE path = $1 AND " + cond + " ORDER BY key " + order + " LIMIT " + strconv.Itoa(n)
	args := []any{c.b.path}
	if from != nil {
		args = append(args, nonNil(from))
	}
	rows, err := t.q.Query(t.ctx, q, args...)
	if err != nil {
		t.fail(err)
		return
	}
	for rows.Next() {
		var r pgRow
		if err := rows.Scan(&r.key, &r.value, &r.isBucket); err != nil {
			rows.Close()
			t.fail(err)
			return
		}
		if r.value == nil && !r.isBucket {
			r.value = []byte{}
		}
		c.rowSz = max(c.rowSz, len(r.key)+len(r.value))
		c.page = append(c.page, r)
	}
	if err := rows.Err(); err != nil {
		t.fail(err)
		return
	}
	c.full = len(c.page) == n
	c.pageSz = n
}

// take returns the page's next row and stands on it, or nil at the end (staying where it was).
func (c *pgCursor) take() ([]byte, []byte) {
	if c.next >= len(c.page) {
		return nil, nil
	}
	r := c.page[c.next]
	c.next++
	c.pos, c.onKey, c.isBkt = r.key, true, r.isBucket
	if r.isBucket {
		return r.key, nil
	}
	return r.key, r.value
}

func (c *pgCursor) First() ([]byte, []byte) {
	c.fetch(nil, false, +1, cursorFirstPage)
	return c.take()
}

func (c *pgCursor) Last() ([]byte, []byte) {
	c.fetch(nil, false, -1, cursorFirstPage)
	return c.take()
}

func (c *pgCursor) Seek(seek []byte) ([]byte, []byte) {
	c.fetch(nonNil(seek), true, +1, cursorFirstPage)
	k, v := c.take()
	if k == nil {
		// Past the end: Prev finds the last key before seek, Next nothing.
		c.pos, c.onKey = bytes.Clone(nonNil(seek)), false
	}
	return k, v
}

func (c *pgCursor) Next() ([]byte, []byte) { return c.move(+1) }
func (c *pgCursor) Prev() ([]byte, []byte) { return c.move(-1) }

func (c *pgCursor) move(dir int) ([]byte, []byte) {
	if c.b.tx.err != nil {
		return nil, nil
	}
	if c.pos == nil {
		return nil, nil // not positioned yet, as bbolt's
	}
	if c.dir == dir && c.gen == c.b.tx.gen && (c.next < len(c.page) || !c.full) {
		return c.take()
	}
	n := cursorFirstPage
	if c.dir == dir {
		n = min(c.pageSz*4, cursorMaxPage, max(cursorPageBytes/max(c.rowSz, 1), 1))
	}
	c.fetch(c.pos, false, dir, n)
	return c.take()
}

func (c *pgCursor) Delete() error {
	t := c.b.tx
	if t.err != nil {
		return t.err
	}
	if !t.writable {
		return berrors.ErrTxNotWritable
	}
	if !c.onKey {
		return nil
	}
	if c.isBkt {
		return berrors.ErrIncompatibleValue
	}
	return c.b.Delete(c.pos)
}
