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
// They are made while writes go on, every checkpointCommits commits, at
// about the pace of SQLite's own under small pushes (some 50 pages a
// commit). The last few commits of a burst wait until the log has been
// quiet for checkpointIdle: checkpointing them at once would take the CPU
// from the reads that typically follow a burst of writes (the pulls of
// what was just pushed); a first version that did so made those 10–15 %
// slower in make bench-peers.
//
// Invariant: every commit is checkpointed within checkpointIdle of the
// log going quiet, for as long as the log is open; should this goroutine
// fall behind (a reader holding an old snapshot keeps a checkpoint from
// finishing), the committer's connection still checkpoints past
// committerCheckpointPages.

// checkpointCommits is how many commits a checkpoint waits for while
// writes go on.
const checkpointCommits = 16

// checkpointIdle is how long the log must be quiet before the commits
// since the last checkpoint are checkpointed, however few.
const checkpointIdle = time.Second

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
		idle := time.NewTimer(checkpointIdle)
		defer idle.Stop()
		pending := 0 // commits seen since the last checkpoint (wakes: a few commits may share one)
		// The channel is taken again as soon as it closes, not after the
		// checkpoint: commits made while one runs close it, and are
		// counted then. Taken after, they would wake nobody, and the last
		// commits of a burst that ended during a checkpoint would wait
		// for the next burst.
		changed := l.Changed()
		for {
			select {
			case <-stop:
				return
			case <-changed:
				changed = l.Changed()
				pending++
				if pending < checkpointCommits {
					idle.Reset(checkpointIdle)
					continue
				}
			case <-idle.C:
				if pending == 0 {
					continue
				}
			}
			pending = 0
			// An error (the database busy with another process's
			// checkpoint) leaves the pages for the next one.
			db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}()
}
