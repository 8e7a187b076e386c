package postgres

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/jackc/pgx/v5/pgconn"
)

// classify wraps the errors that mean "the database is unreachable or out
// of service" in eventlog.ErrUnavailable and "the database is full" in
// eventlog.ErrNoSpace. Anything else (a constraint, a bug in a query) is
// left alone: it is not something a retry fixes.
func classify(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "53100": // disk_full
			return fmt.Errorf("%w: %w", eventlog.ErrNoSpace, err)
		case strings.HasPrefix(pg.Code, "08"), // connection_exception
			pg.Code == "53300",                     // too_many_connections
			pg.Code == "57P01", pg.Code == "57P02", // admin_shutdown, crash_shutdown
			pg.Code == "57P03": // cannot_connect_now (starting up, recovery)
			return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
		case pg.Code == "0A000" && strings.Contains(pg.Message, "cached plan must not change result type"):
			// Another process altered a table this connection has a
			// prepared statement on (a newer replica's migration). pgx
			// forgets the statement on this error, so the same query
			// works when retried.
			return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, driver.ErrBadConn),
		pgconn.Timeout(err):
		return fmt.Errorf("%w: %w", eventlog.ErrUnavailable, err)
	}
	return err
}
