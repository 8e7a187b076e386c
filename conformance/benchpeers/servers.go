package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to make and drop schemas
)

// The targets' names, as the table's columns say them.
const (
	nameSQLite       = "artifactstore"
	namePostgres     = "artifactstore-pg"
	nameDistribution = "distribution-v3"
	nameDocker       = "distribution-2.8"
	nameZot          = "zot"
	// The same, for the --baseline binary: an earlier build of ours,
	// measured in the same interleaved rounds to tell what a change did.
	nameBaseline   = "baseline"
	nameBaselinePG = "baseline-pg"
)

// A target is one server the workload runs against: ours (us) or a peer.
type target struct {
	name  string
	us    bool
	start func(ctx context.Context, dir string) (*process, error)
	// database: the target keeps its log in a PostgreSQL server on this
	// machine, whose CPU time each step also counts (dbcpu.go).
	database bool
}

// chooseTargets lists the servers a run measures, and why any is left out.
func chooseTargets(cfg config, bins binaries) (ts []target, skipped []string) {
	want := func(name string) bool { return len(cfg.servers) == 0 || slices.Contains(cfg.servers, name) }
	add := func(name string, us bool, bin string, missing string, start func(context.Context, string) (*process, error)) {
		switch {
		case !want(name):
		case bin == "":
			skipped = append(skipped, fmt.Sprintf("%s SKIPPED: %s", name, missing))
		default:
			ts = append(ts, target{name: name, us: us, start: start,
				database: (name == namePostgres || name == nameBaselinePG) && localDatabase(cfg.postgres)})
		}
	}
	as := bins.artifactstore
	add(nameSQLite, true, as, "no artifactstore binary", func(ctx context.Context, dir string) (*process, error) {
		return startArtifactstore(ctx, as, dir, "")
	})
	pg := as
	if cfg.postgres == "" {
		pg = ""
	}
	add(namePostgres, true, pg, "set BENCH_POSTGRES=postgres://... to measure artifactstore on PostgreSQL", func(ctx context.Context, dir string) (*process, error) {
		return startArtifactstore(ctx, as, dir, cfg.postgres)
	})
	if bl := bins.baseline; bl != "" {
		add(nameBaseline, true, bl, "", func(ctx context.Context, dir string) (*process, error) {
			return startArtifactstore(ctx, bl, dir, "")
		})
		if cfg.postgres != "" {
			add(nameBaselinePG, true, bl, "", func(ctx context.Context, dir string) (*process, error) {
				return startArtifactstore(ctx, bl, dir, cfg.postgres)
			})
		}
	}
	add(nameDistribution, false, bins.distribution, "no Distribution v3 binary (--distribution)", func(ctx context.Context, dir string) (*process, error) {
		return startDistribution(ctx, bins.distribution, dir)
	})
	add(nameDocker, false, bins.dockerRegistry, "Debian's docker-registry is not installed (apt-get install docker-registry, as root)", func(ctx context.Context, dir string) (*process, error) {
		return startDistribution(ctx, bins.dockerRegistry, dir)
	})
	add(nameZot, false, bins.zot, "no zot binary (BENCH_ZOT=path/to/zot; zot is not in the Go module proxy, so the script cannot install it)", func(ctx context.Context, dir string) (*process, error) {
		return startZot(ctx, bins.zot, dir)
	})
	return ts, skipped
}

// startArtifactstore serves dir on a free loopback port, with its event
// log in SQLite, or in a new schema of the PostgreSQL server pg.
func startArtifactstore(ctx context.Context, bin, dir, pg string) (*process, error) {
	args := []string{"serve", "--data", dir}
	var drop func()
	if pg != "" {
		dsn, dropSchema, err := freshSchema(ctx, pg, bin)
		if err != nil {
			return nil, err
		}
		args, drop = append(args, "--db", dsn), dropSchema
	}
	p, err := startServer(ctx, dir, func(addr string) *exec.Cmd {
		return exec.Command(bin, append(args, "--addr", addr)...)
	})
	if err != nil {
		if drop != nil {
			drop()
		}
		return nil, err
	}
	p.cleanup = drop
	return p, nil
}

// freshSchema makes a new, migrated schema in the PostgreSQL server base
// and returns a DSN that uses it and a function that drops it.
func freshSchema(ctx context.Context, base, bin string) (string, func(), error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, fmt.Errorf("BENCH_POSTGRES: %w", err)
	}
	defer db.Close()
	var b [6]byte
	rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("BENCH_POSTGRES: creating a schema: %w", err)
	}
	drop := func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	}
	dsn := pgtest.WithSearchPath(base, schema)
	// Migrated before any server starts, so that replicas do not race to.
	if out, err := exec.CommandContext(ctx, bin, "migrate", "--db", dsn).CombinedOutput(); err != nil {
		drop()
		return "", nil, fmt.Errorf("artifactstore migrate: %w: %s", err, out)
	}
	return dsn, drop, nil
}

// startDistribution serves dir with a Distribution registry binary (v3,
// or Debian's 2.8): a minimal configuration, filesystem storage with
// deletes enabled, on loopback. Its access log is off, as artifactstore
// has none, so neither pays for a line per request.
func startDistribution(ctx context.Context, bin, dir string) (*process, error) {
	return startServer(ctx, dir, func(addr string) *exec.Cmd {
		conf := filepath.Join(dir, "config.yml")
		os.WriteFile(conf, fmt.Appendf(nil, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), addr), 0o644)
		cmd := exec.Command(bin, "serve", conf)
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		return cmd
	})
}

// startZot serves dir with a zot binary the runner provides (BENCH_ZOT):
// its defaults (deduplication and garbage collection on, as zot ships),
// on loopback, logging errors only, as Distribution runs with its access
// log off.
func startZot(ctx context.Context, bin, dir string) (*process, error) {
	return startServer(ctx, dir, func(addr string) *exec.Cmd {
		host, port, _ := net.SplitHostPort(addr)
		conf := filepath.Join(dir, "config.json")
		os.WriteFile(conf, fmt.Appendf(nil, `{"distSpecVersion": "1.1.1",
 "storage": {"rootDirectory": %q},
 "http": {"address": %q, "port": %q},
 "log": {"level": "error"}}
`, filepath.Join(dir, "storage"), host, port), 0o644)
		return exec.Command(bin, "serve", conf)
	})
}

// A process is a running server.
type process struct {
	cmd     *exec.Cmd
	url     string // http://127.0.0.1:PORT
	logPath string
	exited  chan struct{} // closed when the process has exited
	cleanup func()        // after it stops (a schema to drop), or nil
}

// startServer runs the command command(addr) for a free loopback address
// with its output in dir/server.log, and waits until /v2/ answers.
func startServer(ctx context.Context, dir string, command func(addr string) *exec.Cmd) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := command(addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &process{cmd: cmd, url: "http://" + addr, logPath: logPath, exited: make(chan struct{})}
	go func() { cmd.Wait(); logFile.Close(); close(p.exited) }()
	client := &http.Client{Timeout: time.Second}
	for range 200 { // 20 s
		if !p.alive() {
			return nil, fmt.Errorf("%s exited at start: %s", cmd.Path, p.logTail())
		}
		// Any answer will do: the server is listening.
		if resp, err := client.Get(p.url + "/v2/"); err == nil {
			resp.Body.Close()
			return p, nil
		}
		select {
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s did not answer on %s in 20 s: %s", cmd.Path, addr, p.logTail())
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the server to finish (SIGTERM), kills it after 30 s, and runs
// the cleanup.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	if p.cleanup != nil {
		p.cleanup()
	}
}

// logTail is the end of the server's log, for error messages.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpu is the CPU time the server has used so far, user and system
// (utime + stime of /proc/PID/stat).
func (p *process) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	_, fields, ok := statFields(b)
	if !ok {
		return 0, errors.New("server CPU: /proc/PID/stat is not as expected")
	}
	var utime, stime int64
	_, err1 := fmt.Sscan(fields[11], &utime) // field 14 of stat(5); fields[0] is field 3
	_, err2 := fmt.Sscan(fields[12], &stime) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// statFields splits a /proc/PID/stat line into the command name and the
// fields after it (fields[0] is field 3 of stat(5)), at least the first 15
// of them. The name, in parentheses, may hold spaces and parentheses:
// the fields start after the last ')'.
func statFields(b []byte) (comm string, fields []string, ok bool) {
	open, close := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
	if open < 0 || close < open {
		return "", nil, false
	}
	fields = strings.Fields(string(b[close+1:]))
	return string(b[open+1 : close]), fields, len(fields) >= 15
}

// peakRSS is the server's resident set high-water mark (VmHWM), in bytes.
func (p *process) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscan(rest, &kb); err != nil {
				return 0, fmt.Errorf("peak RSS: %q: %w", line, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/PID/status")
}
