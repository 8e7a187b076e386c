package main_test

import (
	"fmt"
	"maps"
	"math/rand"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The soak's load: clients that behave as registry clients do, and the
// ledger each keeps of what the registry acknowledged.

// soakRepos are the repositories every client pushes into, so that their
// images share layers within a repository and across repositories.
var soakRepos = []string{"soak/app", "soak/base", "soak/tools"}

// soakLayers is the pool of layers images are made of (1 to 48 KiB).
// Pushes take them from a window that slides along the pool, and now and
// then one from anywhere: so layers fall out of use, become garbage, and
// are pushed again while collections condemn and sweep them.
var soakLayers = func() [][]byte {
	rng := rand.New(rand.NewSource(1))
	pool := make([][]byte, 48)
	for i := range pool {
		pool[i] = make([]byte, 1024+rng.Intn(47*1024))
		rng.Read(pool[i])
	}
	return pool
}()

// soakWindow layers of the pool are in use at a time; the window moves
// by half its width every soakWindowStep.
const (
	soakWindow     = 8
	soakWindowStep = 3 * time.Second
)

var soakEpoch = time.Now()

func soakWindowAt() int { return int(time.Since(soakEpoch)/soakWindowStep) * soakWindow / 2 }

const (
	soakMaxImages = 25 // a client's ledger: beyond it, it deletes rather than pushes
	soakTags      = 4  // tags each client owns in each repository
	soakAttempts  = 10 // pushes a client tries before it reports a failure
)

// pushStyle is how a client pushes an image's blobs before its manifest.
type pushStyle int

const (
	uploadAll pushStyle = iota // upload every blob
	headFirst                  // HEAD each blob; upload those the repository lacks, as docker and containerd do
	// resumed uploads every blob, pauses 0.9 grace, HEADs them all (found:
	// skipped, as a client resuming an interrupted push does), pauses 0.5
	// grace and puts the manifest: after the uploads' grace has passed,
	// within the HEADs'.
	resumed
)

// soakClient is one client of the load, working one operation at a time.
type soakClient struct {
	id     int
	target *soakTarget
	http   *http.Client
	rng    *rand.Rand
	style  pushStyle
	pushes int

	acked map[string]image  // digest: acknowledged (201) and not deleted since
	tags  map[string]string // "repo:tag" -> the digest this client last set it to
	stats soakStats
}

// soakStats are what a client counted.
type soakStats struct {
	ops         map[string]int
	unavailable int // 503s (retryable), each followed by a new attempt
	// MANIFEST_BLOB_UNKNOWN: for a manifest whose every blob the client
	// had uploaded (201) within the grace; after it skipped blobs a HEAD
	// found; after a resumed push (every blob found by a HEAD within the
	// grace).
	blobUnknown, blobUnknownSkipped, blobUnknownResumed int
	// blobUnknownLate counts blobs gone, or manifests refused, past the
	// grace of their uploads or HEADs: allowed, and retried.
	blobUnknownLate int
	resumedPushes   int
	failures        []string
}

func (s *soakStats) add(o *soakStats) {
	for k, n := range o.ops {
		s.ops[k] += n
	}
	s.unavailable += o.unavailable
	s.blobUnknown += o.blobUnknown
	s.blobUnknownSkipped += o.blobUnknownSkipped
	s.blobUnknownResumed += o.blobUnknownResumed
	s.resumedPushes += o.resumedPushes
	s.blobUnknownLate += o.blobUnknownLate
	s.failures = append(s.failures, o.failures...)
}

func (s *soakStats) opsLine() string {
	var parts []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(s.ops)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.ops[k]))
		total += s.ops[k]
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func newSoakClient(id int, g *soakTarget, style pushStyle) *soakClient {
	return &soakClient{
		id: id, target: g, style: style,
		http:  &http.Client{Timeout: 30 * time.Second},
		rng:   rand.New(rand.NewSource(int64(id) + time.Now().UnixNano())),
		acked: map[string]image{}, tags: map[string]string{},
		stats: soakStats{ops: map[string]int{}},
	}
}

func (c *soakClient) fail(format string, args ...any) {
	c.stats.failures = append(c.stats.failures, fmt.Sprintf("client %d on %s: ", c.id, c.target.name)+fmt.Sprintf(format, args...))
}

// run works until deadline.
func (c *soakClient) run(deadline time.Time) {
	for time.Now().Before(deadline) {
		op := c.rng.Intn(100)
		switch {
		case c.style == resumed && time.Until(deadline) < 2*soakGCGrace:
			return // its pushes would outlast the load
		case len(c.acked) == 0 || (op < 35 && len(c.acked) < soakMaxImages):
			c.op("push", c.push)
		case op < 35:
			c.op("delete", c.delete)
		case op < 45:
			c.op("tag", c.tag)
		case op < 50:
			c.op("untag", c.untag)
		case op < 65:
			c.op("delete", c.delete)
		case op < 95:
			c.op("pull", c.pull)
		default:
			c.op("stray blob", c.stray)
		}
	}
}

func (c *soakClient) op(kind string, fn func()) {
	c.stats.ops[kind]++
	fn()
}

// some returns one of the client's acknowledged images.
func (c *soakClient) some() image {
	keys := slices.Sorted(maps.Keys(c.acked))
	return c.acked[keys[c.rng.Intn(len(keys))]]
}

func (c *soakClient) someTag() string {
	return fmt.Sprintf("c%d-%d", c.id, c.rng.Intn(soakTags))
}

// push pushes a new image: a config of its own, one to three layers of
// the pool and, one time in two, a layer of its own; under one of the
// client's tags, which may move the tag.
func (c *soakClient) push() {
	c.pushes++
	repo := soakRepos[c.rng.Intn(len(soakRepos))]
	picked := map[int]bool{}
	for _, i := range c.rng.Perm(soakWindow)[:1+c.rng.Intn(3)] {
		picked[(soakWindowAt()+i)%len(soakLayers)] = true
	}
	if c.rng.Intn(10) == 0 {
		picked[c.rng.Intn(len(soakLayers))] = true
	}
	var layers [][]byte
	for _, i := range slices.Sorted(maps.Keys(picked)) {
		layers = append(layers, soakLayers[i])
	}
	if c.rng.Intn(2) == 0 {
		own := make([]byte, 512+c.rng.Intn(16*1024))
		c.rng.Read(own)
		layers = append(layers, own)
	}
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","client":%d,"push":%d,"nonce":%d}`, c.id, c.pushes, c.rng.Int63())
	img := newImage(repo, config, layers...)
	tag := c.someTag()
	style := c.style
	for range soakAttempts {
		switch ok, again := c.tryPush(img, tag, style); {
		case ok:
			c.acked[img.digest] = img
			c.tags[repo+":"+tag] = img.digest
			return
		case !again:
			return
		}
		style = uploadAll // as a client told to push again does: everything, at once
	}
	c.fail("push of %s:%s refused %d times", repo, tag, soakAttempts)
}

// tryPush makes one attempt at pushing img, as a client does: its blobs,
// then its manifest. again reports a refusal the client retries: a 503,
// or a manifest whose blobs were collected before it came.
func (c *soakClient) tryPush(img image, tag string, style pushStyle) (ok, again bool) {
	began := time.Now() // the grace the uploads (or HEADs) give
	uploaded := began
	skipped := false
	for _, d := range slices.Sorted(maps.Keys(img.blobs())) {
		if style == headFirst {
			found, ok, again := c.head(img.repo, d)
			if !ok {
				return false, again
			}
			if found {
				skipped = true
				continue
			}
		}
		r, err := call(c.http, "POST", c.target.base()+"/v2/"+img.repo+"/blobs/uploads/?digest="+d, img.blobs()[d])
		if err != nil {
			c.fail("push blob: %v", err)
			return false, false
		}
		if r.status != http.StatusCreated {
			return false, c.unexpected("push blob "+d, r)
		}
	}
	switch {
	case style == resumed:
		c.stats.resumedPushes++
		time.Sleep(soakGCGrace * 9 / 10)
		began = time.Now() // the grace the HEADs renew
		for _, d := range slices.Sorted(maps.Keys(img.blobs())) {
			found, ok, again := c.head(img.repo, d)
			if !ok {
				return false, again
			}
			if !found {
				// Within the uploads' grace only if the sleep did not
				// overrun it, as it can on a loaded machine.
				return false, c.late(time.Since(uploaded) >= soakGCGrace, "blob %s of %s, pushed %v before, is gone", d, img.repo, time.Since(uploaded).Round(time.Millisecond))
			}
		}
		time.Sleep(soakGCGrace / 2)
	case c.rng.Intn(5) == 0:
		// As a client does whose other layers take a while to upload.
		time.Sleep(time.Duration(100+c.rng.Intn(900)) * time.Millisecond)
	}
	r, err := call(c.http, "PUT", c.target.base()+"/v2/"+img.repo+"/manifests/"+tag, img.manifest, "Content-Type", ociManifest)
	if err != nil {
		c.fail("push manifest: %v", err)
		return false, false
	}
	if r.errorCode() == "MANIFEST_BLOB_UNKNOWN" {
		took := time.Since(began).Round(time.Millisecond)
		switch {
		case time.Since(began) >= soakGCGrace:
			c.stats.blobUnknownLate++ // past the grace: the collector may
		case style == resumed:
			// Every blob was found by a HEAD within the grace. A known
			// gap on replicas: a HEAD renews the grace only once the
			// replica that served it has flushed its reads.
			c.stats.blobUnknownResumed++
			if len(c.target.servers) == 1 {
				c.fail("manifest %s@%s refused though a HEAD found each of its blobs %v before: %s", img.repo, img.digest, took, r)
			}
		case skipped:
			c.stats.blobUnknownSkipped++
		default:
			c.stats.blobUnknown++
			c.fail("manifest %s@%s refused though its blobs were all pushed within %v: %s", img.repo, img.digest, took, r)
		}
		return false, true
	}
	if r.status != http.StatusCreated {
		return false, c.unexpected("push manifest "+img.repo+":"+tag, r)
	}
	return true, false
}

// head asks whether repo has blob d. ok is false when the HEAD was
// refused; again then says whether to try the push again.
func (c *soakClient) head(repo, d string) (found, ok, again bool) {
	r, err := call(c.http, "HEAD", c.target.base()+"/v2/"+repo+"/blobs/"+d, nil)
	switch {
	case err != nil:
		c.fail("HEAD blob: %v", err)
		return false, false, false
	case r.status == http.StatusOK:
		return true, true, false
	case r.status == http.StatusNotFound:
		return false, true, false
	}
	return false, false, c.unexpected("HEAD blob "+d, r)
}

// late reports what a client sees after the grace: a refusal it retries
// when past is true, and otherwise a failure.
func (c *soakClient) late(past bool, format string, args ...any) bool {
	if past {
		c.stats.blobUnknownLate++
		return true
	}
	c.fail(format, args...)
	return false
}

// unexpected counts a refusal: a 503 is retried, anything else is a
// failure. It reports whether to try again.
func (c *soakClient) unexpected(what string, r reply) bool {
	if r.status == http.StatusServiceUnavailable {
		c.stats.unavailable++
		time.Sleep(time.Duration(10+c.rng.Intn(40)) * time.Millisecond)
		return true
	}
	c.fail("%s: %s", what, r)
	return false
}

// tag points one of the client's tags at one of its images.
func (c *soakClient) tag() {
	img := c.some()
	tag := c.someTag()
	r, err := call(c.http, "PUT", c.target.base()+"/v2/"+img.repo+"/manifests/"+tag, img.manifest, "Content-Type", ociManifest)
	if err != nil || r.status != http.StatusCreated {
		c.fail("tag %s:%s -> %s: %v %v", img.repo, tag, img.digest, r, err)
		return
	}
	c.tags[img.repo+":"+tag] = img.digest
}

// untag deletes one of the client's tags; its image stays.
func (c *soakClient) untag() {
	keys := slices.Sorted(maps.Keys(c.tags))
	if len(keys) == 0 {
		return
	}
	key := keys[c.rng.Intn(len(keys))]
	repo, tag, _ := strings.Cut(key, ":")
	r, err := call(c.http, "DELETE", c.target.base()+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil || r.status != http.StatusAccepted {
		c.fail("untag %s: %v %v", key, r, err)
		return
	}
	delete(c.tags, key)
}

// delete deletes one of the client's images, and so the tags on it.
func (c *soakClient) delete() {
	img := c.some()
	r, err := call(c.http, "DELETE", c.target.base()+"/v2/"+img.repo+"/manifests/"+img.digest, nil)
	if err != nil || r.status != http.StatusAccepted {
		c.fail("delete %s@%s: %v %v", img.repo, img.digest, r, err)
		return
	}
	delete(c.acked, img.digest)
	for k, d := range c.tags {
		if d == img.digest {
			delete(c.tags, k)
		}
	}
}

// pull pulls one of the client's images whole, by digest.
func (c *soakClient) pull() {
	img := c.some()
	if err := pullImage(c.http, c.target.base(), img); err != nil {
		c.fail("pull of acknowledged content: %v", err)
	}
}

// stray pushes a blob no manifest will name: garbage once past the grace.
func (c *soakClient) stray() {
	p := make([]byte, 256+c.rng.Intn(4096))
	c.rng.Read(p)
	repo := soakRepos[c.rng.Intn(len(soakRepos))]
	for range soakAttempts {
		r, err := call(c.http, "POST", c.target.base()+"/v2/"+repo+"/blobs/uploads/?digest="+sha(p), p)
		if err != nil {
			c.fail("push stray blob: %v", err)
			return
		}
		if r.status == http.StatusCreated || !c.unexpected("push stray blob", r) {
			return
		}
	}
}

// checkLedger pulls every image the client holds acknowledged, from every
// server of its target, and reads every tag it set.
func (c *soakClient) checkLedger() {
	for _, s := range c.target.servers {
		for _, img := range c.acked {
			if err := pullImage(c.http, s.url(""), img); err != nil {
				c.fail("pull of acknowledged content after the load: %v", err)
			}
		}
		for key, want := range c.tags {
			repo, tag, _ := strings.Cut(key, ":")
			r, err := call(c.http, "GET", s.url("/v2/"+repo+"/manifests/"+tag), nil, "Accept", ociManifest)
			if err != nil || r.status != http.StatusOK || r.header.Get("Docker-Content-Digest") != want {
				c.fail("tag %s after the load: %v %v, digest %s, want %s", key, r.status, err, r.header.Get("Docker-Content-Digest"), want)
			}
		}
	}
}
