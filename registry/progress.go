package registry

import (
	"io"
	"net/http"
	"time"
)

// progressResponse is the writer of a blob's body: a client that accepts
// nothing of it for Options.BodyIdleTimeout is cut, as a request body
// that stalls is (bodies.go), so a client that stops reading holds its
// connection, its descriptor and any buffers no longer than that. The
// body goes out in pieces of progressPiece, each with its own deadline,
// so a client that reads slowly, down to progressPiece per timeout, is
// not cut however long the body.
type progressResponse struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

// progressPiece is the most a client must accept per idle timeout.
const progressPiece = 128 << 10

// progress wraps w; done clears the deadline for the connection's next
// request.
func (r *Registry) progress(w http.ResponseWriter) (pw progressResponse, done func()) {
	rc := http.NewResponseController(w)
	return progressResponse{w, rc, r.opts.BodyIdleTimeout}, func() { rc.SetWriteDeadline(time.Time{}) }
}

func (p progressResponse) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		p.rc.SetWriteDeadline(time.Now().Add(p.idle))
		m, err := p.ResponseWriter.Write(b[n:min(len(b), n+progressPiece)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadFrom sends src piece by piece. Each piece is an *io.LimitedReader
// over src's own reader (http.ServeContent's *io.LimitedReader
// unwrapped), so that a file still reaches the connection's sendfile.
func (p progressResponse) ReadFrom(src io.Reader) (int64, error) {
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
		p.rc.SetWriteDeadline(time.Now().Add(p.idle))
		m, err := io.Copy(p.ResponseWriter, piece)
		n += m
		if limited {
			lr.N -= m
		}
		if err != nil || piece.N > 0 { // an error, or src ended within the piece
			return n, err
		}
	}
}
