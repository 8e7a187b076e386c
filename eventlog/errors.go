package eventlog

import "errors"

// Errors that say the database, not the request, is the problem. Backends
// wrap their drivers' errors in them (see ClassifyErrors), so callers test
// errors.Is without knowing the driver. Both mean nothing was recorded: a
// transaction that meets either is rolled back whole.
var (
	// ErrUnavailable: the database could not be reached or is busy beyond
	// its timeout (PostgreSQL down, a connection refused or reset, SQLite
	// locked by another process). The same request may succeed later; the
	// log reconnects by itself.
	ErrUnavailable = errors.New("event log unavailable")
	// ErrNoSpace: the database has no room to record the event (SQLite
	// SQLITE_FULL, PostgreSQL disk_full). An operator must make room.
	ErrNoSpace = errors.New("event log storage full")
)
