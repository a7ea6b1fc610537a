package app

import "testing"

func TestProgressNotifyTrustedByVersion(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"3.4.23", false}, {"3.4.25", true}, {"3.5.7", false}, {"3.5.8", true},
		{"3.6.0", true}, {"3.7.3", true}, {"4.0.0", true}, {"garbage", false},
	}
	for _, tt := range tests {
		if got := progressNotifyTrusted(tt.version); got != tt.want {
			t.Errorf("progressNotifyTrusted(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}
