package main_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCA signs the certificates of one test.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	file   string // its PEM certificate, for clients (SSL_CERT_FILE) or --tls-client-ca
	serial int64
}

func newTestCA(t testing.TB, dir, name string) *testCA {
	t.Helper()
	ca := &testCA{file: filepath.Join(dir, name+".crt")}
	var der []byte
	ca.cert, ca.key, der = ca.sign(t, x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return ca
}

// sign makes a key and a certificate from tmpl, signed by ca (or by itself
// when ca has no certificate yet).
func (ca *testCA) sign(t testing.TB, tmpl x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl.SerialNumber = big.NewInt(ca.serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	parent, signer := &tmpl, key
	if ca.cert != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, der
}

// writePair writes a certificate for tmpl and its key as PEM files.
func (ca *testCA) writePair(t testing.TB, certFile, keyFile string, tmpl x509.Certificate) {
	t.Helper()
	_, key, der := ca.sign(t, tmpl)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	for name, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(name+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".new", name); err != nil {
			t.Fatal(err)
		}
	}
}

func serverTemplate(cn string) x509.Certificate {
	return x509.Certificate{Subject: pkix.Name{CommonName: cn}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// httpsClient trusts roots; h2 false offers HTTP/1.1 only. A client
// certificate, when given, is always sent.
func httpsClient(roots *x509.CertPool, h2 bool, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: roots}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2, DisableKeepAlives: true}}
}

// TestServeTLS serves HTTPS from --tls-cert/--tls-key: the push and pull
// commands work over it trusting the test's CA, HTTP/1.1 and HTTP/2 both
// push and fetch blobs, and a rotated certificate serves new connections
// after SIGHUP.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "test-ca")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.writePair(t, certFile, keyFile, serverTemplate("first"))
	s := startWith(t, t.TempDir(), freeAddr(t), "--tls-cert", certFile, "--tls-key", keyFile)
	base := "https://" + s.addr

	// The commands, with the CA trusted the standard way.
	t.Setenv("SSL_CERT_FILE", ca.file)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "out")
	payload := random(t, 1<<20)
	os.WriteFile(filepath.Join(src, "payload.bin"), payload, 0o644)
	if out, errOut, err := client(t, "push", "--server", base, "secure/files:1.0", filepath.Join(src, "payload.bin")); err != nil || !strings.HasPrefix(out, "published secure/files:1.0") {
		t.Fatalf("push over HTTPS: %v\n%s\n%s", err, out, errOut)
	}
	if out, errOut, err := client(t, "pull", "--server", base, "secure/files:1.0", dst); err != nil {
		t.Fatalf("pull over HTTPS: %v\n%s\n%s", err, out, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "payload.bin")); !bytes.Equal(got, payload) {
		t.Errorf("pulled over HTTPS: %d bytes, want the %d pushed", len(got), len(payload))
	}

	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		c := httpsClient(ca.pool(), proto == "HTTP/2.0", nil)
		blob := random(t, 300_000)
		resp, err := c.Post(base+"/v2/secure/blobs/blobs/uploads/?digest="+sha(blob), "application/octet-stream", bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 || resp.Proto != proto {
			t.Errorf("%s push: %d over %s", proto, resp.StatusCode, resp.Proto)
		}
		resp, err = c.Get(base + "/v2/secure/blobs/blobs/" + sha(blob))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != proto || !bytes.Equal(got, blob) || resp.TLS.PeerCertificates[0].Subject.CommonName != "first" {
			t.Errorf("%s pull: %s, %d bytes (equal %v)", proto, resp.Proto, len(got), bytes.Equal(got, blob))
		}
	}
	resp, err := http.Get("http://" + s.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("plain HTTP to the HTTPS port: %d, want 400", resp.StatusCode)
	}

	// Rotation without a restart: new files, SIGHUP, new connections get
	// the new certificate (within a bound; the signal is asynchronous).
	ca.writePair(t, certFile, keyFile, serverTemplate("second"))
	s.cmd.Process.Signal(syscall.SIGHUP)
	cn := ""
	for i := 0; i < 50 && cn != "second"; i++ {
		time.Sleep(50 * time.Millisecond)
		resp, err := httpsClient(ca.pool(), true, nil).Get(base + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cn = resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if cn != "second" {
		t.Errorf("after rotation and SIGHUP, served by %q, want the new certificate", cn)
	}
	if s.cmd.ProcessState != nil {
		t.Fatalf("the server exited on SIGHUP")
	}
}

// TestServeMutualTLS configures TLS by environment: a client certificate
// from --tls-client-ca's CA passes, one from another CA fails the
// handshake, and a client without one is served.
func TestServeMutualTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newTestCA(t, dir, "server-ca"), newTestCA(t, dir, "client-ca"), newTestCA(t, dir, "other-ca")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	serverCA.writePair(t, certFile, keyFile, serverTemplate("registry"))
	t.Setenv("ARTIFACTSTORE_TLS_CERT", certFile)
	t.Setenv("ARTIFACTSTORE_TLS_KEY", keyFile)
	t.Setenv("ARTIFACTSTORE_TLS_CLIENT_CA", clientCA.file)
	s := start(t, t.TempDir(), freeAddr(t))

	clientCert := func(ca *testCA) *tls.Certificate {
		cert, key, der := ca.sign(t, x509.Certificate{Subject: pkix.Name{CommonName: "robot"},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
	}
	for _, c := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"client CA's certificate", clientCert(clientCA), true},
		{"no certificate", nil, true},
		{"another CA's certificate", clientCert(otherCA), false},
	} {
		resp, err := httpsClient(serverCA.pool(), true, c.cert).Get("https://" + s.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		if c.ok && (err != nil || resp.StatusCode != 200) {
			t.Errorf("%s: %v, want 200", c.name, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: %d, want the handshake to fail", c.name, resp.StatusCode)
		}
	}
}

// TestServeTLSRefusesToStart: half a pair, or files that do not load, stop
// serve before it listens, with an error that names the flag or the file.
func TestServeTLSRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "test-ca")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.writePair(t, certFile, keyFile, serverTemplate("first"))
	missing := filepath.Join(dir, "missing.key")
	for _, c := range []struct {
		name  string
		flags []string
		env   string
		want  string
	}{
		{"cert alone", []string{"--tls-cert", certFile}, "", "--tls-cert and --tls-key go together"},
		{"key alone by environment", nil, "ARTIFACTSTORE_TLS_KEY=" + keyFile, "--tls-cert and --tls-key go together"},
		{"client CA alone", []string{"--tls-client-ca", ca.file}, "", "--tls-client-ca needs --tls-cert"},
		{"missing key file", []string{"--tls-cert", certFile, "--tls-key", missing}, "", missing},
		{"key and cert swapped", []string{"--tls-cert", keyFile, "--tls-key", certFile}, "", keyFile},
		{"client CA is a key", []string{"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", keyFile}, "", "TLS client CA " + keyFile},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, binary, append([]string{"serve", "--addr", freeAddr(t), "--data", t.TempDir()}, c.flags...)...)
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "msg=listening") {
			t.Errorf("%s: %v, want a refusal naming %q:\n%s", c.name, err, c.want, out)
		}
	}
}
