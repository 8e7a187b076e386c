package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The server CPU table counts the server's own process. On PostgreSQL a
// share of the work of each request runs in the database's processes,
// which on this machine kind share the CPUs with the server: leaving it
// out would flatter artifactstore-pg against peers that keep everything
// in one process. When the database is on this machine, the harness also
// counts the CPU time of every process named "postgres" during each step
// (one target runs at a time, so the database works for it alone), and
// reports it beside the server's.

// localDatabase reports whether the PostgreSQL server dsn names runs on
// this machine: a Unix socket, or a loopback host.
func localDatabase(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return false
	}
	if h := u.Query().Get("host"); h != "" {
		return strings.HasPrefix(h, "/")
	}
	host := u.Hostname()
	if host == "" || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// databaseCPU is the CPU time the machine's PostgreSQL processes have
// used so far: user and system time of each, and of the children each
// has reaped (the postmaster's count backends that have exited).
func databaseCPU() (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var ticks int64
	found := false
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited since the glob
		}
		comm, fields, ok := statFields(b)
		if !ok || comm != "postgres" {
			continue
		}
		for _, f := range fields[11:15] { // utime, stime, cutime, cstime: fields 14 to 17 of stat(5)
			var v int64
			if _, err := fmt.Sscan(f, &v); err != nil {
				return 0, fmt.Errorf("database CPU: %s: %w", path, err)
			}
			ticks += v
		}
		found = true
	}
	if !found {
		return 0, errors.New("database CPU: no process named postgres on this machine")
	}
	return time.Duration(ticks) * clockTick, nil
}
