// Package ui_test drives the web UI in a real browser (Debian's chromium,
// through chromedp) against a real registry on loopback: the pages must
// show what the test pushed, the live page must show a push made while it
// is open, and no page may log a console error. A screenshot of each page
// is written to UI_SCREENSHOTS (default results/ui).
//
// Without chromium the test skips, unless UI_TEST_REQUIRED is set (as
// "make ui-test" and CI set it): there, a missing browser fails.
package ui_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"
)

// browser finds chromium, or skips (fails under UI_TEST_REQUIRED).
func browser(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("UI_TEST_REQUIRED") != "" {
		t.Fatal("no chromium on PATH; apt-get install chromium")
	}
	t.Skip("no chromium on PATH (make ui-test requires it)")
	return ""
}

// server is a registry on SQLite and a blob directory, on loopback.
func server(t *testing.T, mutate ...func(*registry.Options)) *httptest.Server {
	dir := t.TempDir()
	l, err := sqlite.Open(context.Background(), filepath.Join(dir, "eventlog.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	b, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	opts := registry.Options{Log: l, Blobs: blobstore.New(b)}
	for _, m := range mutate {
		m(&opts)
	}
	reg, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(func() { reg.StopStreams(); srv.Close() })
	return srv
}

// client pushes to the server, with Basic credentials when user is set.
type client struct {
	t                *testing.T
	base, user, pass string
}

func (c client) send(method, path, contentType string, body []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		c.t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
}

func sha(p []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(p)) }

func (c client) pushBlob(repo string, p []byte) string {
	d := sha(p)
	c.send("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", p)
	return d
}

// pushImage pushes a one-layer image under tag; extra is added to the
// manifest (artifactType, subject). It returns the manifest's digest.
func (c client) pushImage(repo, tag string, layer []byte, extra string) string {
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"%s,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d,"annotations":{"org.opencontainers.image.title":"layer.tar.gz"}}]}`,
		extra, c.pushBlob(repo, cfg), len(cfg), c.pushBlob(repo, layer), len(layer)))
	c.send("PUT", "/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", m)
	return sha(m)
}

// console collects what the page reports as errors.
type console struct {
	mu   sync.Mutex
	errs []string
}

func (c *console) listen(ctx context.Context) error {
	return chromedp.Listen(ctx, func(ev any) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			c.errs = append(c.errs, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				c.errs = append(c.errs, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				c.errs = append(c.errs, fmt.Sprintf("%s %s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
}

// check fails the test for each error the page reported, but those
// containing one of expected (the browser's own report of a connection the
// test cut on purpose).
func (c *console) check(t *testing.T, page string, expected ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
next:
	for _, e := range c.errs {
		for _, x := range expected {
			if strings.Contains(e, x) {
				continue next
			}
		}
		t.Errorf("%s: %s", page, e)
	}
	c.errs = nil
}

func shotsDir(t *testing.T) string {
	dir := os.Getenv("UI_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "results", "ui")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openBrowser starts chromium and returns its tab, the console errors it
// collects, and helpers: a screenshot action, the text of a selector (once
// visible), and an action polling a predicate.
func openBrowser(t *testing.T, exe string) (context.Context, *console, func(string) chromedp.Action[chromedp.Void], func(string) string, func(string, time.Duration) chromedp.Action[chromedp.Void]) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	con := &console{}
	if err := con.listen(ctx); err != nil {
		t.Fatal(err)
	}
	shots := shotsDir(t)
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		}
	}
	text := func(sel string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(sel)); err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	poll := func(expr string, within time.Duration) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(20*time.Millisecond))(ctx, tg)
			return chromedp.Void{}, err
		}
	}
	return ctx, con, shot, text, poll
}

func TestUI(t *testing.T) {
	exe := browser(t)
	srv := server(t)
	base := srv.URL
	c := client{t: t, base: base}

	layer := bytes.Repeat([]byte("layer bytes "), 300)
	first := c.pushImage("demo/app", "v1", []byte("an older layer"), "")
	image := c.pushImage("demo/app", "v1", layer, "") // v1 moves: two changes in its history
	sbom := c.pushImage("demo/app", "sbom", []byte(`{"spdxVersion":"SPDX-2.3"}`),
		fmt.Sprintf(`,"artifactType":"application/spdx+json","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1}`, image))
	readme := []byte("# cli\nA native artifact.\n")
	c.send("PUT", "/api/v1/repositories/tools/cli/-/versions/1.0/files/README.md", "text/markdown", readme)

	ctx, con, shot, text, poll := openBrowser(t, exe)
	must := func(page, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s does not show %q; it shows:\n%s", page, w, got)
			}
		}
	}

	// Repositories: both, newest first, with search from the keyboard.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#repos tbody tr"), shot("repositories")); err != nil {
		t.Fatal(err)
	}
	rows := text("#repos tbody")
	must("repositories", rows, "demo/app", "tools/cli")
	if strings.Index(rows, "tools/cli") > strings.Index(rows, "demo/app") {
		t.Errorf("repositories are not newest first:\n%s", rows)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("/")); err != nil {
		t.Fatal(err)
	}
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	if err == nil {
		err = chromedp.Do(ctx, chromedp.SendKeys("#search", "cli"))
	}
	if err != nil {
		t.Fatal(err)
	}
	if focused != "search" {
		t.Errorf("/ focused %q, not the search box", focused)
	}
	if rows := text("#repos tbody"); strings.Contains(rows, "demo/app") || !strings.Contains(rows, "tools/cli") {
		t.Errorf("search for cli shows:\n%s", rows)
	}
	con.check(t, "repositories")

	// An image: its manifest, both digests of its layer, the SBOM that
	// refers to it, and the commands to pull it.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/#/artifact/demo/app/-/v1"), chromedp.WaitVisible("#manifest"), shot("artifact")); err != nil {
		t.Fatal(err)
	}
	page := text("main")
	if strings.Contains(text("main p"), "native") {
		t.Errorf("an image pushed over /v2/ is marked native: %s", text("main p"))
	}
	must("the image page", page, image, sha(layer), digest.FromBytes(digest.BLAKE3, layer).String(), "application/spdx+json",
		"oras pull --plain-http "+strings.TrimPrefix(base, "http://")+"/demo/app:v1", "layer.tar.gz")
	con.check(t, "artifact")

	// A native version: its files with both digests, JCS and CBOR forms.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/#/artifact/tools/cli/-/1.0"), chromedp.WaitVisible("#jcs"),
		poll(`document.getElementById('cbor').textContent.includes('bytes')`, 10*time.Second), shot("native")); err != nil {
		t.Fatal(err)
	}
	page = text("main")
	if cbor := text("#cbor"); !strings.Contains(cbor, "\n000000  a") { // a CBOR map, not JSON's "{" (7b)
		t.Errorf("the CBOR form is not CBOR:\n%.200s", cbor)
	}
	must("the native page", page, "README.md", sha(readme), digest.FromBytes(digest.BLAKE3, readme).String(), `"manifestVersion":1`, "artifactstore pull --server "+base+" tools/cli:1.0")
	con.check(t, "native")

	// A tag's history: both moves of v1, newest first.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/#/history/demo/app/-/v1"), chromedp.WaitVisible("table.history"), shot("history")); err != nil {
		t.Fatal(err)
	}
	hist := text("table.history tbody")
	must("the history page", hist, image, first, "tag.set", "anonymous")
	if strings.Index(hist, image) > strings.Index(hist, first) {
		t.Errorf("history is not newest first:\n%s", hist)
	}
	con.check(t, "history")

	// The live stream: a push made while the page is open appears within
	// a second, filtered to its repository.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/#/events?repository=demo/app&type=tag.set"),
		poll(`document.getElementById('stream-status').textContent.startsWith('Live')`, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	c.pushImage("other/repo", "elsewhere", []byte("not shown"), "")
	fresh := c.pushImage("demo/app", "v2", []byte("a new layer"), "")
	if err := chromedp.Do(ctx, poll(fmt.Sprintf(`document.getElementById('events-body').textContent.includes(%q)`, fresh), time.Second), shot("events")); err != nil {
		t.Fatalf("the push of v2 did not appear on the live page within a second: %v", err)
	}
	// The connection drops; a push made meanwhile appears once the page
	// reconnects (Last-Event-ID), and nothing appears twice.
	srv.CloseClientConnections()
	if err := chromedp.Do(ctx, poll(`document.getElementById('stream-status').textContent.startsWith('Disconnected')`, 10*time.Second)); err != nil {
		t.Fatalf("the page did not notice the dropped stream: %v", err)
	}
	during := c.pushImage("demo/app", "v3", []byte("pushed while disconnected"), "")
	if err := chromedp.Do(ctx, poll(fmt.Sprintf(`document.getElementById('events-body').textContent.includes(%q)`, during), 15*time.Second)); err != nil {
		t.Fatalf("the push made while the stream was down did not appear after the reconnect: %v", err)
	}
	live := text("#events-body")
	if strings.Contains(live, "other/repo") {
		t.Errorf("live page, filtered to demo/app, shows other/repo:\n%s", live)
	}
	// Every tag.set of demo/app, once: the recent ones read as a page, v2
	// live, v3 across the reconnect.
	for name, d := range map[string]string{"v1 (first)": first, "v1 (moved)": image, "sbom": sbom, "v2": fresh, "v3": during} {
		if n := strings.Count(live, d); n != 1 {
			t.Errorf("the live page shows %s (%s) %d times:\n%s", name, d, n, live)
		}
	}
	con.check(t, "events", "net::ERR_INCOMPLETE_CHUNKED_ENCODING (http://"+strings.TrimPrefix(base, "http://")+"/api/v1/events?")

	// A narrow screen: the page does not scroll sideways (tables scroll
	// in their own box).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/ui/#/"), chromedp.WaitVisible("#repos tbody tr"), shot("narrow")); err != nil {
		t.Fatal(err)
	}
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow {
		t.Error("on a 390 px wide screen the repositories page scrolls sideways")
	}
	con.check(t, "narrow")
	t.Logf("screenshots in %s", shotsDir(t))
}

// TestUISignIn: with authentication on, an anonymous visitor sees nothing
// and is offered a sign-in (without a failed request in the console);
// signed in, the pages show what the user may pull.
func TestUISignIn(t *testing.T) {
	exe := browser(t)
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600)
	users, err := auth.LoadHtpasswd(htpasswd)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.LoadKeyDir(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{Users: users, Keys: keys, ValidName: func(n string) bool { return registry.ValidateName(n) == nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, func(o *registry.Options) { o.Auth = a })
	image := client{t: t, base: srv.URL, user: "alice", pass: "alice-pw"}.pushImage("team/private", "v1", []byte("private layer"), "")

	ctx, con, shot, text, poll := openBrowser(t, exe)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/"), poll(`!document.getElementById('signin').hidden`, 10*time.Second)); err != nil {
		t.Fatalf("no sign-in offered: %v", err)
	}
	if rows := text("main"); strings.Contains(rows, "team/private") {
		t.Errorf("an anonymous visitor sees the private repository:\n%s", rows)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#signin"), chromedp.WaitVisible("#login"),
		chromedp.SendKeys(`#login input[name="user"]`, "alice"), chromedp.SendKeys(`#login input[name="password"]`, "alice-pw"),
		chromedp.Click(`#login button[value="ok"]`),
		poll(`document.getElementById('signin').textContent === 'Sign out alice'`, 10*time.Second),
		chromedp.WaitVisible("#repos tbody tr"), shot("signed-in")); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	if rows := text("#repos tbody"); !strings.Contains(rows, "team/private") {
		t.Errorf("signed in as alice, the repositories page shows:\n%s", rows)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/#/artifact/team/private/-/v1"), chromedp.WaitVisible("#manifest")); err != nil {
		t.Fatal(err)
	}
	if page := text("main"); !strings.Contains(page, image) {
		t.Errorf("the artifact page, signed in, does not show %s:\n%s", image, page)
	}
	con.check(t, "signed in")
}
