package blobstore

import "context"

// Op names a Store operation, as metrics and traces name it.
type Op string

// The operations a Store reports to its observer and tracer.
const (
	OpStat   Op = "stat"
	OpOpen   Op = "open"
	OpDelete Op = "delete"
	OpIngest Op = "ingest" // a whole blob in one call (Ingest)
	OpCreate Op = "create_upload"
	OpAppend Op = "append" // AppendUpload and AppendBeforeCommit
	OpCommit Op = "commit"
	OpAbort  Op = "abort"
)

// Tracer starts a span for one operation; the function it returns ends
// it with the operation's outcome. Its calls are on the caller's path.
type Tracer func(ctx context.Context, op Op) (context.Context, func(err error))

// SetObserver makes fn hear of every operation the store completes, with
// its error (nil on success; a not-found error is a result like any other).
// fn runs on the caller's path: it must be cheap and must not block. nil
// stops observing. Set it before the store is shared.
func (s *Store) SetObserver(fn func(op Op, err error)) { s.observer = fn }

// SetTracer makes t trace every operation; nil stops tracing. Set it
// before the store is shared.
func (s *Store) SetTracer(t Tracer) { s.tracer = t }

// start begins op: a span when there is a tracer. The returned function
// ends it and reports the outcome to the observer; it returns err.
func (s *Store) start(ctx context.Context, op Op) (context.Context, func(err error) error) {
	if s.tracer == nil && s.observer == nil {
		return ctx, unobserved // no closure to allocate on every read
	}
	var end func(error)
	if s.tracer != nil {
		ctx, end = s.tracer(ctx, op)
	}
	return ctx, func(err error) error {
		if end != nil {
			end(err)
		}
		if s.observer != nil {
			s.observer(op, err)
		}
		return err
	}
}

func unobserved(err error) error { return err }

// Kind names the store's backend for metrics ("fs", "s3"): what its
// Kind method returns, or "other" for a backend without one.
func (s *Store) Kind() string {
	if k, ok := s.backend.(interface{ Kind() string }); ok {
		return k.Kind()
	}
	return "other"
}
