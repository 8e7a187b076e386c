package client

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProgress: a transfer still running after the delay draws a bar on a
// terminal; a fast one, or any on something else, writes only its summary.
func TestProgress(t *testing.T) {
	url := newServer(t)
	tests := []struct {
		name     string
		terminal bool
		throttle time.Duration // per 32 KiB: 20 ms makes 1 MiB take 640 ms
		wantBar  bool
	}{
		{"slow on a terminal", true, 20 * time.Millisecond, true},
		{"fast on a terminal", true, 0, false},
		{"slow elsewhere", false, 20 * time.Millisecond, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			rec := &recorder{throttle: tt.throttle}
			c := newClient(t, url, WithHTTPClient(rec.client()), WithProgress(&out, tt.terminal))
			c.progress.delay, c.progress.interval = 200*time.Millisecond, 20*time.Millisecond
			path := writeFile(t, t.TempDir(), "f.bin", randomBytes(t, 1<<20)) // new bytes: nothing is skipped
			if _, err := c.Push(context.Background(), "p", "v"+strconv.Itoa(i), []string{path}, PushOptions{}); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			bar := strings.Contains(s, "\r") && strings.Contains(s, "%") && strings.Contains(s, "MiB/s")
			if bar != tt.wantBar {
				t.Errorf("bar drawn: %v, want %v; output %q", bar, tt.wantBar, s)
			}
			summary := s // what is left after the bar is cleared
			if i := strings.LastIndex(s, "\r\x1b[K"); i >= 0 {
				summary = s[i+len("\r\x1b[K"):]
			}
			if !strings.HasPrefix(summary, "pushed  f.bin  1.0 MiB in ") || strings.Count(summary, "\n") != 1 || !strings.HasSuffix(summary, "\n") {
				t.Errorf("summary %q in output %q", summary, s)
			}
		})
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 20 << 20: "20.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
