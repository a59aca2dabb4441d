package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
)

// server runs `cropshield serve` again and again on one data directory and one address: the
// only process, or one of several replicas on one PostgreSQL database.
type server struct {
	bin, model, ortLib string
	dir, addr, apiURL  string
	// db is --db: the bbolt file in dir when empty, else a postgres:// URL.
	db string
	// name is --replica (each replica its own, the same after a restart).
	name string
	// hookURL, when set, runs Telegram in webhook mode: the public URL (the same for every
	// replica, the fake Bot API's load balancer) and hookAddr this replica's listener.
	hookURL, hookAddr string
	albumWait         time.Duration // --telegram-album-wait
	extra             []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	epoch int           // starts so far
	began time.Time     // when the current one started
	log   *os.File
}

// freeAddr returns a 127.0.0.1 address nobody listens on now (the server keeps it across
// restarts).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func (s *server) baseURL() string { return "http://" + s.addr }

// env is the process's environment without any CROPSHIELD_* setting of the caller (which would
// change what is tested), with the fake bot's token.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CROPSHIELD_") {
			out = append(out, kv)
		}
	}
	return append(out, "CROPSHIELD_TELEGRAM_TOKEN="+fakeToken)
}

// command is the server's command line, and how it is shown in the log (no password).
func (s *server) command() (cmd *exec.Cmd, shown string) {
	db := s.db
	if db == "" {
		db = filepath.Join(s.dir, "cropshield.db")
	}
	args := []string{"serve",
		"--addr", s.addr, "--review-addr", "",
		"--model", s.model, "--ort-lib", s.ortLib, "--device", "cpu",
		"--telegram-api", s.apiURL, "--log-level", "info",
	}
	environ := env()
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		// In the environment, as the token: on the command line ps shows a URL's password to
		// every local user.
		environ = append(environ, "CROPSHIELD_DB="+db)
	} else {
		args = append(args, "--db", db)
	}
	if s.name != "" {
		args = append(args, "--replica", s.name)
	}
	if s.hookURL != "" {
		args = append(args, "--telegram-webhook-url", s.hookURL, "--telegram-webhook-addr", s.hookAddr)
	}
	if s.albumWait > 0 {
		args = append(args, "--telegram-album-wait", s.albumWait.String())
	}
	args = append(args, s.extra...)
	cmd = exec.Command(s.bin, args...)
	cmd.Env = environ
	cmd.Dir = s.dir
	shown = s.bin + " " + strings.Join(args, " ")
	if !slices.Contains(args, db) {
		shown += " (CROPSHIELD_DB=" + dburl.Redact(db) + ")"
	}
	return cmd, shown
}

// start starts the server and waits until /healthz answers 200.
func (s *server) start(ctx context.Context) error {
	s.mu.Lock()
	s.epoch++
	s.began = time.Now()
	epoch := s.epoch
	cmd, shown := s.command()
	fmt.Fprintf(s.log, "\n===== killtest: start %d: %s\n", epoch, shown)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return s.waitReady(ctx, done)
}

func (s *server) waitReady(ctx context.Context, done <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL()+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := c.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("cropshield serve exited while starting (see %s)", s.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cropshield serve not ready after 60 s (see %s)", s.log.Name())
		}
	}
}

// current is the process running now (or last started).
func (s *server) current() epoch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return epoch{n: s.epoch, start: s.began}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() error { return s.signal(syscall.SIGKILL, time.Minute) }

// stop asks for an orderly shutdown (SIGTERM) and waits for it.
func (s *server) stop() error { return s.signal(syscall.SIGTERM, time.Minute) }

func (s *server) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("cropshield serve did not stop within %v of %v", wait, sig)
	}
	fmt.Fprintf(s.log, "===== killtest: %v\n", sig)
	return nil
}

// alive reports whether the current process is running (it may have died by itself).
func (s *server) alive() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}
