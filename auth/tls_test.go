package auth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/auth"
)

// tlsCA is a certificate authority made for one test.
type tlsCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var tlsSerial atomic.Int64

func newTLSCA(t *testing.T, name string) *tlsCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(tlsSerial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &tlsCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate; tmpl gives its names, and the usage
// follows from them (an IP address: a server; otherwise a client).
func (ca *tlsCA) issue(t *testing.T, tmpl x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(tlsSerial.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if len(tmpl.IPAddresses) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// serverCert issues a certificate for 127.0.0.1 with the common name cn,
// by which a client tells one certificate from the next.
func (ca *tlsCA) serverCert(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	return ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: cn}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

func (ca *tlsCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// writeTLSFile replaces a file the way rotation tools do: a new file renamed
// over the old one.
func writeTLSFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsLogBuffer collects log lines written from handshake goroutines.
type tlsLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *tlsLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *tlsLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tlsFiles is a server's certificate, key and (optional) client CA files.
type tlsFiles struct{ cert, key, clientCA string }

// newTLSFiles writes a server certificate for 127.0.0.1 named cn, and its key.
func newTLSFiles(t *testing.T, ca *tlsCA, cn string) tlsFiles {
	certPEM, keyPEM := ca.serverCert(t, cn)
	dir := t.TempDir()
	f := tlsFiles{cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), clientCA: filepath.Join(dir, "client-ca.crt")}
	writeTLSFile(t, f.cert, certPEM)
	writeTLSFile(t, f.key, keyPEM)
	return f
}

// serveTLS runs an HTTPS server on loopback the way cmd/artifactstore does:
// http.Server with the reloader's Config and ServeTLS without files. Its
// handler answers with what it saw of the client's certificate; the
// server's own error log (failed handshakes) goes to errs.
func serveTLS(t *testing.T, r *auth.TLSReloader) (url string, errs *tlsLogBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs = &tlsLogBuffer{}
	srv := &http.Server{
		TLSConfig:         r.Config(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(errs, nil), slog.LevelError),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.TLS == nil {
				fmt.Fprint(w, "no TLS")
				return
			}
			if len(req.TLS.VerifiedChains) == 0 {
				fmt.Fprintf(w, "%s anonymous (%d peer certificates)", req.Proto, len(req.TLS.PeerCertificates))
				return
			}
			fmt.Fprintf(w, "%s %s", req.Proto, strings.Join(auth.CertIdentities(req.TLS.VerifiedChains[0][0]), " "))
		}),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String(), errs
}

// tlsGet makes one request on a new connection. h2 false offers only
// HTTP/1.1. It returns the body, and the CN of the server's certificate.
func tlsGet(t *testing.T, url string, roots *x509.CertPool, client *tls.Certificate, h2 bool) (body, serverCN string, err error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots}
	if client != nil {
		// Always sent: with Certificates instead, crypto/tls would hold back
		// a certificate whose issuer the server did not name, and a hostile
		// client does not.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b), resp.TLS.PeerCertificates[0].Subject.CommonName, err
}

func TestTLSServesHTTP1AndHTTP2(t *testing.T) {
	ca := newTLSCA(t, "server CA")
	f := newTLSFiles(t, ca, "one")
	r, err := auth.NewTLSReloader(auth.TLSOptions{CertFile: f.cert, KeyFile: f.key})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := serveTLS(t, r)
	for _, h2 := range []bool{false, true} {
		body, cn, err := tlsGet(t, url, ca.pool(), nil, h2)
		want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		if err != nil || !strings.HasPrefix(body, want+" anonymous (0 peer certificates)") || cn != "one" {
			t.Errorf("h2 %v: %v, body %q, server CN %q; want %s from \"one\"", h2, err, body, cn, want)
		}
	}
	if _, _, err := tlsGet(t, url, newTLSCA(t, "stranger").pool(), nil, true); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("a client trusting another CA: %v, want unknown authority", err)
	}
}

// TestTLSRotation replaces the files under a serving server: new connections
// get the new certificate; a broken or mismatched replacement leaves the
// last good pair serving, logged once, until it is repaired.
func TestTLSRotation(t *testing.T) {
	ca := newTLSCA(t, "server CA")
	logs := &tlsLogBuffer{}
	f := newTLSFiles(t, ca, "one")
	// An interval this short makes every handshake look at the files.
	r, err := auth.NewTLSReloader(auth.TLSOptions{CertFile: f.cert, KeyFile: f.key, CheckInterval: time.Nanosecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := serveTLS(t, r)
	servedBy := func(want string) {
		t.Helper()
		if _, cn, err := tlsGet(t, url, ca.pool(), nil, true); err != nil || cn != want {
			t.Fatalf("served by %q (%v), want %q", cn, err, want)
		}
	}
	servedBy("one")

	cert2, key2 := ca.serverCert(t, "two")
	writeTLSFile(t, f.cert, cert2)
	writeTLSFile(t, f.key, key2)
	servedBy("two")
	servedBy("two")

	writeTLSFile(t, f.cert, []byte("not PEM at all\n"))
	servedBy("two")
	servedBy("two")
	if n := strings.Count(logs.String(), "TLS files not reloaded"); n != 1 || !strings.Contains(logs.String(), f.cert) {
		t.Errorf("a broken certificate file: %d error lines naming it, want 1:\n%s", n, logs)
	}

	// Rotation tools write the certificate, then the key: in between, the
	// pair does not match.
	cert3, key3 := ca.serverCert(t, "three")
	writeTLSFile(t, f.cert, cert3)
	servedBy("two")
	if !strings.Contains(logs.String(), "private key does not match public key") {
		t.Errorf("a mismatched pair is not logged:\n%s", logs)
	}
	writeTLSFile(t, f.key, key3)
	servedBy("three")
	if n := strings.Count(logs.String(), "TLS files reloaded"); n != 2 {
		t.Errorf("%d reloads logged, want 2 (two, three):\n%s", n, logs)
	}
}

// TestTLSReloadWaitsForIntervalOrSignal: with a long interval, a rotation is
// seen only when Reload is called (as on SIGHUP).
func TestTLSReloadWaitsForIntervalOrSignal(t *testing.T) {
	ca := newTLSCA(t, "server CA")
	f := newTLSFiles(t, ca, "one")
	r, err := auth.NewTLSReloader(auth.TLSOptions{CertFile: f.cert, KeyFile: f.key, CheckInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := serveTLS(t, r)
	cert2, key2 := ca.serverCert(t, "two")
	writeTLSFile(t, f.cert, cert2)
	writeTLSFile(t, f.key, key2)
	if _, cn, err := tlsGet(t, url, ca.pool(), nil, true); err != nil || cn != "one" {
		t.Fatalf("before the interval: served by %q (%v), want the first certificate", cn, err)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, cn, err := tlsGet(t, url, ca.pool(), nil, true); err != nil || cn != "two" {
		t.Fatalf("after Reload: served by %q (%v), want the second certificate", cn, err)
	}
	os.Remove(f.key)
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), f.key) {
		t.Errorf("Reload with the key gone: %v, want an error naming %s", err, f.key)
	}
	if _, cn, err := tlsGet(t, url, ca.pool(), nil, true); err != nil || cn != "two" {
		t.Errorf("after a failed Reload: served by %q (%v), want the second certificate still", cn, err)
	}
}

func TestTLSRefusesFilesThatDoNotLoad(t *testing.T) {
	ca := newTLSCA(t, "server CA")
	good := newTLSFiles(t, ca, "one")
	other := newTLSFiles(t, ca, "other")
	dir := t.TempDir()
	garbage, empty := filepath.Join(dir, "garbage.pem"), filepath.Join(dir, "empty.pem")
	os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600)
	os.WriteFile(empty, nil, 0o600)
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct {
		name string
		opts auth.TLSOptions
		want []string // in the error
	}{
		{"no key", auth.TLSOptions{CertFile: good.cert}, []string{"both a certificate file and a key file"}},
		{"missing cert", auth.TLSOptions{CertFile: missing, KeyFile: good.key}, []string{missing, "no such file"}},
		{"missing key", auth.TLSOptions{CertFile: good.cert, KeyFile: missing}, []string{missing, "no such file"}},
		{"key of another certificate", auth.TLSOptions{CertFile: good.cert, KeyFile: other.key}, []string{good.cert, other.key, "does not match"}},
		{"cert not parseable", auth.TLSOptions{CertFile: garbage, KeyFile: good.key}, []string{garbage}},
		{"key is a certificate", auth.TLSOptions{CertFile: good.cert, KeyFile: good.cert}, []string{good.cert}},
		{"missing client CA", auth.TLSOptions{CertFile: good.cert, KeyFile: good.key, ClientCAFile: missing}, []string{"client CA", missing}},
		{"empty client CA", auth.TLSOptions{CertFile: good.cert, KeyFile: good.key, ClientCAFile: empty}, []string{empty, "no PEM CERTIFICATE"}},
		{"client CA not parseable", auth.TLSOptions{CertFile: good.cert, KeyFile: good.key, ClientCAFile: garbage}, []string{garbage}},
	} {
		_, err := auth.NewTLSReloader(c.opts)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want an error with %q", c.name, err, w)
			}
		}
	}
}

// TestMutualTLS: a certificate from the client CA is verified and visible
// to handlers; one from another CA fails the handshake; no certificate is
// served; replacing the CA file changes which clients pass.
func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newTLSCA(t, "server CA"), newTLSCA(t, "client CA"), newTLSCA(t, "other CA")
	f := newTLSFiles(t, serverCA, "registry")
	writeTLSFile(t, f.clientCA, clientCA.pem)
	r, err := auth.NewTLSReloader(auth.TLSOptions{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.clientCA, CheckInterval: time.Nanosecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	url, serverErrs := serveTLS(t, r)
	ci := tlsClientCert(t, clientCA, x509.Certificate{Subject: pkix.Name{CommonName: "ci-runner"}, DNSNames: []string{"ci.example.com"}})
	stranger := tlsClientCert(t, otherCA, x509.Certificate{Subject: pkix.Name{CommonName: "ci-runner"}})

	for _, h2 := range []bool{false, true} {
		body, _, err := tlsGet(t, url, serverCA.pool(), &ci, h2)
		if err != nil || !strings.HasSuffix(body, " cn:ci-runner dns:ci.example.com") {
			t.Errorf("h2 %v, client CA's certificate: %v, handler saw %q", h2, err, body)
		}
		// In TLS 1.3 the client may learn of the refusal only as a broken
		// connection; the server's log says why.
		before := strings.Count(serverErrs.String(), "certificate signed by unknown authority")
		if _, _, err := tlsGet(t, url, serverCA.pool(), &stranger, h2); err == nil {
			t.Errorf("h2 %v, another CA's certificate: the request was served", h2)
		}
		// The client can see the alert before the server has written its
		// log line; wait for it, within a bound.
		for i := 0; i < 100 && strings.Count(serverErrs.String(), "certificate signed by unknown authority") == before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if after := strings.Count(serverErrs.String(), "certificate signed by unknown authority"); after != before+1 {
			t.Errorf("h2 %v, another CA's certificate: the server logged no handshake failure for it:\n%s", h2, serverErrs)
		}
		if body, _, err := tlsGet(t, url, serverCA.pool(), nil, h2); err != nil || !strings.HasSuffix(body, "anonymous (0 peer certificates)") {
			t.Errorf("h2 %v, no client certificate: %v, handler saw %q", h2, err, body)
		}
	}

	// The CA is rotated: the other CA's clients pass, the old CA's do not.
	writeTLSFile(t, f.clientCA, otherCA.pem)
	if body, _, err := tlsGet(t, url, serverCA.pool(), &stranger, true); err != nil || !strings.HasSuffix(body, " cn:ci-runner") {
		t.Errorf("after the CA file changed, its certificate: %v, handler saw %q", err, body)
	}
	if _, _, err := tlsGet(t, url, serverCA.pool(), &ci, true); err == nil {
		t.Errorf("after the CA file changed, the old CA's certificate is still accepted")
	}
}

func tlsClientCert(t *testing.T, ca *tlsCA, tmpl x509.Certificate) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, tmpl)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func TestCertIdentities(t *testing.T) {
	spiffe, _ := url.Parse("spiffe://example.org/ci/runner")
	for _, c := range []struct {
		name string
		cert x509.Certificate
		want []string
	}{
		{"every kind", x509.Certificate{
			Subject:        pkix.Name{CommonName: "builder", Organization: []string{"ignored"}},
			DNSNames:       []string{"a.example.com", "b.example.com"},
			URIs:           []*url.URL{spiffe},
			EmailAddresses: []string{"bot@example.com"},
			IPAddresses:    []net.IP{net.IPv4(10, 0, 0, 1)},
		}, []string{"cn:builder", "dns:a.example.com", "dns:b.example.com", "uri:spiffe://example.org/ci/runner", "email:bot@example.com"}},
		{"no common name", x509.Certificate{DNSNames: []string{"only.example.com"}}, []string{"dns:only.example.com"}},
		{"nothing", x509.Certificate{}, nil},
	} {
		// Through a real certificate, so that the names are those that
		// survive encoding and parsing.
		ca := newTLSCA(t, "CA")
		pair := tlsClientCert(t, ca, c.cert)
		if got := auth.CertIdentities(pair.Leaf); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
