package auth

// TLS serving with files that change under a running server.
//
// Invariants:
//   - A handshake is always served with a certificate, key and client CA
//     pool that were loaded together and checked: the key matches the
//     certificate, and the CA file held at least one certificate. A
//     replacement that fails these checks is logged and ignored; the pair
//     that was serving keeps serving.
//   - The files are looked at (stat, not read) at most once per
//     CheckInterval, on the handshake that finds the interval elapsed, and
//     read only when their identity, size or modification time changed.
//     Reload reads them at once (SIGHUP). No handshake waits on a reload
//     that another handshake is doing.
//   - Connections already open keep the certificate they negotiated; a
//     rotation affects new connections only.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, the TLS files are checked for
// a change when TLSOptions.CheckInterval is zero.
const DefaultCheckInterval = 5 * time.Second

// TLSOptions says where a server's certificate, key and client CA bundle
// are. The files are PEM.
type TLSOptions struct {
	CertFile string // the certificate chain, leaf first; required
	KeyFile  string // the leaf's private key; required

	// ClientCAFile, when set, turns on mutual TLS: a client certificate,
	// if the client presents one, must chain to one of these CAs or the
	// handshake fails. Clients without a certificate are still served
	// (they may authenticate otherwise, for example with a token).
	ClientCAFile string

	CheckInterval time.Duration // default DefaultCheckInterval
	Logger        *slog.Logger  // default slog.Default()
}

// TLSReloader serves the certificate files named by TLSOptions to TLS
// handshakes and picks up their replacements without a restart.
type TLSReloader struct {
	opts    TLSOptions
	current atomic.Pointer[tls.Config] // what new handshakes get
	checked atomic.Int64               // unix nanoseconds of the last look at the files

	mu    sync.Mutex    // held by the one goroutine reloading
	tried []os.FileInfo // the files as last read, whether or not they loaded; guarded by mu
}

// NewTLSReloader loads the files once and fails, naming the file, when they
// do not load.
func NewTLSReloader(opts TLSOptions) (*TLSReloader, error) {
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("TLS needs both a certificate file and a key file")
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &TLSReloader{opts: opts}
	r.tried = r.stat()
	cfg, err := r.load()
	if err != nil {
		return nil, err
	}
	r.current.Store(cfg)
	r.checked.Store(time.Now().UnixNano())
	return r, nil
}

// Config is the tls.Config to serve with (http.Server.TLSConfig). Each
// handshake gets the files last loaded, and may trigger the periodic check.
// It offers HTTP/2 and HTTP/1.1 by ALPN.
func (r *TLSReloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			r.maybeReload()
			return r.current.Load(), nil
		},
	}
}

// Reload reads the files now, changed or not, as on SIGHUP. On error,
// which is also logged, the previous files keep serving.
func (r *TLSReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked.Store(time.Now().UnixNano())
	return r.reloadLocked(true)
}

// maybeReload looks at the files if CheckInterval has passed since the last
// look, unless another handshake is already looking.
func (r *TLSReloader) maybeReload() {
	now := time.Now()
	if now.Sub(time.Unix(0, r.checked.Load())) < r.opts.CheckInterval || !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	r.checked.Store(now.UnixNano())
	r.reloadLocked(false)
}

// reloadLocked reads the files if force or if they changed since last
// tried. The stat comes before the read: a file replaced in between is
// seen as changed at the next look, never missed.
func (r *TLSReloader) reloadLocked(force bool) error {
	seen := r.stat()
	if !force && sameFiles(seen, r.tried) {
		return nil
	}
	// Remember what was tried even when it fails, so that a broken file is
	// logged once, not at every look, and its repair is seen as a change.
	r.tried = seen
	cfg, err := r.load()
	if err != nil {
		r.opts.Logger.Error("TLS files not reloaded; still serving the previous certificate", "err", err)
		return err
	}
	r.current.Store(cfg)
	leaf := cfg.Certificates[0].Leaf
	r.opts.Logger.Info("TLS files reloaded", "cert", r.opts.CertFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	return nil
}

func (r *TLSReloader) files() []string {
	if r.opts.ClientCAFile == "" {
		return []string{r.opts.CertFile, r.opts.KeyFile}
	}
	return []string{r.opts.CertFile, r.opts.KeyFile, r.opts.ClientCAFile}
}

// stat describes each file; nil for one that cannot be stat'ed (the read
// that follows reports why).
func (r *TLSReloader) stat() []os.FileInfo {
	var infos []os.FileInfo
	for _, name := range r.files() {
		fi, _ := os.Stat(name) // follows symlinks, as Kubernetes secret volumes swap them
		infos = append(infos, fi)
	}
	return infos
}

// sameFiles reports whether no file was replaced, resized or touched.
func sameFiles(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch {
		case a[i] == nil && b[i] == nil:
		case a[i] == nil || b[i] == nil:
			return false
		case !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()):
			return false
		}
	}
	return true
}

// load reads and checks the files and builds the configuration new
// handshakes get.
func (r *TLSReloader) load() (*tls.Config, error) {
	certPEM, err := os.ReadFile(r.opts.CertFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(r.opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", r.opts.CertFile, r.opts.KeyFile, err)
	}
	if now := time.Now(); now.After(pair.Leaf.NotAfter) || now.Before(pair.Leaf.NotBefore) {
		r.opts.Logger.Warn("the TLS certificate is not valid now; clients will refuse it", "cert", r.opts.CertFile,
			"not_before", pair.Leaf.NotBefore, "not_after", pair.Leaf.NotAfter)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
		Certificates: []tls.Certificate{pair},
	}
	if r.opts.ClientCAFile != "" {
		pool, err := loadCertPool(r.opts.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		// Not RequireAndVerify: clients that authenticate by token have no
		// certificate. One that presents a certificate must pass.
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		// A resumed session is not verified again: with tickets, a client
		// certificate verified under a CA since removed would still be
		// accepted. Full handshakes keep removal of a CA effective.
		cfg.SessionTicketsDisabled = true
	}
	return cfg, nil
}

// loadCertPool reads a PEM bundle that must hold at least one certificate
// and nothing unparseable.
func loadCertPool(name string) (*x509.CertPool, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA %s: certificate %d: %w", name, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("TLS client CA %s: no PEM CERTIFICATE block", name)
	}
	return pool, nil
}

// CertIdentities returns the names a verified client certificate may be
// known by in a policy: "cn:" and the subject's common name, then "dns:",
// "uri:" and "email:" and each subject alternative name of that kind, in
// the certificate's order. Call it only on a certificate the handshake
// verified (req.TLS.VerifiedChains[0][0]): the names of an unverified one
// are whatever its holder wrote.
func CertIdentities(cert *x509.Certificate) []string {
	var ids []string
	if cert.Subject.CommonName != "" {
		ids = append(ids, "cn:"+cert.Subject.CommonName)
	}
	for _, n := range cert.DNSNames {
		ids = append(ids, "dns:"+n)
	}
	for _, u := range cert.URIs {
		ids = append(ids, "uri:"+u.String())
	}
	for _, e := range cert.EmailAddresses {
		ids = append(ids, "email:"+e)
	}
	return ids
}
