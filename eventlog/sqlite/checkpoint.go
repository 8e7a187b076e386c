package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// Checkpoints, which copy the write-ahead log's pages into the database
// file, are made by a goroutine of their own, not by the committer.
// SQLite makes one by default in whichever connection commits past 1,000
// pages of log; that is the committer's, so every append waiting on the
// group paid for the copy, its reads, and a sync of the database file.
// A PASSIVE checkpoint runs beside the committer's next transactions
// (it takes no write lock), and once one has copied every page, the next
// transaction starts the log over from its beginning, so the file stays a
// few megabytes.
//
// Invariant: the log is checkpointed within checkpointEvery of a commit,
// for as long as the log is open; should that goroutine fall behind (a
// reader holding an old snapshot keeps a checkpoint from finishing), the
// committer's connection still checkpoints past committerCheckpointPages.

// checkpointEvery is the most often a checkpoint is made: under steady
// appends, about every 50 ms, which at the rates measured here is a few
// thousand pages at most.
const checkpointEvery = 50 * time.Millisecond

// committerCheckpointPages is the committer connection's own threshold,
// a backstop at 40 MiB of log (SQLite's default: 1,000 pages).
const committerCheckpointPages = 10000

// checkpointInBackground checkpoints db after l's commits, until l is
// closed.
func checkpointInBackground(db *sql.DB, l *eventlog.Log) {
	stop, stopped := make(chan struct{}), make(chan struct{})
	l.OnClose(func() { close(stop); <-stopped })
	go func() {
		defer close(stopped)
		tick := time.NewTicker(checkpointEvery)
		defer tick.Stop()
		for {
			changed := l.Changed()
			select {
			case <-stop:
				return
			case <-changed:
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// An error (the database busy with another process's
			// checkpoint) leaves the pages for the next one.
			db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}()
}
