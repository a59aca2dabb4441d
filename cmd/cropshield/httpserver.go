package main

import (
	"log/slog"
	"net/http"
	"time"
)

// httpLimits bound what one connection may take from an HTTP server of `serve`: a client that
// sends its request slowly (slowloris), never reads the answer, or keeps an idle connection open
// is cut off. Zero fields take the defaults of the server (webLimits, dashboardLimits).
type httpLimits struct {
	// readHeader bounds the request line and headers.
	readHeader time.Duration
	// read bounds the whole request, body included.
	read time.Duration
	// write bounds the time from the end of the headers to the end of the answer (for a photo
	// upload that includes the upload and the analysis).
	write time.Duration
	// writeProgress, if set, lets a streamed answer (the dashboard's exports) run past write as
	// long as it keeps moving: every write pushes the deadline to writeProgress from then.
	writeProgress time.Duration
	// idle bounds a kept-alive connection between requests.
	idle time.Duration
	// maxHeaderBytes bounds the request line and headers in bytes.
	maxHeaderBytes int
}

// webLimits are the web chat's (with /healthz and /metrics). Measured: the handler answers a
// new 1280x960 photo in 57 ms (p50; 160 ms at 4000x3000) and takes 28 photos/s on 2 cores
// (cropshield bench), so the upload dominates: the largest photo the web chat takes (20 MB) needs
// 168 s at 1 Mbit/s, a 4 MB phone photo 35 s at 1 Mbit/s. read covers 20 MB at 560 kbit/s; write
// is read plus a minute of waiting for the model (about 1,600 photos queued).
func webLimits() httpLimits {
	return httpLimits{readHeader: 10 * time.Second, read: 5 * time.Minute, write: 6 * time.Minute,
		idle: 2 * time.Minute, maxHeaderBytes: 64 << 10}
}

// dashboardLimits are the review dashboard's: its requests are small forms, its pages are
// rendered in milliseconds, and its exports stream for as long as the staff's link needs (the
// dataset zip holds every labelled photo uncompressed: 2,000 photos of 2 MB take 27 min at
// 20 Mbit/s), so a fixed deadline cannot fit them; instead each write must go out within a
// minute of the one before.
func dashboardLimits() httpLimits {
	return httpLimits{readHeader: 10 * time.Second, read: time.Minute, write: time.Minute,
		writeProgress: time.Minute, idle: 2 * time.Minute, maxHeaderBytes: 64 << 10}
}

// metricsLimits are --metrics-addr's (/metrics, /healthz: small answers to a scraper).
func metricsLimits() httpLimits {
	return httpLimits{readHeader: 10 * time.Second, read: time.Minute, write: time.Minute,
		idle: 2 * time.Minute, maxHeaderBytes: 64 << 10}
}

// adminLimits are the admin socket's: a backup streams the whole database (owner-only socket,
// read by 'cropshield backup' on the same machine), for as long as it keeps moving.
func adminLimits() httpLimits {
	l := metricsLimits()
	l.writeProgress = time.Minute
	return l
}

// or fills l's zero fields from def.
func (l httpLimits) or(def httpLimits) httpLimits {
	pick := func(v, d time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return d
	}
	l.readHeader, l.read, l.write = pick(l.readHeader, def.readHeader), pick(l.read, def.read), pick(l.write, def.write)
	l.writeProgress, l.idle = pick(l.writeProgress, def.writeProgress), pick(l.idle, def.idle)
	if l.maxHeaderBytes <= 0 {
		l.maxHeaderBytes = def.maxHeaderBytes
	}
	return l
}

// server is an http.Server for h within the limits; the server's own errors go to log.
func (l httpLimits) server(h http.Handler, log *slog.Logger) *http.Server {
	if l.writeProgress > 0 {
		h = progressDeadline(h, l.writeProgress)
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: l.readHeader, ReadTimeout: l.read, WriteTimeout: l.write,
		IdleTimeout: l.idle, MaxHeaderBytes: l.maxHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// progressDeadline moves the connection's write deadline to d after each write of an answer, so
// that a long stream lives while the client takes it and ends when the client stops reading.
func progressDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: d}, r)
	})
}

type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

// progressChunk is the most written between two moves of the deadline: a large write (a photo
// in the dataset zip) goes out in chunks, each of which must leave within the progress time.
const progressChunk = 32 << 10

func (p *progressWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		c := b[:min(len(b), progressChunk)]
		n, err := p.ResponseWriter.Write(c)
		written += n
		if err != nil {
			return written, err
		}
		// Fails only where the connection has no deadlines to move.
		_ = p.rc.SetWriteDeadline(time.Now().Add(p.d))
		b = b[len(c):]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach the server's writer (Flush, deadlines).
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }
