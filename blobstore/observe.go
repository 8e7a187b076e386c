package blobstore

// Op names a Store operation, as metrics count them.
type Op string

// The operations a Store reports to its observer.
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

// SetObserver makes fn hear of every operation the store completes, with
// its error (nil on success; a not-found error is a result like any other).
// fn runs on the caller's path: it must be cheap and must not block. nil
// stops observing. Set it before the store is shared.
func (s *Store) SetObserver(fn func(op Op, err error)) { s.observer = fn }

// note reports op's outcome to the observer and returns err.
func (s *Store) note(op Op, err error) error {
	if s.observer != nil {
		s.observer(op, err)
	}
	return err
}

// Kind names the store's backend for metrics ("fs", "s3"): what its
// Kind method returns, or "other" for a backend without one.
func (s *Store) Kind() string {
	if k, ok := s.backend.(interface{ Kind() string }); ok {
		return k.Kind()
	}
	return "other"
}
