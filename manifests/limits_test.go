package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
)

func annotations(n, valueLen int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("k%06d", i)] = strings.Repeat("v", valueLen)
	}
	return m
}

const someDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

func imageWith(top, layer map[string]string) []byte {
	m := map[string]any{
		"schemaVersion": 2, "mediaType": MediaTypeImageManifest,
		"config": map[string]any{"mediaType": MediaTypeImageConfig, "digest": someDigest, "size": 2},
		"layers": []any{map[string]any{"mediaType": "application/octet-stream", "digest": someDigest, "size": 2, "annotations": layer}},
	}
	if top != nil {
		m["annotations"] = top
	}
	b, _ := json.Marshal(m)
	return b
}

// TestAnnotationLimits: a map at the limits (keys, or bytes) is accepted,
// one key or byte more is refused with ErrInvalid and a message naming
// the limit, at the top level and in descriptors.
func TestAnnotationLimits(t *testing.T) {
	// Bytes: keys are 7 bytes; MaxAnnotations values share the byte budget.
	perValue := MaxAnnotationBytes/MaxAnnotations - 7
	atCount := annotations(MaxAnnotations, 1)
	atBytes := annotations(MaxAnnotations, perValue)
	if annotationBytes(atBytes) != MaxAnnotationBytes {
		t.Fatalf("test setup: %d bytes", annotationBytes(atBytes))
	}
	overCount := annotations(MaxAnnotations+1, 1)
	overBytes := annotations(MaxAnnotations, perValue)
	overBytes["k000000"] += "v"

	for _, c := range []struct {
		name        string
		top, layer  map[string]string
		ok          bool
		wantMessage string
	}{
		{"top at count", atCount, nil, true, ""},
		{"top at bytes", atBytes, nil, true, ""},
		{"layer at count", nil, atCount, true, ""},
		{"top over count", overCount, nil, false, fmt.Sprint(MaxAnnotations)},
		{"top over bytes", overBytes, nil, false, fmt.Sprint(MaxAnnotationBytes)},
		{"layer over count", nil, overCount, false, "layers[0]"},
		{"layer over bytes", nil, overBytes, false, "layers[0]"},
	} {
		_, err := Parse(MediaTypeImageManifest, imageWith(c.top, c.layer))
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && !errors.Is(err, ErrInvalid):
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		case !c.ok && !strings.Contains(err.Error(), c.wantMessage):
			t.Errorf("%s: %q does not mention %q", c.name, err, c.wantMessage)
		}
	}

	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeImageIndex,
		"manifests": []any{map[string]any{"mediaType": MediaTypeImageManifest, "digest": someDigest, "size": 2, "annotations": overCount}}})
	if _, err := Parse(MediaTypeImageIndex, idx); !errors.Is(err, ErrInvalid) {
		t.Errorf("index descriptor over the limit: %v", err)
	}
}

// TestNativeAnnotationLimits: a native manifest may have the annotations
// whose derived OCI manifest (with created and version added) is within
// the limits Parse applies, and no more; every OCI manifest Parse accepts
// shows as a native manifest that validates.
func TestNativeAnnotationLimits(t *testing.T) {
	native := func(ann map[string]string) *Native {
		return &Native{ManifestVersion: 1, Repository: "r", Version: strings.Repeat("v", 128), Created: "2026-01-01T00:00:00Z", Annotations: ann,
			Files: []File{{Path: "f", Size: 2, MediaType: "text/plain", SHA256: someDigest, BLAKE3: "blake3:" + strings.Repeat("0", 64)}}}
	}
	atLimit := annotations(MaxAnnotations-2, 1)
	if err := CheckNativeAnnotations(atLimit); err != nil {
		t.Fatal(err)
	}
	oci, err := native(atLimit).DeriveOCI()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(MediaTypeImageManifest, oci)
	if err != nil || len(m.Annotations()) != MaxAnnotations {
		t.Fatalf("derived manifest at the limit: %v, %d annotations", err, len(m.Annotations()))
	}

	over := annotations(MaxAnnotations-1, 1)
	if err := CheckNativeAnnotations(over); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CheckNativeAnnotations over the limit: %v", err)
	}
	if err := native(over).Validate(); err != nil {
		t.Fatalf("Validate must accept what an OCI manifest may carry: %v", err)
	}
	if _, err := native(over).DeriveOCI(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("DeriveOCI over the limit: %v", err)
	}
	bytesOver := annotations(1, MaxAnnotationBytes-nativeReserve)
	if err := CheckNativeAnnotations(bytesOver); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CheckNativeAnnotations over the byte limit: %v", err)
	}
	if _, err := native(bytesOver).DeriveOCI(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("DeriveOCI over the byte limit: %v", err)
	}
	if err := native(annotations(MaxAnnotations+1, 1)).Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate over the OCI limit: %v", err)
	}

	// The native view of an OCI manifest at the limit validates.
	full, _ := Parse(MediaTypeImageManifest, imageWith(annotations(MaxAnnotations, 1), map[string]string{AnnotationTitle: "f"}))
	view := NativeFromOCI("r", "v1", full, time.Unix(0, 0), func(d godigest.Digest) (string, string, bool) {
		return d.String(), "blake3:" + strings.Repeat("0", 64), true
	})
	if err := view.Validate(); err != nil {
		t.Fatalf("native view of an OCI manifest at the limit: %v", err)
	}
}
