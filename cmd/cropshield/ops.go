package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
	"github.com/cropshield/cropshield/store"
)

// opsConfig is the operator's part of `serve`: which listeners exist, how long data is kept, and
// the admin socket through which `cropshield backup` copies the database of a running server.
type opsConfig struct {
	// webchatOff: --webchat=false (so that a serveConfig built in code keeps the web chat).
	webchatOff bool
	// metricsAddr: where /metrics and /healthz are served; "" puts them on --addr.
	metricsAddr  string
	keepPhotos   days
	keepMessages days
	// sweepEvery is the time between retention sweeps (24h); the first runs at start.
	sweepEvery time.Duration
	// metricsReady, if set, is called with the metrics listener's address (when it has its own).
	metricsReady func(addr string)
	// swept, if set, is called after each retention sweep (tests).
	swept func(store.SweepReport, error)
}

// Retention defaults: a photo is kept 90 days (a season, enough for follow-up questions and for
// staff to review it), the conversation log a year.
const (
	defaultKeepPhotos   = 90
	defaultKeepMessages = 365
)

func (c *opsConfig) register(fs *flag.FlagSet) {
	c.keepPhotos, c.keepMessages = days(defaultKeepPhotos), days(defaultKeepMessages)
	fs.Var(invertedBool{&c.webchatOff}, "webchat", "serve the web chat on --addr (--webchat=false: no web chat; /healthz and /metrics stay on --addr unless --metrics-addr moves them)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "listen address of /metrics and /healthz (\"\": on --addr with the web chat); keep it private, e.g. 127.0.0.1:9090")
	fs.Var(&c.keepPhotos, "keep-photos", "remove photos (with analysis and overlay) analysed and last sent longer ago than this, e.g. 90d; photos staff corrected are kept (training data); 0 or forever keeps all")
	fs.Var(&c.keepMessages, "keep-messages", "remove logged messages older than this, e.g. 365d; 0 or forever keeps all")
}

// webchat reports whether the web chat is served.
func (c *opsConfig) webchat() bool { return !c.webchatOff }

// policy is the retention policy of the flags.
func (c *opsConfig) policy() store.RetentionPolicy {
	return store.RetentionPolicy{Photos: c.keepPhotos.duration(), Messages: c.keepMessages.duration()}
}

// days is a retention period in whole days: "90d", "90", "0" or "forever" (0: keep forever).
type days int

func (d *days) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "forever" || s == "off" {
		*d = 0
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
	if err != nil || n < 0 || n > 100*365 {
		return fmt.Errorf("want a number of days such as 90d, or forever: %q", s)
	}
	*d = days(n)
	return nil
}

func (d *days) String() string {
	if d == nil || *d == 0 {
		return "forever"
	}
	return strconv.Itoa(int(*d)) + "d"
}

func (d days) duration() time.Duration { return time.Duration(d) * 24 * time.Hour }

// invertedBool is a boolean flag stored negated (--webchat=false sets webchatOff).
type invertedBool struct{ off *bool }

func (b invertedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false: %q", s)
	}
	*b.off = !v
	return nil
}

func (b invertedBool) String() string {
	if b.off == nil {
		return "true"
	}
	return strconv.FormatBool(!*b.off)
}

func (b invertedBool) IsBoolFlag() bool { return true }

// adminSocket is the unix socket next to the database through which the running server hands out
// backups: only the database's owner can reach it (folder 0700, socket 0600), as only they can
// read the file itself.
func adminSocket(db string) string { return db + ".admin.sock" }

// maxSocketPath is the longest unix socket path every platform takes (sun_path).
const maxSocketPath = 104

// opsServer is what opsConfig.start runs beside the adapters: the metrics listener (when it has
// its own address), the admin socket and the retention sweeps. A nil one does nothing.
type opsServer struct {
	metrics *http.Server
	admin   *http.Server
	sock    string
	done    chan error
	stop    context.CancelFunc
	wg      sync.WaitGroup
	log     *slog.Logger
}

// start serves metricsMux on --metrics-addr (when set and apart from --addr), the admin socket
// of db, and the retention sweeps of st.
func (c *opsConfig) start(log *slog.Logger, metricsMux http.Handler, st *store.Store, db string) (*opsServer, error) {
	o := &opsServer{done: make(chan error, 2), log: log}
	if metricsMux != nil {
		ln, err := net.Listen("tcp", c.metricsAddr)
		if err != nil {
			return nil, fmt.Errorf("listen (metrics): %w", err)
		}
		o.metrics = metricsLimits().server(metricsMux, log)
		go func() { o.done <- fmt.Errorf("metrics server: %w", o.metrics.Serve(ln)) }()
		if c.metricsReady != nil {
			c.metricsReady(ln.Addr().String())
		}
		log.Info("metrics serving", "metrics", "http://"+ln.Addr().String()+"/metrics", "healthz", "/healthz")
	}
	if err := o.startAdmin(st, db); err != nil {
		return nil, errors.Join(err, o.shutdown(context.Background()))
	}
	ctx, stop := context.WithCancel(context.Background())
	o.stop = stop
	p := c.policy()
	if p.Photos == 0 && p.Messages == 0 {
		log.Info("retention off: photos and messages are kept forever")
		return o, nil
	}
	every := c.sweepEvery
	if every <= 0 {
		every = 24 * time.Hour
	}
	o.wg.Go(func() { o.sweepLoop(ctx, st, p, every, c.swept) })
	return o, nil
}

// startAdmin serves GET /backup on the admin socket: a consistent copy of the database. The copy
// is made first into a file beside the database (Tx.WriteTo in one read transaction, as short as
// the local disk allows: a long read transaction makes a commit that must grow the file wait,
// and with it every write) and then streamed with its length, so a slow or stalled client never
// holds the transaction, and a short copy is an error on the client's side.
func (o *opsServer) startAdmin(st *store.Store, db string) error {
	if dburl.IsURL(db) {
		o.log.Info("no admin socket: the database is PostgreSQL; back it up with pg_dump")
		return nil
	}
	sock := adminSocket(db)
	if len(sock) > maxSocketPath {
		o.log.Warn("no admin socket: its path is too long; 'cropshield backup' cannot copy the database while serving", "socket", sock)
		return nil
	}
	// We hold the database's lock: a socket left here is a crashed server's.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("admin socket: %w", err)
	}
	ln, err := listenPrivate(sock)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		n, err := stageBackup(r.Context(), st, filepath.Dir(db), w)
		if err != nil {
			// The client refuses a copy shorter than the length it was told.
			o.log.Error("backup through the admin socket failed", "bytes", n, "err", err)
			return
		}
		o.log.Info("backup through the admin socket", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	})
	// A backup streams for as long as the database takes to copy, while it moves.
	o.admin = adminLimits().server(mux, o.log)
	o.sock = sock
	go func() { o.done <- fmt.Errorf("admin socket server: %w", o.admin.Serve(ln)) }()
	o.log.Info("admin socket for backups", "socket", sock)
	return nil
}

func (o *opsServer) sweepLoop(ctx context.Context, st *store.Store, p store.RetentionPolicy, every time.Duration, swept func(store.SweepReport, error)) {
	o.log.Info("retention on", "keep_photos", p.Photos.String(), "keep_messages", p.Messages.String(), "every", every.String())
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rep, err := st.Sweep(ctx, p, start)
		args := []any{"messages", rep.Messages, "turns", rep.Turns, "staff_actions", rep.StaffActions, "staff_replies", rep.StaffReplies,
			"conversations", rep.Conversations, "photos", rep.Photos, "content_ids", rep.ContentIDs,
			"crop_questions", rep.CropQuestions, "summaries", rep.Summaries, "transactions", rep.Transactions,
			"took", time.Since(start).Round(time.Millisecond)}
		switch {
		case errors.Is(err, context.Canceled):
			o.log.Info("retention sweep interrupted by shutdown; it goes on at the next start", args...)
		case err != nil:
			o.log.Error("retention sweep failed; retried at the next one", append(args, "err", err)...)
		default:
			o.log.Info("retention sweep", args...)
		}
		if swept != nil {
			swept(rep, err)
		}
		t.Reset(every)
	}
}

// failed delivers the error of a server that stopped by itself.
func (o *opsServer) failed() <-chan error {
	if o == nil {
		return nil
	}
	return o.done
}

// shutdown stops the sweeps (waiting for the one running, which stops at its next transaction),
// then the servers, and removes the admin socket.
func (o *opsServer) shutdown(ctx context.Context) error {
	if o == nil {
		return nil
	}
	if o.stop != nil {
		o.stop()
	}
	o.wg.Wait()
	var errs []error
	for _, srv := range []*http.Server{o.metrics, o.admin} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	if o.sock != "" {
		if err := os.Remove(o.sock); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("operations servers: %w", err)
	}
	return nil
}

// stageBackup copies the database into a temporary file in dir, then streams that file to w with
// its length, and removes it.
func stageBackup(ctx context.Context, st *store.Store, dir string, w http.ResponseWriter) (int64, error) {
	f, err := os.CreateTemp(dir, ".backup-*.db")
	if err != nil {
		http.Error(w, "cannot stage the backup", http.StatusInternalServerError)
		return 0, err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer f.Close()
	n, err := st.Backup(ctx, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		http.Error(w, "cannot stage the backup", http.StatusInternalServerError)
		return n, err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	return io.Copy(w, f)
}

// listenPrivate listens on a unix socket at path that exists only with mode 0600: it is made in
// a fresh 0700 folder beside path, given its mode there, and renamed into place, so that nobody
// else can connect in the moment between listening and chmod.
func listenPrivate(path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".sock-*")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // serve removes path itself at the end
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	return ln, nil
}
