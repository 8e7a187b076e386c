package manifests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchImage is an image manifest of n layers, each with a title, and
// topKeys annotations of valueLen bytes of its own.
func benchImage(n, topKeys, valueLen int) []byte {
	layers := make([]any, n)
	for i := range layers {
		layers[i] = map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": someDigest, "size": 1 << 20,
			"annotations": map[string]string{AnnotationTitle: fmt.Sprintf("layer-%d.tar.gz", i)}}
	}
	ann := map[string]string{}
	for i := range topKeys {
		ann[fmt.Sprintf("k%06d", i)] = strings.Repeat("v", valueLen)
	}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeImageManifest,
		"config": map[string]any{"mediaType": MediaTypeImageConfig, "digest": someDigest, "size": 2}, "layers": layers, "annotations": ann})
	return b
}

// BenchmarkParse: a typical image (10 layers), one with 512 annotations
// (about 200 KiB), and one like the conformance suite's large manifest
// (390 values of 10,000 bytes, 3.9 MB).
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{{"image-10-layers", benchImage(10, 3, 400)}, {"annotations-512", benchImage(1, MaxAnnotations, 400)}, {"large-3.9MB", benchImage(1, 390, 10_000)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(MediaTypeImageManifest, c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
