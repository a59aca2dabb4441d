package dburl

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/cropshield", "postgres://app:xxxxx@db:5432/cropshield"},
		{"postgresql://app@db/cropshield?sslmode=require", "postgresql://app@db/cropshield?sslmode=require"},
		{"postgres://db/cropshield?password=s3cret&sslmode=disable", "postgres://db/cropshield?password=xxxxx&sslmode=disable"},
		{"postgres://app:s3cret@db/x?sslpassword=s3cret", "postgres://app:xxxxx@db/x?sslpassword=xxxxx"},
		{"postgres://app:s3%2Fcret@db/x", "postgres://app:xxxxx@db/x"},
		{"postgres://app:s3cret@db:bad port/x", "postgres://(unparsable URL)"},
		// A bare '%' in a password parameter: url.Values drops the pair it cannot unescape.
		{"postgres://db/x?password=50%off&sslmode=disable", "postgres://db/x?password=xxxxx&sslmode=disable"},
		{"postgres://db/x?sslmode=disable&sslpassword=a%zz", "postgres://db/x?sslmode=disable&sslpassword=xxxxx"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactError(t *testing.T) {
	base := errors.New("connect postgres://app:s3cret@db/x failed (password s3cret)")
	err := RedactError(fmt.Errorf("open: %w", base), "postgres://app:s3cret@db/x")
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "xxxxx") {
		t.Errorf("redacted error = %q", err)
	}
	if !errors.Is(err, base) {
		t.Error("the redacted error does not wrap the original")
	}
	if plain := errors.New("no secret here"); RedactError(plain, "postgres://app:s3cret@db/x") != plain {
		t.Error("an error without secrets was changed")
	}
}
