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
