package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/jackc/pgx/v5"
)

// listen holds one connection per process that LISTENs for appends made by
// any replica and wakes the log's readers, until ctx ends. A lost
// connection is re-established with backoff; the readers are woken after
// each reconnect, since notifications sent meanwhile are lost (readers then
// re-read the log, which is the truth).
func listen(ctx context.Context, dsn string, l *eventlog.Log) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		listenOnce(ctx, dsn, l) // returns when the connection fails or ctx ends
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func listenOnce(ctx context.Context, dsn string, l *eventlog.Log) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	if err := conn.QueryRow(ctx, "SELECT coalesce(current_schema(), '')").Scan(&schema); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	l.Wake()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		// The channel is the database's: a log in another schema is
		// another deployment, whose appends only wake readers here (as
		// every notification did before payloads named their log); they
		// say nothing about this log's lease. An empty payload is a
		// version that does not name itself.
		id, in, named := strings.Cut(n.Payload, "@")
		if named && in != schema {
			l.Wake()
			continue
		}
		l.Notified(id)
	}
}
