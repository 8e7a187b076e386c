package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
)

// env returns the environment variable's value, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// storeConfig says where the event log and the blobs are.
type storeConfig struct {
	data        string // blobs, and the SQLite log unless db is set
	db          string // postgres:// URL; empty for the embedded SQLite log
	storage     string // s3://BUCKET/PREFIX; empty for data/blobs
	coldStorage string // s3://BUCKET/PREFIX of the cold tier; empty for none
	buffered    bool   // blobs on the filesystem through the page cache only (fs.Options.Buffered)
	s3          s3Config
	noMigrate   bool
	followLease time.Duration // serve's --follow-lease; 0 (every other command): no lease
}

func storeFlags(fs *flag.FlagSet) *storeConfig {
	c := &storeConfig{}
	fs.StringVar(&c.data, "data", env("ARTIFACTSTORE_DATA", "./data"), "data directory: blobs, and the SQLite event log unless --db is set (env ARTIFACTSTORE_DATA)")
	fs.StringVar(&c.db, "db", env("ARTIFACTSTORE_DB", ""), "event log database: postgres://… for PostgreSQL; empty for SQLite in the data directory (env ARTIFACTSTORE_DB)")
	storageFlags(fs, c)
	return c
}

func (c *storeConfig) postgres() (bool, error) {
	switch {
	case c.db == "":
		return false, nil
	case strings.HasPrefix(c.db, "postgres://"), strings.HasPrefix(c.db, "postgresql://"):
		return true, nil
	}
	scheme, _, _ := strings.Cut(c.db, "://")
	if len(scheme) > 20 || scheme == c.db {
		scheme = "(none)" // not a URL; the value itself may hold a password: never echoed
	}
	return false, fmt.Errorf("--db: only postgres:// URLs are supported, not %q ones (leave it empty for the embedded SQLite log)", scheme)
}

func (c *storeConfig) sqlitePath() string { return filepath.Join(c.data, "eventlog.db") }

// store is the opened event log and blob store.
type store struct {
	log   *eventlog.Log
	blobs *blobstore.Store
	cold  *blobstore.Store // nil without tiering
	lock  *os.File         // nil unless the data directory is locked
}

// Whether openStore takes the data directory's exclusive lock.
const (
	exclusive = true
	readOnly  = false
)

// openStore opens the event log and the blobs. With the embedded SQLite log
// and exclusive it holds the data directory's lock, so that replay cannot
// run under a live server nor two servers share one embedded log. With
// PostgreSQL, replicas share the data directory and take no lock; the
// commands that would take it (the writers) keep blob lookups in memory,
// following what the other replicas append.
func openStore(ctx context.Context, c *storeConfig, lockIt bool) (*store, error) {
	pg, err := c.postgres()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.data, 0o755); err != nil {
		return nil, err
	}
	st := &store{}
	if !pg && lockIt {
		if st.lock, err = lockDir(c.data); err != nil {
			return nil, err
		}
	}
	backend, err := openBackend(ctx, c)
	if err == nil {
		st.cold, err = openCold(ctx, c)
	}
	if err == nil {
		if pg {
			st.log, err = postgres.Open(ctx, c.db, postgres.Options{NoMigrate: c.noMigrate, Follow: lockIt, FollowLeaseTerm: cmp.Or(c.followLease, -1)})
		} else {
			st.log, err = sqlite.Open(ctx, c.sqlitePath(), sqlite.Options{NoMigrate: c.noMigrate, Exclusive: lockIt})
		}
	}
	if err != nil {
		st.unlock()
		if errors.Is(err, eventlog.ErrMigrationsPending) {
			return nil, fmt.Errorf("refusing to start: %w", err)
		}
		return nil, err
	}
	st.blobs = blobstore.New(backend)
	return st, nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another artifactstore process", dir)
	}
	return f, nil
}

func (s *store) unlock() {
	if s.lock != nil {
		s.lock.Close()
	}
}

func (s *store) Close() error {
	err := s.log.Close()
	s.unlock()
	return err
}
