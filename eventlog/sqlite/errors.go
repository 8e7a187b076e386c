package sqlite

import (
	"errors"
	"fmt"

	"github.com/artifact-store/artifact-store/eventlog"
	"modernc.org/sqlite"
)

// SQLite's primary result codes that classify maps
// (https://www.sqlite.org/rescode.html); extended codes carry them in
// their low byte.
const (
	codeBusy   = 5  // SQLITE_BUSY: another connection holds the lock past busy_timeout
	codeLocked = 6  // SQLITE_LOCKED: a conflict within the same connection's cache
	codeFull   = 13 // SQLITE_FULL: the disk (or the file size limit) is full
)

// classify wraps SQLITE_BUSY and SQLITE_LOCKED (the database stayed locked
// beyond the busy timeout: another process holds it) in
// eventlog.ErrUnavailable and SQLITE_FULL in eventlog.ErrNoSpace.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case codeBusy, codeLocked:
		return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
	case codeFull:
		return fmt.Errorf("%w: %w", eventlog.ErrNoSpace, err)
	}
	return err
}
