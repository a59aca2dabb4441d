package main

import (
	"errors"
	"testing"

	"github.com/cropshield/cropshield/dashboard"
)

// TestAskTwiceChecksLengthFirst (issue 16, item 13): on a terminal, `staff add` refuses a short
// password as soon as it is typed, before asking for it again; a good one is asked twice and
// compared.
func TestAskTwiceChecksLengthFirst(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
		asked   int
		want    string
		err     error
	}{
		{"short", []string{"short", "short"}, 1, "", dashboard.ErrWeakPassword},
		{"too long", []string{string(make([]byte, 73)), ""}, 1, "", dashboard.ErrWeakPassword},
		{"differ", []string{"long enough one", "long enough two"}, 2, "", errUsage},
		{"good", []string{"long enough one", "long enough one"}, 2, "long enough one", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := 0
			got, err := askTwice(func(string) (string, error) {
				asked++
				return tt.answers[asked-1], nil
			})
			if got != tt.want || asked != tt.asked || (tt.err == nil) != (err == nil) || tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("askTwice: %q, %v after %d prompts; want %q, %v after %d", got, err, asked, tt.want, tt.err, tt.asked)
			}
		})
	}
}
