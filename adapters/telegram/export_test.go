package telegram

// SetDrainHook makes Run call f once it has stopped taking updates and before it waits for the
// updates being handled: a test can then finish an update in flight and know that no queued
// update starts.
func SetDrainHook(a *Adapter, f func()) { a.drainHook = f }
