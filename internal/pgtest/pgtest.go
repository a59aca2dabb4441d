// Package pgtest gives tests a fresh database on a real PostgreSQL server.
//
// With CROPSHIELD_TEST_PG set (a postgres:// URL of a server on which the tests may create and
// drop databases) that server is used. Otherwise the package starts its own server from
// Debian's postgresql package (initdb, postgres on PATH or in /usr/lib/postgresql/*/bin): one
// per test binary, in a fresh directory, listening only on 127.0.0.1 on a free port, without
// unix sockets, with fsync on (commits are real) and trust authentication. As root (postgres
// refuses to run as root) it runs as the postgres system user. Where the binaries are missing
// the tests skip, except under CI (CI=true), where they fail.
//
// URL gives a test a database of its own (CREATE DATABASE: about 120 ms with fsync on); Schema
// gives it a schema of its own in a database the test binary's tests share (about 10 ms), for
// suites of many short tests that need no more isolation than their tables: advisory locks are
// per database, so such tests share them.
//
// A package's TestMain calls Main, which stops the server after the tests. A server whose test
// binary was killed dies with it (its parent-death signal), and its directory is removed by the
// next run.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding an existing server's URL.
const EnvURL = "CROPSHIELD_TEST_PG"

// dirPrefix names the directories of servers this package started (in os.TempDir()).
const dirPrefix = "cropshield-pgtest-"

// server is the test binary's PostgreSQL server: started once, stopped by Main.
type server struct {
	once    sync.Once
	url     string // admin URL (database postgres)
	skip    string // why tests skip, if they do
	err     error  // why the server could not start
	cmd     *exec.Cmd
	dir     string
	exited  chan struct{}
	counter atomic.Int64

	schemaOnce sync.Once
	schemaDB   string // URL of the database holding Schema's schemas
	schemaErr  error
	out        *lockedWriter // the server's output
}

// srv is the one server of this test binary (tests share it as they share the binary).
var srv server

// Main runs the tests of a package, then stops the server if they started one. Use it as
// func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if err := errors.Join(srv.dropSchemaDB(), srv.stop()); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// URL returns the URL of a new, empty database, dropped when the test ends. It skips the test
// where no PostgreSQL is available (fails it under CI).
func URL(tb testing.TB) string {
	tb.Helper()
	ready(tb)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), srv.counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, srv.url, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// WITH (FORCE) ends connections a failed test left open.
		if err := adminExec(ctx, srv.url, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database: %v", err)
		}
	})
	return withPath(srv.url, name, "")
}

// Schema returns the URL of a new, empty schema (the URL's search_path) in a database shared by
// the test binary's tests, dropped when the test ends. It skips as URL does.
func Schema(tb testing.TB) string {
	tb.Helper()
	ready(tb)
	srv.schemaOnce.Do(func() {
		name := fmt.Sprintf("s_%d", os.Getpid())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if srv.schemaErr = adminExec(ctx, srv.url, "CREATE DATABASE "+name+" TEMPLATE template0"); srv.schemaErr != nil {
			return
		}
		srv.schemaDB = withPath(srv.url, name, "")
	})
	if srv.schemaErr != nil {
		tb.Fatalf("pgtest: create the schemas' database: %v", srv.schemaErr)
	}
	name := fmt.Sprintf("t_%d", srv.counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, srv.schemaDB, "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("pgtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, srv.schemaDB, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema: %v", err)
		}
	})
	return withPath(srv.schemaDB, "", name)
}

// ready starts the server once, and skips or fails tb where there is none.
func ready(tb testing.TB) {
	tb.Helper()
	srv.once.Do(srv.start)
	if srv.skip != "" {
		if mustRun() {
			tb.Fatalf("pgtest: %s (CI must run the PostgreSQL tests)", srv.skip)
		}
		tb.Skip("pgtest: " + srv.skip)
	}
	if srv.err != nil {
		tb.Fatalf("pgtest: %v", srv.err)
	}
}

// mustRun reports whether a missing PostgreSQL fails the tests instead of skipping them: in CI.
func mustRun() bool { return os.Getenv("CI") == "true" }

// withPath returns base with another database (if db is set) and search_path (if schema is set).
func withPath(base, db, schema string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err) // base is the server's URL, checked by start
	}
	if db != "" {
		u.Path = "/" + db
	}
	if schema != "" {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dropSchemaDB drops Schema's database, if a test made it.
func (s *server) dropSchemaDB() error {
	if s.schemaDB == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return adminExec(ctx, s.url, fmt.Sprintf("DROP DATABASE IF EXISTS s_%d WITH (FORCE)", os.Getpid()))
}

// adminExec runs one statement on the server's postgres database.
func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	return errors.Join(err, conn.Close(ctx))
}

// start finds or starts the server.
func (s *server) start() {
	if u := os.Getenv(EnvURL); u != "" {
		if _, err := url.Parse(u); err != nil {
			s.err = fmt.Errorf("%s is not a URL", EnvURL) // the error would show its password
			return
		}
		s.url = u
		return
	}
	bin, err := findBin(exec.LookPath, "/usr/lib/postgresql/*/bin")
	if err != nil {
		s.skip = err.Error()
		return
	}
	removeStale()
	s.err = s.run(bin)
}

// findBin returns the directory holding initdb and postgres: initdb's on PATH (lookPath), else
// the newest of Debian's (debianBins, a glob).
func findBin(lookPath func(string) (string, error), debianBins string) (string, error) {
	var dirs []string
	if p, err := lookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob(debianBins)
	for i := len(found) - 1; i >= 0; i-- { // the newest version first
		dirs = append(dirs, found[i])
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL binaries not found (apt-get install postgresql) and " + EnvURL + " not set")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// removeStale removes the directories of servers whose test binary is gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) == nil {
			continue // its owner still runs
		}
		// A postmaster left running (its owner killed before it started watching) stops by
		// itself within a minute once its lock file is gone.
		_ = os.RemoveAll(d)
	}
}

// credential is the user the server runs as: the postgres user when we are root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// run initializes a cluster in a fresh directory and starts postgres on it.
func (s *server) run(bin string) error {
	cred, err := credential()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return err
	}
	s.dir = dir
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	data, err := initCluster(bin, dir, cred)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		err = s.postgres(bin, data, port, cred)
		if err == nil || attempt == 2 {
			return err
		}
	}
}

// initCluster runs initdb in dir/data (as cred's user, if set) and returns that directory.
func initCluster(bin, dir string, cred *syscall.Credential) (string, error) {
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.Chown(data, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return data, nil
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// postgres starts the server on port and waits until it accepts connections. The port was free a
// moment ago only: another test binary's server may have taken it since, and then ours fails to
// listen and exits, but may not have yet when the first connection is tried. So the server is
// named (cluster_name: its directory's name), and a connection to a server of another name is
// not ours.
func (s *server) postgres(bin, data string, port int, cred *syscall.Credential) error {
	s.out = &lockedWriter{b: &strings.Builder{}}
	name := filepath.Base(filepath.Dir(data))
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-c", "cluster_name="+name,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories=", "-c", "fsync=on",
		"-c", "shared_buffers=16MB", "-c", "max_connections=200",
		"-c", "log_min_messages=warning", "-c", "logging_collector=off")
	cmd.Stderr, cmd.Stdout = s.out, s.out
	// The server dies with this process however it ends (a killed go test): SIGQUIT is
	// postgres's immediate shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	exited := make(chan struct{})
	started := make(chan error, 1)
	// The parent-death signal fires when the thread that started the child ends: start it from
	// a thread that lives as long as the child.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.exited = cmd, exited
	s.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.url)
		if err == nil {
			var got string
			err = conn.QueryRow(ctx, "SHOW cluster_name").Scan(&got)
			if err == nil && got != name {
				err = fmt.Errorf("port %d is another server's (%q)", port, got)
			}
			err = errors.Join(err, conn.Close(context.Background()))
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited: %s", s.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("postgres did not accept connections within 60s: %w", err), s.stop())
		}
	}
}

// log returns what the server wrote.
func (s *server) log() string {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.b.String()
}

// stop shuts the server down (fast shutdown, then immediate) and removes its directory.
func (s *server) stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		if s.dir != "" {
			return os.RemoveAll(s.dir)
		}
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		<-s.exited
	}
	s.cmd = nil
	return os.RemoveAll(s.dir)
}

// lockedWriter collects the server's output.
type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
