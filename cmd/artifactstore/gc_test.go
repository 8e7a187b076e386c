package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
)

// TestGCKilled kills `artifactstore gc` with SIGKILL at several moments of
// a collection with lots to do — after fixed delays, and as soon as it has
// begun deleting bytes (so that it dies between a gc.condemned and its
// gc.swept) — then lets a last run finish. Whatever was interrupted: the
// last run succeeds, every byte of garbage is gone from disk, every byte
// of what is kept pulls whole, verify is clean with nothing left for gc,
// and replaying the log rebuilds the same views. On SQLite and on
// PostgreSQL, blobs on the filesystem.
func TestGCKilled(t *testing.T) {
	t.Run("sqlite+fs", func(t *testing.T) { testGCKilled(t, "") })
	t.Run("postgres+fs", func(t *testing.T) { testGCKilled(t, pgtest.DSN(t)) })
}

func testGCKilled(t *testing.T, dsn string) {
	data := t.TempDir()
	var db []string // the flags that name the event log, for every command
	if dsn != "" {
		db = []string{"--db", dsn}
	}
	g := makeGCGarbage(t, data, dsn, db)
	t.Logf("garbage: %d blobs (%d of them bytes no event names); kept: %d images, %d blobs", len(g.garbage), g.unrecorded, len(g.kept), len(g.keptBlobs))

	gcArgs := append([]string{"gc", "--data", data, "--gc-grace", "0s"}, db...)
	var seen int64 // events already counted
	midSweep := 0  // kills that left blobs condemned and not swept
	for _, kill := range []struct {
		name string
		wait func(exited <-chan struct{})
	}{
		{"after 5ms", sleep(5 * time.Millisecond)},
		{"after 20ms", sleep(20 * time.Millisecond)},
		{"after 50ms", sleep(50 * time.Millisecond)},
		{"as it deletes", g.deleting},
		{"after 100ms", sleep(100 * time.Millisecond)},
		{"as it deletes", g.deleting},
		{"after 200ms", sleep(200 * time.Millisecond)},
		{"as it deletes", g.deleting},
	} {
		cmd := exec.Command(binary, gcArgs...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var werr error
		go func() { werr = cmd.Wait(); close(exited) }()
		kill.wait(exited)
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		finished := !cmd.ProcessState.Sys().(syscall.WaitStatus).Signaled() // it ran to the end before the kill
		if finished && werr != nil {
			t.Fatalf("gc failed by itself: %v\n%s", werr, out.String())
		}
		state := "killed " + kill.name
		if finished {
			state = "ran to the end (" + kill.name + ")"
		}

		l := openLog(t, data, dsn)
		n := countEvents(t, l, seen)
		seen, _ = l.Head(context.Background())
		left, err := l.Condemned(context.Background())
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			midSweep++
		}
		t.Logf("%-29s appended %4d blob.unlinked, %d gc.condemned, %d gc.swept; %4d blobs left condemned and not swept; %4d of %d garbage blobs still stored",
			state, n[eventlog.TypeBlobUnlinked], n[eventlog.TypeGCCondemned], n[eventlog.TypeGCSwept], len(left), len(g.stored(t, g.garbage)), len(g.garbage))
		if finished {
			if !strings.Contains(out.String(), "gc run ") {
				t.Fatalf("gc exited 0 without its report:\n%s", out.String())
			}
			break // nothing left to interrupt
		}
		if out.Len() > 0 {
			t.Logf("output of the killed run: %s", strings.TrimSpace(out.String()))
		}
		if len(n) == 0 {
			continue // it appended nothing, so it deleted nothing either
		}
		if vout, err := run(t, append([]string{"verify", "--data", data}, db...)...); err != nil || !strings.Contains(vout, "; 0 problems") {
			t.Fatalf("verify after a kill %s: %v\n%s", kill.name, err, vout)
		}
	}
	if midSweep == 0 {
		t.Fatal("no kill landed between a gc.condemned and its gc.swept: the test did not exercise an interrupted sweep")
	}

	out, err := run(t, gcArgs...)
	if err != nil || !strings.Contains(out, "gc run ") {
		t.Fatalf("gc after the kills: %v\n%s", err, out)
	}
	t.Logf("last run: %s", lastLine(out))
	if left := g.stored(t, g.garbage); len(left) > 0 {
		t.Fatalf("%d garbage blobs still stored after the last run, e.g. %s", len(left), left[0])
	}
	if stored, want := g.allStored(t), slices.Sorted(maps.Keys(g.keptBlobs)); !slices.Equal(stored, want) {
		t.Fatalf("blobs stored after the last run:\n%v\nwant the kept ones:\n%v", stored, want)
	}
	verifyCleanReplay(t, data, db)

	s := startWith(t, data, freeAddr(t), db...)
	c := &http.Client{Timeout: 30 * time.Second}
	for _, img := range g.kept {
		if err := pullImage(c, s.url(""), img); err != nil {
			t.Fatalf("kept image after the collections: %v", err)
		}
	}
	// What was collected can be pushed again, and is whole.
	again := newImage("junk/0", g.strayConfig, g.strayLayer)
	if err := pushImage(c, s.url(""), again, "again"); err != nil {
		t.Fatalf("push of collected content: %v", err)
	}
	if err := pullImage(c, s.url(""), again); err != nil {
		t.Fatal(err)
	}
}

// verifyCleanReplay checks a store whose servers are all stopped: verify
// is clean with nothing left for gc, replay rebuilds the same views
// (compared row by row), and verify is clean again.
func verifyCleanReplay(t *testing.T, data string, db []string) {
	t.Helper()
	const clean = "; 0 problems; for gc: 0 stored blobs no event names, 0 unused blobs and links"
	vout, err := run(t, append([]string{"verify", "--data", data}, db...)...)
	if err != nil || !strings.Contains(vout, clean) {
		t.Fatalf("verify: %v\n%s", err, vout)
	}
	t.Logf("verify: %s", lastLine(vout))
	dsn := ""
	if len(db) == 2 {
		dsn = db[1]
	}
	l := openLog(t, data, dsn)
	before, err := l.Dump(context.Background())
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, append([]string{"replay", "--data", data}, db...)...); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	l = openLog(t, data, dsn)
	after, err := l.Dump(context.Background())
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		for view := range before {
			if !slices.Equal(before[view], after[view]) {
				t.Errorf("view %s differs after replay: %d rows before, %d after", view, len(before[view]), len(after[view]))
			}
		}
		t.Fatal("replay rebuilt different views")
	}
	if vout, err := run(t, append([]string{"verify", "--data", data}, db...)...); err != nil || !strings.Contains(vout, clean) {
		t.Fatalf("verify after replay: %v\n%s", err, vout)
	}
}

// gcGarbage is a data directory full of garbage, its server stopped.
type gcGarbage struct {
	data, dsn  string // where the event log is (dsn: PostgreSQL, else SQLite under data)
	blobDir    string
	garbage    []string          // digests a collection must delete, sorted
	unrecorded int               // of which bytes written without an event
	kept       []image           // images that must pull whole after it
	keptBlobs  map[string][]byte // every blob they need, manifests too

	strayConfig, strayLayer []byte // a collected image's content, to push again
}

// makeGCGarbage runs a server on data and pushes through it: 1,500 small
// blobs no manifest names, in ten repositories; three images it keeps and
// three it deletes, one of these sharing a layer with a kept one. Then it
// stops the server and writes 100 blobs into the store with no event, as
// a crash between storing bytes and recording them leaves them. The server
// keeps content of up to 300 bytes in the log (--inline-max): about a
// third of the stray blobs and the configs; the rest are files.
func makeGCGarbage(t *testing.T, data, dsn string, db []string) *gcGarbage {
	s := startWith(t, data, freeAddr(t), append([]string{"--inline-max", "300"}, db...)...)
	c := &http.Client{Timeout: 30 * time.Second}
	g := &gcGarbage{data: data, dsn: dsn, blobDir: filepath.Join(data, "blobs"), keptBlobs: map[string][]byte{}}

	const strays = 1500
	work := make(chan int)
	errs := make(chan error, 8)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				p := random(t, 100+i%500)
				r, err := call(c, "POST", s.url(fmt.Sprintf("/v2/junk/%d/blobs/uploads/?digest=%s", i%10, sha(p))), p)
				if err == nil && r.status != http.StatusCreated {
					err = fmt.Errorf("push stray blob: %s", r)
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				g.garbage = append(g.garbage, sha(p))
				mu.Unlock()
			}
		}()
	}
	for i := range strays {
		select {
		case work <- i:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}

	shared := random(t, 40_000)
	for i := range 3 {
		kept := newImage("app", fmt.Appendf(nil, `{"kept":%d}`, i), random(t, 20_000), shared)
		if i > 0 {
			kept = newImage("app", fmt.Appendf(nil, `{"kept":%d}`, i), random(t, 30_000+i))
		}
		gone := newImage("old", fmt.Appendf(nil, `{"gone":%d}`, i), random(t, 50_000+i))
		if i == 0 {
			gone = newImage("old", fmt.Appendf(nil, `{"gone":%d}`, i), random(t, 50_000), shared)
			g.strayConfig, g.strayLayer = gone.config, gone.layers[0]
		}
		for _, img := range []image{kept, gone} {
			if err := pushImage(c, s.url(""), img, fmt.Sprint("v", i)); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := call(c, "DELETE", s.url("/v2/old/manifests/"+gone.digest), nil); err != nil || r.status != http.StatusAccepted {
			t.Fatalf("delete %s: %v %v", gone.digest, r, err)
		}
		g.kept = append(g.kept, kept)
		g.keptBlobs[kept.digest] = kept.manifest
		for d, p := range kept.blobs() {
			g.keptBlobs[d] = p
		}
		g.garbage = append(g.garbage, gone.digest, sha(gone.config), sha(gone.layers[0]))
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()

	for i := range 100 {
		p := random(t, 200+i)
		path := g.path(sha(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, p, 0o644); err != nil {
			t.Fatal(err)
		}
		g.garbage = append(g.garbage, sha(p))
		g.unrecorded++
	}
	slices.Sort(g.garbage)
	inLog := len(g.garbage) - len(g.onDisk(g.garbage))
	if left := g.stored(t, g.garbage); len(left) != len(g.garbage) || inLog < 300 || inLog > len(g.garbage)/2 {
		t.Fatalf("%d of %d garbage blobs stored before any collection, %d of them in the log; want all, a third or so in the log", len(left), len(g.garbage), inLog)
	}
	return g
}

// stored returns those of digests whose bytes are stored: as files, or
// kept in the log.
func (g *gcGarbage) stored(t *testing.T, digests []string) []string {
	l := openLog(t, g.data, g.dsn)
	defer l.Close()
	var out []string
	for _, d := range digests {
		if _, err := os.Stat(g.path(d)); err == nil {
			out = append(out, d)
		} else if _, err := l.Content(context.Background(), d); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// allStored lists every blob stored, as a file or in the log, sorted.
func (g *gcGarbage) allStored(t *testing.T) []string {
	out := storedBlobs(g.blobDir)
	l := openLog(t, g.data, g.dsn)
	defer l.Close()
	dump, err := l.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range dump["contents"] {
		key, _, _ := strings.Cut(strings.TrimPrefix(row, "sha256="), " ")
		if !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// path is where the filesystem store keeps a blob.
func (g *gcGarbage) path(d string) string {
	hex := strings.TrimPrefix(d, "sha256:")
	return filepath.Join(g.blobDir, "sha256", hex[:2], hex)
}

// onDisk returns those of digests whose bytes are stored.
func (g *gcGarbage) onDisk(digests []string) []string {
	var out []string
	for _, d := range digests {
		if _, err := os.Stat(g.path(d)); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// storedBlobs lists every blob in a filesystem store, sorted.
func storedBlobs(blobDir string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(blobDir, "sha256"), func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			out = append(out, "sha256:"+e.Name())
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// deleting returns once a collection has begun deleting garbage bytes
// (collections delete in digest order, so the first few still on disk
// go first), or once the collection has exited.
func (g *gcGarbage) deleting(exited <-chan struct{}) {
	watch := g.onDisk(g.garbage)
	watch = watch[:min(len(watch), 16)]
	for {
		select {
		case <-exited:
			return
		default:
		}
		if len(g.onDisk(watch)) < len(watch) {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func sleep(d time.Duration) func(<-chan struct{}) {
	return func(exited <-chan struct{}) {
		select {
		case <-time.After(d):
		case <-exited:
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
