package registry

import (
	"io"
	"net/http"
	"time"
)

// Every answer is written with a deadline: a client that accepts nothing
// of it for Options.BodyIdleTimeout is cut, as a request body that stalls
// is (bodies.go), so a client that stops reading holds its connection,
// its descriptor, its handler and the answer's bytes no longer than that.
// A blob's body, a manifest, a tag list: all go out through the
// recorder, in pieces of progressPiece, each with its own deadline, so a
// client that reads slowly, down to progressPiece per timeout, is not cut
// however long the answer.
//
// Invariants: a write through the recorder never waits on the client
// without a deadline, unless the handler has taken the deadlines over
// (ownDeadlines: the event stream, whose writes set their own); and the
// deadline a request leaves behind covers what net/http writes after the
// handler returns (the buffered end of the answer); net/http lifts it
// once that is written, before the connection's next request.

// progressPiece is the most a client must accept per idle timeout.
const progressPiece = 128 << 10

// endDeadlines gives what net/http writes after the handler returns a
// deadline of its own, whatever the handler did last.
func (w *recorder) endDeadlines() {
	if w.idle > 0 && !w.own {
		w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	}
}

// ownDeadlines hands w's write deadlines to its handler.
func ownDeadlines(w http.ResponseWriter) {
	if rec := recorderOf(w); rec != nil {
		rec.own = true
	}
}

// progress arms the deadline for the next piece; false when w keeps none.
func (w *recorder) progress() bool {
	if w.idle <= 0 || w.own {
		return false
	}
	w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	return true
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n := 0
	for {
		piece := p[n:]
		if w.progress() {
			piece = piece[:min(len(piece), progressPiece)]
		}
		m, err := w.ResponseWriter.Write(piece)
		n += m
		w.written += int64(m)
		if err != nil || n == len(p) {
			return n, err
		}
	}
}

// ReadFrom sends src piece by piece, and keeps io.Copy reaching the
// connection's own ReadFrom (sendfile): each piece is an
// *io.LimitedReader over src's own reader (http.ServeContent's
// *io.LimitedReader unwrapped), which net/http still recognises as a file.
func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.idle <= 0 || w.own {
		n, err := io.Copy(w.ResponseWriter, src)
		w.written += n
		return n, err
	}
	lr, limited := src.(*io.LimitedReader)
	var n int64
	for {
		piece := &io.LimitedReader{R: src, N: progressPiece}
		if limited {
			piece.R, piece.N = lr.R, min(lr.N, progressPiece)
		}
		if piece.N <= 0 {
			return n, nil
		}
		w.progress()
		m, err := io.Copy(w.ResponseWriter, piece)
		n += m
		w.written += m
		if limited {
			lr.N -= m
		}
		if err != nil || piece.N > 0 { // an error, or src ended within the piece
			return n, err
		}
	}
}

func (w *recorder) Flush() { w.FlushError() }

// FlushError is what http.ResponseController.Flush calls: it reports a
// client gone or a write deadline passed, which the event stream needs
// to end a stream at once.
func (w *recorder) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.progress()
	return http.NewResponseController(w.ResponseWriter).Flush()
}
