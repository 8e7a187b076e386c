package manifests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchImage is an image manifest of n layers, each with a title, and
// topKeys annotations of its own.
func benchImage(n, topKeys int) []byte {
	layers := make([]any, n)
	for i := range layers {
		layers[i] = map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": someDigest, "size": 1 << 20,
			"annotations": map[string]string{AnnotationTitle: fmt.Sprintf("layer-%d.tar.gz", i)}}
	}
	ann := map[string]string{}
	for i := range topKeys {
		ann[fmt.Sprintf("k%06d", i)] = strings.Repeat("v", 400)
	}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeImageManifest,
		"config": map[string]any{"mediaType": MediaTypeImageConfig, "digest": someDigest, "size": 2}, "layers": layers, "annotations": ann})
	return b
}

// BenchmarkParse: a typical image (10 layers) and one at the annotation
// limits (512 keys, about 200 KiB).
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{{"image-10-layers", benchImage(10, 3)}, {"annotations-512", benchImage(1, MaxAnnotations)}} {
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
