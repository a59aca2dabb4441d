package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/testenv"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// safetyNet is how long a test waits for the server to close a connection before it reports
// that the server kept it: far beyond the limits the tests configure (milliseconds), it only
// keeps a failing test from hanging.
const safetyNet = time.Minute

// serveLimits runs h on 127.0.0.1 within l until the test ends and returns the address.
func serveLimits(t *testing.T, l httpLimits, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.server(h, quietLog)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// slowClient sends head, then one byte after another (each 10 ms apart) until the server closes
// the connection, and returns what the server answered before it did. It fails the test if the
// server keeps the connection past safetyNet.
func slowClient(t *testing.T, addr, head string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
		}
	}()
	if err := conn.SetReadDeadline(time.Now().Add(safetyNet)); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server kept a slow client's connection open for %s (answered %q)", safetyNet, got.String())
		}
		if err != nil {
			return got.String() // io.EOF or a reset: the server closed it
		}
	}
}

const (
	slowHeaders = "GET / HTTP/1.1\r\nHost: cropshield\r\nX-Slow: "
	// slowBody is slowPost's: a request whose handler reads its body.
	slowBody = "HTTP/1.1\r\nHost: cropshield\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n"
)

// slowPost is the head of a POST to path whose body then comes byte by byte.
func slowPost(path string) string { return "POST " + path + " " + slowBody }

// TestHTTPLimitsCutSlowClients: a client that sends its headers or its body byte by byte, or
// keeps an idle connection, is disconnected by the server; oversized headers are refused.
func TestHTTPLimitsCutSlowClients(t *testing.T) {
	short := httpLimits{readHeader: 200 * time.Millisecond, read: 300 * time.Millisecond, write: 300 * time.Millisecond,
		idle: 200 * time.Millisecond, maxHeaderBytes: 4 << 10}
	upload := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "bad upload", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	addr := serveLimits(t, short, upload)

	t.Run("headers byte by byte", func(t *testing.T) {
		slowClient(t, addr, slowHeaders)
	})
	t.Run("body byte by byte", func(t *testing.T) {
		got := slowClient(t, addr, slowPost("/api/send"))
		if strings.Contains(got, " 200 ") {
			t.Errorf("the slow upload was taken: %q", got)
		}
	})
	t.Run("idle connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: cropshield\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("first request: %s, close %v", resp.Status, resp.Close)
		}
		// Kept alive, then nothing: the server closes it.
		_ = conn.SetReadDeadline(time.Now().Add(safetyNet))
		if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("idle connection still open after %s", safetyNet)
		} else if err == nil {
			t.Fatal("the server sent something on an idle connection")
		}
	})
	t.Run("headers too large", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("16 KiB of headers: %s, want 431", resp.Status)
		}
	})
}

// TestHTTPLimitsWrite: an answer the client does not read ends at the write deadline; with
// writeProgress, a streamed answer lives past the write deadline while it moves, and ends once
// the client stops reading.
func TestHTTPLimitsWrite(t *testing.T) {
	chunk := strings.Repeat("x", 64<<10)
	// stream writes chunks until a write fails, and reports that failure.
	stream := func(failed chan<- error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			for {
				_, err := io.WriteString(w, chunk)
				if err == nil {
					err = rc.Flush()
				}
				if err != nil {
					failed <- err
					return
				}
			}
		})
	}
	neverRead := func(t *testing.T, addr string) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, "GET /export HTTP/1.1\r\nHost: cropshield\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		l    httpLimits
	}{
		{"fixed deadline", httpLimits{write: 300 * time.Millisecond}},
		{"progress deadline", httpLimits{write: time.Minute, writeProgress: 300 * time.Millisecond}},
	} {
		t.Run(tc.name+": client stops reading", func(t *testing.T) {
			failed := make(chan error, 1)
			neverRead(t, serveLimits(t, tc.l.or(webLimits()), stream(failed)))
			select {
			case err := <-failed:
				t.Logf("stream ended: %v", err)
			case <-time.After(safetyNet):
				t.Fatalf("a client that reads nothing held the answer for %s", safetyNet)
			}
		})
	}

	t.Run("a moving stream outlives the write deadline", func(t *testing.T) {
		const write = 300 * time.Millisecond
		l := httpLimits{write: write, writeProgress: time.Minute}.or(dashboardLimits())
		addr := serveLimits(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			for i := range 3 {
				if i > 0 {
					time.Sleep(write) // each part starts after the deadline the one before it had
				}
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}))
		resp, err := http.Get("http://" + addr + "/export")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || len(body) != 3*len(chunk) {
			t.Fatalf("read %d of %d bytes: %v", len(body), 3*len(chunk), err)
		}
	})
}

// TestServeServersCutSlowClients: both servers of serve (the web chat with /metrics, and the
// review dashboard) take their limits.
func TestServeServersCutSlowClients(t *testing.T) {
	short := httpLimits{readHeader: 200 * time.Millisecond, read: 300 * time.Millisecond}
	c := serveConfig{
		modelConfig: modelConfig{model: testenv.ContractModel(t), ortLib: testenv.ORTLib(t), device: "cpu", threads: 1},
		addr:        "127.0.0.1:0", db: filepath.Join(t.TempDir(), "cropshield.db"), threshold: 0.01, workers: 1,
		drainTimeout: 10 * time.Second, http: short,
	}
	chat, review := make(chan string, 1), make(chan string, 1)
	c.ready = func(a string) { chat <- a }
	c.review = reviewConfig{addr: "127.0.0.1:0", ready: func(a string) { review <- a }, http: short}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, quietLog) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	// Each server's request whose handler reads the body: the web chat's upload, the login.
	uploads := map[string]string{}
	for len(uploads) < 2 {
		select {
		case a := <-chat:
			uploads[a] = "/api/send"
		case a := <-review:
			uploads[a] = "/login"
		case err := <-done:
			t.Fatalf("serve stopped early: %v", err)
		}
	}
	for a, upload := range uploads {
		slowClient(t, a, slowHeaders)
		slowClient(t, a, slowPost(upload))
	}
}

// TestServeFailsWhenItsHTTPServerDies: when the web chat's listener fails under the running
// server, serve shuts down and returns the cause (a non-zero exit, so a supervisor restarts it)
// instead of nil.
func TestServeFailsWhenItsHTTPServerDies(t *testing.T) {
	listeners := make(chan net.Listener, 1)
	c := serveConfig{
		modelConfig: modelConfig{model: testenv.ContractModel(t), ortLib: testenv.ORTLib(t), device: "cpu", threads: 1},
		addr:        "127.0.0.1:0", db: filepath.Join(t.TempDir(), "cropshield.db"), threshold: 0.01, workers: 1,
		drainTimeout: 10 * time.Second,
		listen: func(addr string) (net.Listener, error) {
			ln, err := net.Listen("tcp", addr)
			if err == nil {
				listeners <- ln
			}
			return ln, err
		},
	}
	ready := make(chan struct{})
	c.ready = func(string) { close(ready) }
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), c, quietLog) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve stopped early: %v", err)
	}
	if err := (<-listeners).Close(); err != nil { // the server's listener dies under it
		t.Fatal(err)
	}
	err := <-done
	if err == nil {
		t.Fatal("serve returned nil after its HTTP server died: the process would exit 0")
	}
	if !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "HTTP server") {
		t.Errorf("serve: %v, want the HTTP server's cause", err)
	}
}
