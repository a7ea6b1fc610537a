package nodestatus

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"MemTotal:        8141580 kB\nMemFree:         1000 kB\n", 8141580 * 1024, false},
		{"MemFree:         1000 kB\nMemTotal: 16 kB\n", 16 * 1024, false},
		{"MemFree: 1 kB\n", 0, true},
		{"MemTotal: lots kB\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseMemTotal(bufio.NewScanner(strings.NewReader(tt.in)))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseMemTotal(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
