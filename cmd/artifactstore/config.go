package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/eventlog"
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

// dataFlag registers --data with its environment default.
func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", env("ARTIFACTSTORE_DATA", "./data"), "data directory: event log and blobs (env ARTIFACTSTORE_DATA)")
}

// store is the opened data directory.
type store struct {
	log   *eventlog.Log
	blobs *blobstore.Store
	lock  *os.File
}

// Whether openStore takes the data directory's exclusive lock.
const (
	exclusive = true
	readOnly  = false
)

// openStore opens the data directory. With exclusive it holds the
// directory's lock, so that replay cannot run under a live server, nor two
// servers share one embedded log; verify only reads and runs beside them.
func openStore(ctx context.Context, dir string, lockIt bool) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	// Readers take no lock: SQLite's WAL lets them read beside a server.
	if err := flock(lock, lockIt); err != nil {
		lock.Close()
		return nil, fmt.Errorf("data directory %s is in use by another artifactstore process", dir)
	}
	backend, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		lock.Close()
		return nil, err
	}
	log, err := sqlite.Open(ctx, filepath.Join(dir, "eventlog.db"))
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &store{log: log, blobs: blobstore.New(backend), lock: lock}, nil
}

func (s *store) Close() error {
	err := s.log.Close()
	s.lock.Close()
	return err
}

func flock(f *os.File, exclusive bool) error {
	if !exclusive {
		return nil
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
