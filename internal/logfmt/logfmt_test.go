package logfmt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/slogtest"
	"time"
)

// Values a record may hold, chosen to reach every branch: plain strings,
// strings each handler quotes or escapes differently, every kind the fast
// path formats and some it hands over.
var strs = []string{
	"request", "GET", "/v2/{name}/manifests/{reference}", "team/app", "127.0.0.1:5000", "[::1]:443",
	"a-b_c.d~e", "", "with space", "k=v", `quo"te`, `back\slash`, "<tag>", "a&b", "tab\there",
	"line\nbreak", "é", "日本", "\x00", "\xff", "µs", "INFO", "'single'", "(x)*?^|`",
}

// str picks a string, mostly plain ones (the first seven), so that many
// records take the fast path.
func str(r *rand.Rand) string {
	if r.IntN(10) < 8 {
		return strs[r.IntN(7)]
	}
	return strs[r.IntN(len(strs))]
}

func randValue(r *rand.Rand) slog.Value {
	switch r.IntN(16) {
	case 0:
		return slog.Int64Value(r.Int64() - r.Int64())
	case 1:
		return slog.Uint64Value(r.Uint64())
	case 2:
		return slog.BoolValue(r.IntN(2) == 0)
	case 3:
		return slog.DurationValue(time.Duration(r.Int64N(int64(3*time.Hour))) - time.Hour)
	case 4:
		return slog.Float64Value(r.Float64())
	case 5:
		return slog.AnyValue(errors.New(str(r)))
	case 6:
		return slog.GroupValue(slog.String("in", str(r)))
	case 7:
		return slog.TimeValue(time.Unix(r.Int64N(1<<32), r.Int64N(1e9)))
	default:
		return slog.StringValue(str(r))
	}
}

func randRecord(r *rand.Rand) slog.Record {
	zones := []*time.Location{time.UTC, time.FixedZone("x", -7*3600-1800), time.FixedZone("y", 5*3600+45*60), time.FixedZone("z", -(7*3600 + 52*60 + 58)),
		time.FixedZone("s", -30), time.FixedZone("t", 59)} // seconds only: less than a minute either way
	var t time.Time
	switch r.IntN(8) {
	case 0: // zero: no time key
	case 1:
		t = time.Date(10000+r.IntN(3), 1, 2, 3, 4, 5, 6, time.UTC) // out of RFC 3339's range
	default:
		t = time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
	}
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2, slog.LevelDebug - 3}
	rec := slog.NewRecord(t, levels[r.IntN(len(levels))], str(r), 0)
	for n := r.IntN(10); n > 0; n-- {
		key := []string{"id", "status", "route", "bytes_out", "a b", "", "k=", "é"}[r.IntN(8)]
		if r.IntN(10) < 8 {
			key = []string{"id", "status", "route", "bytes_out"}[r.IntN(4)]
		}
		rec.AddAttrs(slog.Attr{Key: key, Value: randValue(r)})
	}
	return rec
}

// Every record is written byte for byte as the standard handler of the
// same format writes it, whether formatted here or handed over.
func TestSameBytesAsStandardHandlers(t *testing.T) {
	for _, json := range []bool{false, true} {
		var ours, std bytes.Buffer
		var h slog.Handler
		var s slog.Handler
		if json {
			h, s = NewJSON(&ours, nil), slog.NewJSONHandler(&std, nil)
		} else {
			h, s = NewText(&ours, nil), slog.NewTextHandler(&std, nil)
		}
		r := rand.New(rand.NewPCG(1, 2))
		fast := 0
		for i := 0; i < 20000; i++ {
			rec := randRecord(r)
			ours.Reset()
			std.Reset()
			if _, ok := h.(*Handler).format(nil, rec.Clone()); ok {
				fast++
			}
			h.Handle(context.Background(), rec.Clone())
			s.Handle(context.Background(), rec.Clone())
			if ours.String() != std.String() {
				t.Fatalf("json=%v, record %d:\nours: %q\nstd:  %q", json, i, ours.String(), std.String())
			}
		}
		// The fast path must be exercised, and must not take everything.
		if fast < 1000 || fast > 19000 {
			t.Errorf("json=%v: %d of 20000 records formatted here", json, fast)
		}
	}
}

// A request line, as the registry logs one, is formatted here without
// an allocation.
func TestRequestLineIsFast(t *testing.T) {
	for _, json := range []bool{false, true} {
		var h *Handler
		if json {
			h = NewJSON(io.Discard, nil)
		} else {
			h = NewText(io.Discard, nil)
		}
		rec := requestLine()
		if _, ok := h.format(nil, rec); !ok {
			t.Fatalf("json=%v: the request line went to the standard handler", json)
		}
		allocs := testing.AllocsPerRun(100, func() { h.Handle(context.Background(), rec) })
		if allocs > 0 {
			t.Errorf("json=%v: %.1f allocations per line", json, allocs)
		}
	}
}

// The options the fast path does not implement send every record to the
// standard handler, so they still apply.
func TestOptionsStillApply(t *testing.T) {
	var out bytes.Buffer
	h := NewText(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == "id" {
			a.Value = slog.StringValue("masked")
		}
		return a
	}})
	slog.New(h).Info("request", "id", "abc")
	if !strings.Contains(out.String(), "id=masked") {
		t.Errorf("ReplaceAttr not applied: %q", out.String())
	}
	out.Reset()
	h = NewJSON(&out, &slog.HandlerOptions{AddSource: true})
	slog.New(h).Info("request", "id", "abc")
	if !strings.Contains(out.String(), `"source":{`) {
		t.Errorf("AddSource not applied: %q", out.String())
	}
	out.Reset()
	h = NewText(&out, &slog.HandlerOptions{Level: slog.LevelWarn})
	slog.New(h).Info("dropped")
	slog.New(h).With("k", 1).WithGroup("g").Warn("kept", "x", 2)
	if got := out.String(); strings.Contains(got, "dropped") || !strings.Contains(got, "msg=kept k=1 g.x=2") {
		t.Errorf("level or derived handler wrong: %q", got)
	}
}

// The handler passes the standard library's own conformance test.
func TestSlogtest(t *testing.T) {
	var out bytes.Buffer
	err := slogtest.TestHandler(NewJSON(&out, nil), func() []map[string]any {
		var ms []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms
	})
	if err != nil {
		t.Error(err)
	}
}

func requestLine() slog.Record {
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	rec.AddAttrs(
		slog.String("id", "0123456789abcdef"), slog.String("method", "GET"),
		slog.String("route", "/v2/{name}/manifests/{reference}"), slog.String("repo", "team/app"),
		slog.Int("status", 200), slog.Int64("bytes_out", 1234),
		slog.Duration("duration", 123456*time.Nanosecond), slog.String("client", "127.0.0.1:45678"),
	)
	return rec
}

// BenchmarkRequestLine compares the standard handlers with these on the
// registry's request line.
func BenchmarkRequestLine(b *testing.B) {
	rec := requestLine()
	for _, c := range []struct {
		name string
		h    slog.Handler
	}{
		{"std-text", slog.NewTextHandler(io.Discard, nil)},
		{"text", NewText(io.Discard, nil)},
		{"std-json", slog.NewJSONHandler(io.Discard, nil)},
		{"json", NewJSON(io.Discard, nil)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.h.Handle(context.Background(), rec)
			}
		})
	}
}
