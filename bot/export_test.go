package bot

// FlightWaiters is how many turns wait for the running analysis of the photo with this hash (0
// if none runs): tests wait for a turn to have joined it instead of guessing with the scheduler.
func FlightWaiters(h *Handler, hash string) int {
	h.flight.mu.Lock()
	defer h.flight.mu.Unlock()
	if f := h.flight.calls[hash]; f != nil {
		return f.waiters
	}
	return 0
}

// IntakeWaiters is how many WaitHandled calls wait for the message: tests check that an
// abandoned wait leaves nothing behind.
func IntakeWaiters(in *Intake, p Platform, chat, id string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.waiters[msgKey{p, chat, id}])
}

// KillIntake stops the intake as kill -9 would: nothing more is handled, marked done or let go,
// its heartbeats end; what it held stays in the inbox under its leases.
func KillIntake(in *Intake) { in.kill() }

// EndAlbumWaits ends the wait of every album being collected now, as its timer would.
func EndAlbumWaits(in *Intake) {
	in.mu.Lock()
	type wait struct {
		k   albumKey
		gen int
	}
	var ws []wait
	for k, al := range in.albums {
		ws = append(ws, wait{k, al.gen})
	}
	in.mu.Unlock()
	for _, w := range ws {
		in.albumQuiet(w.k, w.gen)
	}
}
