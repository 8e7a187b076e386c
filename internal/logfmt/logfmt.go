// Package logfmt is a slog.Handler that writes exactly what the standard
// library's TextHandler or JSONHandler writes, faster for the lines a
// server logs most: flat records whose values are plain strings, integers,
// booleans and durations, like the request line written for every request.
//
// A record it cannot format byte for byte as the standard handler would
// (a group, an error or other Any value, a string that would need quoting
// or escaping, a ReplaceAttr or AddSource option) is handed whole to the
// standard handler, so every line is the standard handler's line; only
// the cost differs. Both write through one lock, a record per Write.
//
// Why it exists: the standard handlers check every rune of every string
// for quoting and go through an allocation per record; with a line per
// request that was about 2 % of a busy server's CPU (the operations
// issue's budget for logs and metrics together is 5 %).
package logfmt

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Handler formats flat records itself and hands the rest to the
// standard handler of the same format.
type Handler struct {
	std     slog.Handler
	buffers sync.Pool // of *[]byte
	out     *lockedWriter
	json    bool
	fast    bool // no option that the fast path does not implement
}

// NewText returns a Handler that writes what slog.NewTextHandler(w, opts) writes.
func NewText(w io.Writer, opts *slog.HandlerOptions) *Handler { return newHandler(w, opts, false) }

// NewJSON returns a Handler that writes what slog.NewJSONHandler(w, opts) writes.
func NewJSON(w io.Writer, opts *slog.HandlerOptions) *Handler { return newHandler(w, opts, true) }

func newHandler(w io.Writer, opts *slog.HandlerOptions, json bool) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	h := &Handler{out: &lockedWriter{w: w}, json: json}
	h.buffers.New = func() any { b := make([]byte, 0, 1024); return &b }
	h.fast = opts.ReplaceAttr == nil && !opts.AddSource
	if json {
		h.std = slog.NewJSONHandler(h.out, opts)
	} else {
		h.std = slog.NewTextHandler(h.out, opts)
	}
	return h
}

// Enabled reports whether the level is at least the configured one.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.std.Enabled(ctx, l)
}

// WithAttrs and WithGroup return the standard handler's: loggers derived
// this way are rare on a hot path, and their lines are the standard ones.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler { return h.std.WithAttrs(as) }

// WithGroup: see WithAttrs.
func (h *Handler) WithGroup(name string) slog.Handler { return h.std.WithGroup(name) }

// Handle writes r: formatted here when it is flat and plain, otherwise by
// the standard handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast {
		return h.std.Handle(ctx, r)
	}
	bp := h.buffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 { // do not keep one huge line's buffer
			h.buffers.Put(bp)
		}
	}()
	line, ok := h.format((*bp)[:0], r)
	*bp = line
	if !ok {
		return h.std.Handle(ctx, r)
	}
	_, err := h.out.Write(line)
	return err
}

// format appends r's line to b; false when the standard handler must
// write it instead.
func (h *Handler) format(b []byte, r slog.Record) ([]byte, bool) {
	level := r.Level.String()
	if !plain(r.Message) || !plain(level) {
		return b, false
	}
	if h.json {
		b = append(b, '{')
	}
	if !r.Time.IsZero() {
		if y := r.Time.Year(); y < 0 || y > 9999 {
			return b, false // the standard handlers report or format these themselves
		}
		b = h.key(b, slog.TimeKey)
		if h.json {
			b = append(b, '"')
			b = r.Time.AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		} else {
			b = appendMillis(b, r.Time)
		}
		b = h.sep(b)
	}
	b = h.str(h.key(b, slog.LevelKey), level)
	b = h.sep(b)
	b = h.str(h.key(b, slog.MessageKey), r.Message)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		if !plain(a.Key) {
			ok = false
			return false
		}
		b = h.sep(b)
		b = h.key(b, a.Key)
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			if s := v.String(); plain(s) {
				b = h.str(b, s)
			} else {
				ok = false
			}
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		case slog.KindDuration:
			if h.json {
				b = strconv.AppendInt(b, int64(v.Duration()), 10)
			} else {
				// Digits, '.', '-' and unit letters: never quoted.
				b = append(b, v.Duration().String()...)
			}
		default:
			ok = false
		}
		return ok
	})
	if !ok {
		return b, false
	}
	if h.json {
		b = append(b, '}')
	}
	return append(b, '\n'), true
}

// appendMillis appends t as RFC 3339 with milliseconds, as the text
// handler writes it; by hand, because time's layouts other than RFC3339
// and RFC3339Nano take its slow, general path.
func appendMillis(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1e6, 3)
	_, off := t.Zone()
	zone := off / 60 // whole minutes, as RFC 3339 writes it: an offset of -30 s is +00:00
	if off == 0 {
		return append(b, 'Z')
	}
	sign := byte('+')
	if zone < 0 {
		sign, zone = '-', -zone
	}
	b = append(b, sign)
	b = appendDigits(b, zone/60, 2)
	b = append(b, ':')
	return appendDigits(b, zone%60, 2)
}

// appendDigits appends n, not negative, zero-padded to width digits.
func appendDigits(b []byte, n, width int) []byte {
	var d [8]byte
	i := len(d)
	for ; n > 0 || i > len(d)-width; n /= 10 {
		i--
		d[i] = byte('0' + n%10)
	}
	return append(b, d[i:]...)
}

func (h *Handler) key(b []byte, k string) []byte {
	if h.json {
		b = append(b, '"')
		b = append(b, k...)
		return append(b, '"', ':')
	}
	b = append(b, k...)
	return append(b, '=')
}

func (h *Handler) sep(b []byte) []byte {
	if h.json {
		return append(b, ',')
	}
	return append(b, ' ')
}

// str appends a string known to be plain.
func (h *Handler) str(b []byte, s string) []byte {
	if h.json {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return append(b, s...)
}

// plain reports whether s is written as it is by both standard handlers:
// not empty (text quotes ""), and only letters, digits and punctuation
// that neither text quotes (space, '=', '"', controls, non-ASCII...) nor
// JSON escapes ('"', '\\', '<', '>', '&' and controls).
func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._:/{}[]@+,;!#$%'()*?^|~`", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// lockedWriter makes one Write per line, one at a time, whichever
// handler formatted it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
