// Command killtest checks that CropShield answers every message exactly once when it is killed
// under load. It runs `cropshield serve` on a fresh data directory with 127.0.0.1 addresses only,
// pointed at a fake Telegram Bot API server of its own, feeds it Telegram updates (mostly photos:
// new, forwarded, uploaded again, as files, albums; commands and texts; private chats and
// groups, with what a group expects no answer to) while web chat clients send photos and texts
// through the web chat's HTTP API, kills the server with SIGKILL at random (seeded) moments and
// starts it again on the same data, and at the end checks that every message that wants an
// answer got exactly one and none got two. It prints a summary and exits 1 on any loss or
// duplicate.
//
//	make build && go run ./scripts/killtest                # 600 updates, 4 web clients, 10 kills
//	go run ./scripts/killtest --updates 60 --kills 3 --seed 7 --keep
//	go run ./scripts/killtest --replicas 3 --db postgres --pg-url postgres://postgres@127.0.0.1:5432/postgres \
//	    --updates 1000 --kills 1 --web-clients 0 --rate 200
//
// With --replicas N (on --db postgres) or --webhook, Telegram runs in webhook mode as behind a
// load balancer: the fake Bot API posts each update to one replica's webhook (seeded random
// pick) with the secret_token of the last setWebhook, posts it again to the next replica on any
// answer but 200 or a connection error, and sends one chat's updates one at a time, in order,
// many chats at once. The kills then come when a random share of the answers has arrived, each
// of a random replica, started again with the same --replica name. The web chat clients are left
// out with several replicas (the web chat's outbox is in memory per replica). Every mode checks
// that each chat's answers come in the order of its messages, and reports the answers per second
// (first update released → last answer) and the latency from release to answer.
//
// The web chat has no client message id today (see the summary's note): a POST that fails after
// reaching the server cannot be sent again safely, so the client stops there and the end of the
// run tells whether the server had it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cropshield/cropshield/internal/dburl"
)

// config is one run's settings (the flags).
type config struct {
	bin, model, ortLib string
	build              bool
	buildFlags         []string // for go build (the test's -race)
	dir                string
	keep               bool
	updates            int
	webClients         int
	webMsgs            int
	kills              int
	seed               uint64
	rate               float64
	settle             time.Duration
	webIDField         string
	webRetry           string
	extra              []string
	// replicas is how many `cropshield serve` run at once on one database (db "postgres"); more
	// than one implies webhook.
	replicas int
	// db is "bbolt" (a file in dir) or "postgres" (a fresh database on the server of pgURL).
	db, pgURL string
	// webhook: Telegram delivers by POST to the replicas' webhooks (hookConns at once) instead
	// of getUpdates.
	webhook   bool
	hookConns int
	webNote   string // why the web chat clients were left out
	// albumWait is serve's --telegram-album-wait (and the check's).
	albumWait time.Duration
}

func main() {
	var c config
	var extra string
	fs := flag.NewFlagSet("killtest", flag.ExitOnError)
	fs.StringVar(&c.bin, "bin", "bin/cropshield", "cropshield binary (built from ./cmd/cropshield first when missing, or with --build)")
	fs.BoolVar(&c.build, "build", false, "go build ./cmd/cropshield into --bin first")
	fs.StringVar(&c.model, "model", "models/cropshield-v2.onnx", "ONNX model the server loads")
	fs.StringVar(&c.ortLib, "ort-lib", "", "ONNX Runtime library ($CROPSHIELD_ORT_LIB, else .cache/onnxruntime/libonnxruntime.so.1)")
	fs.StringVar(&c.dir, "dir", "", "data directory (default: a new temporary one, removed after a clean run)")
	fs.BoolVar(&c.keep, "keep", false, "keep the data directory and the server logs")
	fs.IntVar(&c.updates, "updates", 600, "Telegram updates to send")
	fs.IntVar(&c.webClients, "web-clients", 4, "web chat clients sending at the same time")
	fs.IntVar(&c.webMsgs, "web-msgs", 0, "messages per web chat client (default: --updates/15)")
	fs.IntVar(&c.kills, "kills", 10, "SIGKILLs at random moments of the load")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the load and of the kill moments")
	fs.Float64Var(&c.rate, "rate", 15, "Telegram updates released per second")
	fs.DurationVar(&c.settle, "settle", 45*time.Second, "at the end, give up waiting for missing answers after this long without any")
	fs.StringVar(&c.webIDField, "web-id-field", "client_id", "form field carrying the web chat client's message id")
	fs.StringVar(&c.webRetry, "web-retry", "auto", "resend a web chat POST that failed after reaching the server: auto (if the server honours client ids), same-id, never")
	fs.StringVar(&extra, "serve-flags", "", "more flags for cropshield serve, space separated")
	fs.IntVar(&c.replicas, "replicas", 1, "cropshield serve processes at once on one database (more than one: --db postgres, Telegram by webhook, no web chat clients)")
	fs.StringVar(&c.db, "db", "bbolt", "the store: bbolt (a file in the data directory) or postgres (a fresh database on the server of --pg-url, dropped after a clean run)")
	fs.StringVar(&c.pgURL, "pg-url", os.Getenv("CROPSHIELD_TEST_PG"), "PostgreSQL server for --db postgres, a postgres:// URL of a user that may create databases ($CROPSHIELD_TEST_PG)")
	fs.BoolVar(&c.webhook, "webhook", false, "Telegram in webhook mode: the fake Bot API posts each update to a replica's webhook, one chat's in order (always with --replicas > 1)")
	fs.IntVar(&c.hookConns, "webhook-conns", 40, "webhook deliveries at once, across chats (Telegram's max_connections)")
	fs.DurationVar(&c.albumWait, "album-wait", 1500*time.Millisecond, "cropshield serve's --telegram-album-wait")
	_ = fs.Parse(os.Args[1:])
	c.extra = strings.Fields(extra)
	if c.webMsgs == 0 {
		c.webMsgs = max(1, c.updates/15)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, c, os.Stderr)
	if res != nil {
		res.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "killtest:", err)
		os.Exit(2)
	}
	if !res.clean() {
		os.Exit(1)
	}
}

// defaults fills in the paths from the module root and the environment.
func (c *config) defaults() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	if c.ortLib == "" {
		c.ortLib = os.Getenv("CROPSHIELD_ORT_LIB")
	}
	if c.ortLib == "" {
		c.ortLib = filepath.Join(root, ".cache", "onnxruntime", "libonnxruntime.so.1")
	}
	c.bin, c.model, c.ortLib = abs(c.bin), abs(c.model), abs(c.ortLib)
	if _, err := os.Stat(c.ortLib); err != nil {
		return fmt.Errorf("ONNX Runtime library: %w (run `make deps` or set CROPSHIELD_ORT_LIB)", err)
	}
	if _, err := os.Stat(c.bin); err != nil || c.build {
		args := append(append([]string{"build"}, c.buildFlags...), "-o", c.bin, "./cmd/cropshield")
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/cropshield: %w", err)
		}
	}
	switch c.webRetry {
	case "auto", "same-id", "never":
	default:
		return fmt.Errorf("--web-retry %q: want auto, same-id or never", c.webRetry)
	}
	c.replicas = max(1, c.replicas)
	if c.db == "" {
		c.db = "bbolt"
	}
	c.webhook = c.webhook || c.replicas > 1
	switch {
	case c.db != "bbolt" && c.db != "postgres":
		return fmt.Errorf("--db %q: want bbolt or postgres", c.db)
	case c.db == "bbolt" && c.replicas > 1:
		return fmt.Errorf("--replicas %d on bbolt: one process per bbolt file; use --db postgres", c.replicas)
	case c.db == "postgres" && c.pgURL == "":
		return errors.New("--db postgres needs a server: --pg-url postgres://USER@HOST:PORT/DB (or CROPSHIELD_TEST_PG) of a user that may create databases")
	}
	if c.replicas > 1 {
		c.webClients = 0
		c.webNote = "the web chat clients are left out with several replicas: the web chat's outbox (the replies a page polls for) is in memory per replica"
	}
	if c.hookConns <= 0 {
		c.hookConns = 40
	}
	if c.albumWait <= 0 {
		c.albumWait = 1500 * time.Millisecond
	}
	return nil
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the cropshield module (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// run does one whole run; progress goes to logw.
func run(ctx context.Context, c config, logw io.Writer) (res *result, err error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(c.seed, 0x6b696c6c))
	dir := c.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "killtest")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fake, err := startFakeBot()
	if err != nil {
		return nil, err
	}
	defer fake.close()
	db := ""
	if c.db == "postgres" {
		u, drop, err := freshDatabase(ctx, c.pgURL)
		if err != nil {
			return nil, err
		}
		db = u
		defer func() {
			// Kept with the data directory when the run failed or --keep says so.
			if res != nil && res.clean() && !c.keep {
				err = errors.Join(err, drop())
			} else if res != nil {
				res.database = dburl.Redact(u)
			}
		}()
	}
	srvs := make([]*server, c.replicas)
	var logs []*os.File
	defer func() {
		for _, f := range logs {
			_ = f.Close()
		}
	}()
	var targets []string
	for i := range srvs {
		name := "serve.log"
		if c.replicas > 1 {
			name = fmt.Sprintf("serve-r%d.log", i+1)
		}
		logf, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		logs = append(logs, logf)
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s := &server{bin: c.bin, model: c.model, ortLib: c.ortLib, dir: dir, addr: addr, apiURL: fake.url, db: db,
			name: fmt.Sprintf("r%d", i+1), albumWait: c.albumWait, extra: c.extra, log: logf}
		if c.webhook {
			// The public URL every replica sets: the fake's own address plays the load balancer.
			s.hookURL = fake.url + "/telegram/webhook"
			if s.hookAddr, err = freeAddr(); err != nil {
				return nil, err
			}
			targets = append(targets, s.hookAddr)
		}
		srvs[i] = s
	}
	defer func() {
		for _, s := range srvs {
			_ = s.kill()
		}
	}()
	if c.webhook {
		fake.startWebhook(targets, c.hookConns, c.seed)
	}
	srv := srvs[0] // the web chat's (one replica only)

	photos, err := newPhotoSet(rng, 24)
	if err != nil {
		return nil, err
	}
	p := &planner{rng: rng, photos: photos, fake: fake}
	items := p.telegram(c.updates)
	webPlans := make([][]webItem, c.webClients)
	for i := range webPlans {
		webPlans[i] = p.web(i, c.webMsgs)
	}
	mode := "polling"
	if c.webhook {
		mode = "webhook"
	}
	fmt.Fprintf(logw, "killtest: %d Telegram items (%d updates, %s), %d web chat messages, %d kills, %d replica(s) on %s, seed %d; data and logs in %s\n",
		len(items), c.updates, mode, c.webClients*c.webMsgs, c.kills, c.replicas, c.db, c.seed, dir)

	for _, s := range srvs {
		if err := s.start(ctx); err != nil {
			return nil, err
		}
	}
	res = &result{seed: c.seed, dir: dir, log: logs[0].Name(), replicas: c.replicas, db: c.db, mode: mode, webNote: c.webNote}
	if c.replicas > 1 {
		res.log = filepath.Join(dir, "serve-r*.log")
	}
	retrySame := c.webRetry == "same-id"
	if c.webClients > 0 {
		honoured, err := probeClientID(ctx, srv.baseURL(), c.webIDField)
		if err != nil {
			return nil, err
		}
		res.webIDs = honoured
		if c.webRetry == "auto" {
			retrySame = honoured
		}
	}
	res.webRetrySame = retrySame

	// The load: Telegram items released at the rate, web messages spread over the same time.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	duration := time.Duration(float64(c.updates) / c.rate * float64(time.Second))
	t0 := time.Now()
	released := make([]time.Time, len(items))
	updateIDs := make([][]int64, len(items))
	var load, watchers sync.WaitGroup
	load.Go(func() {
		sent := 0
		for i, it := range items {
			at := t0.Add(time.Duration(float64(sent) / c.rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-loadCtx.Done():
					return
				case <-time.After(d):
				}
			}
			released[i] = time.Now()
			ids, err := fake.release(it.Msgs)
			if err != nil {
				fmt.Fprintln(logw, "killtest:", err)
			}
			updateIDs[i] = ids
			sent += len(it.Msgs)
		}
	})
	var web []*webMsg
	for _, plan := range webPlans {
		msgs := make([]*webMsg, len(plan))
		at := make([]time.Time, len(plan))
		for j, it := range plan {
			m, err := newWebMsg(it)
			if err != nil {
				return nil, err
			}
			msgs[j] = m
			at[j] = t0.Add(duration * time.Duration(j) / time.Duration(len(plan))).Add(time.Duration(rng.Int64N(int64(200*time.Millisecond) + 1)))
		}
		web = append(web, msgs...)
		load.Go(func() { webClient(loadCtx, srv.baseURL(), c.webIDField, retrySame, srv.current, msgs, at, &watchers) })
	}
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	if len(web) > 0 {
		watchers.Go(func() { monitor(monitorCtx, srv.baseURL(), srv.current, web) })
	}

	if c.webhook {
		// The kills, each of a replica drawn at random, when a random share of the answers has
		// come (the load may be released long before it is answered); each replica is started
		// again with the same name.
		if err := killByProgress(ctx, c, rng, srvs, fake, items, res, t0, logw); err != nil {
			return res, err
		}
	} else {
		// The kills, at random moments of the load, each followed by a start on the same data.
		killAt := make([]time.Duration, c.kills)
		for i := range killAt {
			killAt[i] = time.Duration((0.03 + 0.94*rng.Float64()) * float64(duration))
		}
		slices.Sort(killAt)
		for _, at := range killAt {
			if d := time.Until(t0.Add(at)); d > 0 {
				select {
				case <-ctx.Done():
					return res, ctx.Err()
				case <-time.After(d):
				}
			}
			if !srv.alive() {
				return res, fmt.Errorf("cropshield serve died by itself (see %s)", srv.log.Name())
			}
			if err := srv.kill(); err != nil {
				return res, err
			}
			res.kills++
			time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
			if err := srv.start(ctx); err != nil {
				return res, err
			}
			fmt.Fprintf(logw, "killtest: kill %d/%d at %.1f s, started again\n", res.kills, c.kills, time.Since(t0).Seconds())
		}
	}
	load.Wait()
	fmt.Fprintf(logw, "killtest: load done after %.1f s; waiting for the answers\n", time.Since(t0).Seconds())
	if err := settle(ctx, fake, items, web, c.settle); err != nil {
		return res, err
	}
	stopLoad()
	stopMonitor()
	watchers.Wait()
	res.loadEnd = time.Now()

	// An orderly restart: what a restart hands in again must not be answered again, and the
	// web chat's page is rebuilt from the store.
	for _, s := range srvs {
		if err := s.stop(); err != nil {
			return res, err
		}
	}
	for _, s := range srvs {
		if err := s.start(ctx); err != nil {
			return res, err
		}
	}
	if err := settle(ctx, fake, items, web, 5*time.Second); err != nil {
		return res, err
	}
	for _, m := range web {
		es, err := m.view(ctx, srv.baseURL())
		if err != nil {
			return res, fmt.Errorf("web chat view: %w", err)
		}
		m.final = es
	}
	for _, s := range srvs {
		if err := s.stop(); err != nil {
			return res, err
		}
		res.starts += s.epoch
	}
	if err := writeRecord(filepath.Join(dir, "web.json"), web, srv.baseURL()); err != nil {
		return res, err
	}
	if err := writeJSONFile(filepath.Join(dir, "telegram.json"), map[string]any{"items": items, "released": released, "sends": fake.sent()}); err != nil {
		return res, err
	}
	res.elapsed = time.Since(start)
	suppressed := map[suppressedKey]bool{}
	for _, f := range logs {
		if err := suppressedReplies(f.Name(), suppressed); err != nil {
			return res, err
		}
	}
	res.albumParts = albumParts(items, updateIDs, fake, c.albumWait)
	res.updateIDs = updateIDs
	res.check(items, released, fake, web, srv.baseURL(), suppressed)
	if res.clean() && !c.keep && c.dir == "" {
		_ = os.RemoveAll(dir)
		res.dir, res.log = "", ""
	}
	return res, nil
}

// killByProgress kills a random replica (SIGKILL) each time the answers reach one of c.kills
// random shares of those expected (5 % to 90 %), and starts it again with the same --replica.
// A run that stops making progress for c.settle kills anyway.
func killByProgress(ctx context.Context, c config, rng *rand.Rand, srvs []*server, fake *fakeBot, items []tgItem, res *result, t0 time.Time, logw io.Writer) error {
	expected := 0
	for _, it := range items {
		if it.Expect {
			expected++
		}
	}
	shares := make([]float64, c.kills)
	for i := range shares {
		shares[i] = 0.05 + 0.85*rng.Float64()
	}
	slices.Sort(shares)
	for _, share := range shares {
		want := int(share * float64(expected))
		lastChange, prev := time.Now(), -1
		for {
			_, _, changed := fake.state()
			got := expected - missingTelegram(items, fake.sent())
			if got >= want || time.Since(lastChange) > c.settle {
				break
			}
			if got != prev {
				prev, lastChange = got, time.Now()
			}
			if err := waitChange(ctx, changed, 250*time.Millisecond); err != nil {
				return err
			}
		}
		for _, s := range srvs {
			if !s.alive() {
				return fmt.Errorf("cropshield serve %s died by itself (see %s)", s.name, s.log.Name())
			}
		}
		s := srvs[rng.IntN(len(srvs))]
		if err := s.kill(); err != nil {
			return err
		}
		res.kills++
		time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		if err := s.start(ctx); err != nil {
			return err
		}
		fmt.Fprintf(logw, "killtest: kill %d/%d of replica %s at %.1f s (%d %% answered), started again\n",
			res.kills, c.kills, s.name, time.Since(t0).Seconds(), 100*(expected-missingTelegram(items, fake.sent()))/max(1, expected))
	}
	return nil
}

// settle waits until every Telegram update is confirmed and every answer expected has come
// and nothing more was sent for a moment, or until nothing has happened for quiet.
func settle(ctx context.Context, fake *fakeBot, items []tgItem, web []*webMsg, quiet time.Duration) error {
	lastChange := time.Now()
	prev := -1
	for {
		unconfirmed, lastSend, changed := fake.state()
		missing := unconfirmed + missingTelegram(items, fake.sent()) + missingWeb(web)
		if missing != prev {
			prev, lastChange = missing, time.Now()
		}
		if lastSend.After(lastChange) {
			lastChange = lastSend
		}
		since := time.Since(lastChange)
		if missing == 0 && since >= 2*time.Second || since >= quiet {
			return nil
		}
		if err := waitChange(ctx, changed, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

func missingTelegram(items []tgItem, sends []sendRec) int {
	got := map[[2]int64]bool{}
	for _, s := range sends {
		got[[2]int64{s.Chat, int64(s.ReplyTo)}] = true
		got[[2]int64{s.Chat, 0}] = true
	}
	n := 0
	for _, it := range items {
		if !it.Expect {
			continue
		}
		found := false
		for _, id := range it.IDs {
			if !it.Group {
				id = 0
			}
			found = found || got[[2]int64{it.Chat, int64(id)}]
		}
		if !found {
			n++
		}
	}
	return n
}

func missingWeb(web []*webMsg) int {
	n := 0
	for _, m := range web {
		m.mu.Lock()
		if m.answeredAt.IsZero() && !m.gaveUp {
			n++
		}
		m.mu.Unlock()
	}
	return n
}

// tally is one channel's line of the summary.
type tally struct {
	messages, expect, answered, lost, dups, unexpected int
	latency                                            []time.Duration
	// Causes of losses: the reply was attempted before a kill and then not sent again (the
	// handler sends a reply that may have gone out at most once: the server's log says so);
	// a web chat POST failed after reaching the server, was not sent again (no client message
	// id) and the server had not stored it.
	lostAttempted, lostUnsent int
	// outOfOrder counts answers that came before the answer to an earlier message of the same
	// chat; last is when the last first answer came (the throughput's end).
	outOfOrder int
	last       time.Time
}

// result is what a run found.
type result struct {
	seed          uint64
	dir, log      string
	kills, starts int
	elapsed       time.Duration
	webIDs        bool // the web chat honours a client's message id
	webRetrySame  bool
	webRestored   bool // a fresh process showed stored web chats (GET / restores them)
	tg, web       tally
	redelivered   int
	cutOff        int // Bot API sends that broke off mid-request (killed while sending)
	webAmbiguous  int
	webRetries    int
	problems      []string

	replicas int
	db, mode string
	database string // the PostgreSQL database kept after a failed run (no password)
	webNote  string
	first    time.Time // the first update released
	loadEnd  time.Time
	// Webhook mode: POSTs made, failed answers by status (0: connection error), updates taken
	// by each replica; deleteWebhook calls; distinct secret_tokens set.
	hookPosts    int
	hookFailures map[int]int
	hookTaken    []int
	hookDeletes  int
	hookSecrets  int
	// albumParts is, per item, how many answers it may get (webhook mode): an album whose photos
	// reached the bot more than the album wait apart is answered in as many parts (the intake's
	// rule); albumSplit counts the albums answered so.
	albumParts []int
	albumSplit int
	updateIDs  [][]int64 // each item's update ids
}

func (r *result) clean() bool {
	return r.tg.lost+r.tg.dups+r.tg.unexpected+r.tg.outOfOrder+r.web.lost+r.web.dups+r.hookProblems() == 0
}

// hookProblems counts what breaks a webhook behind a load balancer: a replica refusing the
// webhook's secret (401), a replica deleting the webhook, replicas setting different secrets.
func (r *result) hookProblems() int {
	n := r.hookFailures[http.StatusUnauthorized] + r.hookDeletes
	if r.hookSecrets > 1 {
		n++
	}
	return n
}

func (r *result) problem(format string, args ...any) {
	if len(r.problems) < 40 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// check sorts every reply the fake Bot API recorded to the item it answers (by chat and, in
// groups, the message it quotes) and every web chat message by what its chat shows, and counts.
func (r *result) check(items []tgItem, released []time.Time, fake *fakeBot, web []*webMsg, base string, suppressed map[suppressedKey]bool) {
	r.redelivered = fake.redelivered()
	var unknown []string
	r.cutOff, unknown = fake.stats()
	for _, m := range unknown {
		r.problem("telegram: the bot called a method the fake Bot API does not know: %s", m)
	}
	if fake.hook != nil {
		r.hookPosts, r.hookFailures, r.hookTaken = fake.hook.stats()
		fake.mu.Lock()
		r.hookDeletes, r.hookSecrets = fake.hookDeletes, len(fake.hookSecrets)
		fake.mu.Unlock()
		if n := r.hookFailures[http.StatusUnauthorized]; n > 0 {
			r.problem("telegram webhook: %d deliveries refused with 401 (a replica does not know the secret_token the webhook was set with)", n)
		}
		if r.hookDeletes > 0 {
			r.problem("telegram webhook: deleteWebhook called %d times (the other replicas' webhook removed)", r.hookDeletes)
		}
		if r.hookSecrets > 1 {
			r.problem("telegram webhook: the replicas set %d different secret_tokens (the last wins, the others answer 401)", r.hookSecrets)
		}
	}
	if len(released) > 0 {
		r.first = released[0]
	}
	type key struct {
		chat int64
		id   int
	}
	byKey := map[key]int{}
	for i, it := range items {
		if !it.Group {
			byKey[key{it.Chat, 0}] = i
			continue
		}
		for _, id := range it.IDs {
			byKey[key{it.Chat, id}] = i
		}
	}
	replies := make([][]sendRec, len(items))
	firstAt := make([]int, len(items)) // the position of an item's first answer among all sends
	for n, s := range fake.sent() {
		k := key{s.Chat, s.ReplyTo}
		if s.Chat > 0 {
			k.id = 0
		}
		i, ok := byKey[k]
		if !ok {
			r.tg.unexpected++
			r.problem("telegram: %s to chat %d quoting %d answers nothing sent: %.60q", s.Method, s.Chat, s.ReplyTo, s.Text)
			continue
		}
		if len(replies[i]) == 0 {
			firstAt[i] = n
		}
		replies[i] = append(replies[i], s)
	}
	// Each chat's answers in the order of its messages: an item answered before an earlier item
	// of its chat is out of order. One exception, the intake's rule: an album is collected until
	// --telegram-album-wait after its last photo, and only its sender's next message waits for
	// it; another member's message in the group may be answered first.
	answeredIn := map[int64][]int{} // chat → its answered items so far, in plan order
	for i, it := range items {
		if len(replies[i]) == 0 {
			continue
		}
		for _, j := range answeredIn[it.Chat] {
			if firstAt[j] < firstAt[i] || len(items[j].Msgs) > 1 && sender(items[j]) != sender(it) {
				continue
			}
			r.tg.outOfOrder++
			r.problem("telegram: OUT OF ORDER: %s (chat %d, message %v) answered before %s (message %v), sent before it",
				it.Kind, it.Chat, it.IDs, items[j].Kind, items[j].IDs)
			break
		}
		answeredIn[it.Chat] = append(answeredIn[it.Chat], i)
	}
	for i, it := range items {
		r.tg.messages += len(it.IDs)
		rs := replies[i]
		units, repeated := replyUnits(rs)
		switch {
		case !it.Expect && units > 0:
			r.tg.unexpected++
			r.problem("telegram: %s (chat %d, message %v) expects no answer, got %d: %.60q", it.Kind, it.Chat, it.IDs, units, rs[0].Text)
		case !it.Expect:
		case units == 0:
			r.tg.expect++
			r.tg.lost++
			why := "never answered"
			for _, id := range it.IDs {
				if suppressed[suppressedKey{"telegram", strconv.FormatInt(it.Chat, 10), strconv.Itoa(id)}] {
					r.tg.lostAttempted++
					why = "its reply was attempted before a kill and not sent again"
					break
				}
			}
			r.problem("telegram: LOST: %s (chat %d, message %v): %s", it.Kind, it.Chat, it.IDs, why)
		default:
			r.tg.expect++
			r.tg.answered++
			r.tg.latency = append(r.tg.latency, rs[0].At.Sub(released[i]))
			if rs[0].At.After(r.tg.last) {
				r.tg.last = rs[0].At
			}
			allowed := 1
			if r.albumParts != nil {
				allowed = r.albumParts[i]
			}
			switch {
			case units > allowed || repeated && allowed == 1:
				r.tg.dups++
				taken := ""
				if fake.hook != nil && len(it.IDs) > 1 && i < len(r.updateIDs) {
					taken = " (its updates taken by " + fake.hook.describeAlbum(r.updateIDs[i]) + ")"
				}
				r.problem("telegram: TWICE: %s (chat %d, message %v)%s answered by %s", it.Kind, it.Chat, it.IDs, taken, describe(rs))
			case units > 1:
				r.albumSplit++
			}
		}
	}

	for _, m := range web {
		if len(m.final) > 0 {
			r.webRestored = true
		}
	}
	for _, m := range web {
		r.web.messages++
		r.web.expect++
		r.webRetries += m.attempts - 1
		r.webAmbiguous += m.ambiguous
		you, bot := 0, bots(m.final)
		for _, e := range m.final {
			if e.From == "you" {
				you++
			}
		}
		live := !m.answeredAt.IsZero()
		answered := live || bot > 0
		switch {
		case !answered:
			r.web.lost++
			why := "never answered"
			if m.gaveUp {
				why = "its POST failed (" + m.err + ") and was not sent again"
			}
			chat := m.chatID(base)
			switch {
			case suppressed[suppressedKey{"webchat", chat, ""}]:
				r.web.lostAttempted++
				why += "; the server stored it, attempted its reply before a kill and did not send it again"
			case you > 0:
				why += "; the server stored it and never answered"
			case m.gaveUp && m.ambiguous > 0:
				r.web.lostUnsent++
				why += "; the server never stored it"
			}
			r.problem("web chat: LOST: %s (chat %s): %s", m.item.Kind, chat, why)
			continue
		case m.liveReplies() > 1 || bot > 1 || you > 1:
			r.web.dups++
			r.problem("web chat: TWICE: %s (chat %s): %d replies sent by the servers, the chat shows %d messages and %d replies after a restart (%d POSTs)",
				m.item.Kind, m.chatID(base), m.liveReplies(), you, bot, m.attempts)
		case r.webRestored && bot == 0:
			r.problem("web chat: %s (chat %s) answered (live) but its chat shows no reply after a restart", m.item.Kind, m.chatID(base))
		}
		r.web.answered++
		if live {
			r.web.latency = append(r.web.latency, m.answeredAt.Sub(m.sentAt))
		}
	}
}

// albumParts returns how many answers each item may get in webhook mode (nil in polling mode):
// one, and one more for each gap longer than wait between two photos of an album reaching a
// replica (a photo later than the album wait is answered as another album). Telegram posts an
// album's photos one by one, each once the previous got its 200: a kill or a busy intake can
// hold them apart.
func albumParts(items []tgItem, updateIDs [][]int64, fake *fakeBot, wait time.Duration) []int {
	if fake.hook == nil {
		return nil
	}
	out := make([]int, len(items))
	for i := range items {
		out[i] = 1
		ids := updateIDs[i]
		for j := 1; j < len(ids); j++ {
			a, b := fake.hook.acceptedAt(ids[j-1]), fake.hook.acceptedAt(ids[j])
			if a.IsZero() || b.IsZero() || b.Sub(a) > wait {
				out[i]++
			}
		}
	}
	return out
}

// sender is the user who sent an item.
func sender(it tgItem) int64 {
	if len(it.Msgs) == 0 || it.Msgs[0].From == nil {
		return 0
	}
	return it.Msgs[0].From.ID
}

// replyUnits counts the answers among the sends to one message: an image send starts an answer
// (the text after it is its rest); without images each text is one. repeated tells that the same
// part was sent twice.
func replyUnits(rs []sendRec) (units int, repeated bool) {
	images, texts := 0, 0
	seen := map[string]bool{}
	for _, s := range rs {
		if s.image() {
			images++
		} else {
			texts++
		}
		k := s.Method + "\x00" + s.Text
		repeated = repeated || seen[k]
		seen[k] = true
	}
	if images > 0 {
		return images, repeated
	}
	return texts, repeated
}

func describe(rs []sendRec) string {
	var parts []string
	for _, s := range rs {
		parts = append(parts, fmt.Sprintf("%s %.40q at %s", s.Method, s.Text, s.At.Format("15:04:05.000")))
	}
	return strings.Join(parts, "; ")
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "\nkilltest: seed %d, %d replica(s) on %s, Telegram by %s, %d SIGKILLs, %d starts, %.0f s\n\n",
		r.seed, r.replicas, r.db, r.mode, r.kills, r.starts, r.elapsed.Seconds())
	fmt.Fprintf(w, "%-9s %8s %8s %8s %5s %10s %10s %8s %8s\n", "channel", "messages", "expect", "answered", "lost", "duplicates", "unexpected", "p50", "p99")
	line := func(name string, t tally) {
		fmt.Fprintf(w, "%-9s %8d %8d %8d %5d %10d %10d %7.2fs %7.2fs\n", name, t.messages, t.expect, t.answered, t.lost, t.dups, t.unexpected,
			percentile(t.latency, 0.5).Seconds(), percentile(t.latency, 0.99).Seconds())
	}
	line("telegram", r.tg)
	line("webchat", r.web)
	if span := r.tg.last.Sub(r.first); r.tg.answered > 0 && span > 0 {
		fmt.Fprintf(w, "\nthroughput: %d Telegram answers in %.1f s (first update released → last first answer): %.1f answers/s; latency p50 %.2f s, p99 %.2f s\n",
			r.tg.answered, span.Seconds(), float64(r.tg.answered)/span.Seconds(), percentile(r.tg.latency, 0.5).Seconds(), percentile(r.tg.latency, 0.99).Seconds())
	}
	if r.mode == "webhook" {
		fmt.Fprintf(w, "webhook: %d POSTs; failed answers: %s; updates taken by each replica: %v\n", r.hookPosts, describeFailures(r.hookFailures), r.hookTaken)
	}
	if r.tg.outOfOrder > 0 {
		fmt.Fprintf(w, "Answers out of their chat's order: %d.\n", r.tg.outOfOrder)
	}
	if r.albumSplit > 0 {
		fmt.Fprintf(w, "Albums answered in parts, their photos having reached the bot more than the album wait apart (posted one by one, held by a kill or the load): %d.\n", r.albumSplit)
	}
	if r.webNote != "" {
		fmt.Fprintln(w, "NOTE: "+r.webNote+".")
	}
	again := "handed out again after a kill (getUpdates)"
	if r.mode == "webhook" {
		again = "posted again after a failed delivery"
	}
	fmt.Fprintf(w, "\nTelegram updates %s: %d; sends cut off by a kill mid-request: %d. Web chat POSTs sent again: %d; failed after reaching the server: %d.\n",
		again, r.redelivered, r.cutOff, r.webRetries, r.webAmbiguous)
	if n := r.tg.lostAttempted + r.web.lostAttempted; n > 0 {
		fmt.Fprintf(w, "Lost because the reply was attempted before a kill and, maybe delivered, not sent again (at most once): %d Telegram, %d web chat.\n",
			r.tg.lostAttempted, r.web.lostAttempted)
	}
	if r.web.lostUnsent > 0 {
		fmt.Fprintf(w, "Lost because a web chat POST failed after reaching the server, could not be sent again and the server had not stored it: %d.\n", r.web.lostUnsent)
	}
	if r.web.messages > 0 {
		if r.webIDs {
			fmt.Fprintln(w, "The web chat honours a client message id (the same /help posted twice with one id was answered once).")
		} else {
			fmt.Fprintln(w, "NOTE: the web chat ignores the client's message id (the same /help posted twice with one id was answered twice):")
			fmt.Fprintln(w, "      a POST that fails after reaching the server cannot be sent again safely.")
		}
		if r.webRetrySame {
			fmt.Fprintln(w, "A web chat POST that failed after reaching the server was sent again with the same id.")
		} else {
			fmt.Fprintln(w, "A web chat POST that failed after reaching the server was not sent again.")
		}
	}
	if !r.webRestored && r.web.messages > 0 {
		fmt.Fprintln(w, "NOTE: after a restart the web chat showed no stored conversation (GET / restores none): web answers were judged from what the clients saw.")
	}
	if len(r.problems) > 0 {
		fmt.Fprintln(w)
		for _, p := range r.problems {
			fmt.Fprintln(w, "  "+p)
		}
	}
	if r.dir != "" {
		fmt.Fprintf(w, "\ndata: %s, server log: %s\n", r.dir, r.log)
	}
	if r.database != "" {
		fmt.Fprintf(w, "database kept: %s\n", r.database)
	}
	if r.clean() {
		fmt.Fprintln(w, "\nPASS: nothing lost, nothing answered twice")
	} else {
		fmt.Fprintln(w, "\nFAIL")
	}
}

// writeRecord keeps what each web chat message's client saw, for a failed run's reader
// (telegram.json keeps the Telegram items, when each was released and what the bot sent).
func writeRecord(path string, web []*webMsg, base string) error {
	type rec struct {
		Chat, Kind, Err              string
		Attempts, Ambiguous, Replies int
		Given, GaveUp                bool
		Sent, Answered               time.Time
		AfterRestart                 []entry
	}
	var out []rec
	for _, m := range web {
		m.mu.Lock()
		out = append(out, rec{Chat: m.chatID(base), Kind: m.item.Kind, Err: m.err, Attempts: m.attempts, Ambiguous: m.ambiguous,
			Replies: len(m.live), Given: m.given, GaveUp: m.gaveUp, Sent: m.sentAt, Answered: m.answeredAt, AfterRestart: m.final})
		m.mu.Unlock()
	}
	return writeJSONFile(path, out)
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// suppressedKey names a message whose reply the server did not send again after a restart:
// platform, chat and (Telegram) message id.
type suppressedKey struct{ platform, chat, msg string }

// suppressedReplies reads a server's log for the replies it attempted before a kill and then
// did not send again, since they may have gone out ("... not sending it twice"), into out.
func suppressedReplies(logPath string, out map[suppressedKey]bool) error {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(data)) {
		if !strings.Contains(line, "not sending it twice") {
			continue
		}
		var k suppressedKey
		for _, f := range strings.Fields(line) {
			name, v, _ := strings.Cut(f, "=")
			switch name {
			case "platform":
				k.platform = v
			case "chat":
				k.chat = v
			case "msg":
				k.msg = v
			}
		}
		if k.platform == "webchat" {
			k.msg = "" // one message per web chat
		}
		out[k] = true
	}
	return nil
}
