package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeySet holds the token service's signing keys: the newest signs, every
// one verifies, so adding a key (rotation) never invalidates tokens that
// are still valid, and removing the old one after the longest token
// lifetime retires it. Keys are ECDSA P-256 (ES256); each has a kid, its
// RFC 7638 thumbprint.
type KeySet struct {
	signer *ecdsa.PrivateKey
	kid    string
	public map[string]*ecdsa.PublicKey
}

// keyPrefix and keySuffix name key files in a key directory; the middle is
// the creation time, so that names sort oldest first.
const keyPrefix, keySuffix = "token-", ".pem"

// LoadKeyDir loads every key file of dir, creating dir and a first key
// when there is none (the first start of a server with auth).
func LoadKeyDir(dir string) (*KeySet, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	files, err := keyFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		f, err := NewKeyFile(dir)
		if err != nil {
			return nil, err
		}
		files = []string{f}
	}
	return LoadKeyFiles(files...)
}

func keyFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), keyPrefix) && strings.HasSuffix(e.Name(), keySuffix) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// NewKeyFile writes a new signing key into dir (mode 0600) and returns
// its path; loaded with the others, it becomes the signer.
func NewKeyFile(dir string) (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	name := filepath.Join(dir, fmt.Sprintf("%s%020d%s", keyPrefix, time.Now().UnixNano(), keySuffix))
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, name); err != nil {
		return "", err
	}
	return name, nil
}

// LoadKeyFiles loads PKCS#8 P-256 private keys; the last one signs. Given
// explicitly, the same files let several replicas sign and verify alike.
func LoadKeyFiles(files ...string) (*KeySet, error) {
	if len(files) == 0 {
		return nil, errors.New("no token signing key")
	}
	ks := &KeySet{public: map[string]*ecdsa.PublicKey{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: not a PEM key", f)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s: token keys are ECDSA P-256", f)
		}
		kid, err := thumbprint(&ek.PublicKey)
		if err != nil {
			return nil, err
		}
		ks.public[kid] = &ek.PublicKey
		ks.signer, ks.kid = ek, kid
	}
	return ks, nil
}

func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	t, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// KeyID is the kid of the signing key.
func (ks *KeySet) KeyID() string { return ks.kid }

// JWKS is the public keys as a JSON Web Key Set, for other services that
// verify this registry's tokens.
func (ks *KeySet) JWKS() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for kid, pub := range ks.public {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	sort.Slice(set.Keys, func(i, j int) bool { return set.Keys[i].KeyID < set.Keys[j].KeyID })
	return set
}
