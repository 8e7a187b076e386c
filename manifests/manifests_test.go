package manifests

import (
	"errors"
	"strings"
	"testing"
)

const (
	cfg   = `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`
	layer = `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, ct, body string
		wantType       string
		wantErr        error
	}{
		{"image", MediaTypeImageManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeImageManifest + `","config":` + cfg + `,"layers":[` + layer + `]}`, MediaTypeImageManifest, nil},
		{"image without mediaType", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[]}`, MediaTypeImageManifest, nil},
		{"index", MediaTypeImageIndex, `{"schemaVersion":2,"mediaType":"` + MediaTypeImageIndex + `","manifests":[` + cfg + `]}`, MediaTypeImageIndex, nil},
		{"docker", MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":` + cfg + `,"layers":[` + layer + `]}`, MediaTypeDockerManifest, nil},
		{"content type with params", MediaTypeImageManifest + "; charset=utf-8", `{"schemaVersion":2,"config":` + cfg + `}`, MediaTypeImageManifest, nil},
		{"not json", MediaTypeImageManifest, `{"schemaVersion":2`, "", ErrInvalid},
		{"trailing", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `} {}`, "", ErrInvalid},
		{"schema 1", MediaTypeImageManifest, `{"schemaVersion":1,"config":` + cfg + `}`, "", ErrInvalid},
		{"mismatched media type", MediaTypeImageIndex, `{"schemaVersion":2,"mediaType":"` + MediaTypeImageManifest + `","config":` + cfg + `}`, "", ErrInvalid},
		{"no config", MediaTypeImageManifest, `{"schemaVersion":2,"layers":[]}`, "", ErrInvalid},
		{"bad layer digest", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[{"mediaType":"a/b","digest":"sha256:zz","size":1}]}`, "", ErrInvalid},
		{"negative size", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-1}}`, "", ErrInvalid},
		{"data matches", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}}`, MediaTypeImageManifest, nil},
		{"data mismatch", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"W10="}}`, "", ErrInvalid},
		{"unknown type", "application/x-whatever", `{"schemaVersion":2,"mediaType":"application/x-whatever"}`, "", ErrUnsupportedMediaType},
		{"too big", MediaTypeImageManifest, `{"schemaVersion":2,"annotations":{"a":"` + strings.Repeat("x", MaxSize) + `"}}`, "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.ct, []byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tt.wantType {
				t.Fatalf("media type %q, want %q", m.MediaType, tt.wantType)
			}
		})
	}
}

func TestBlobsSkipsNondistributable(t *testing.T) {
	m, err := Parse(MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":`+cfg+`,"layers":[`+layer+`,{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8b","size":9,"urls":["https://example.com/x"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Blobs()); got != 2 {
		t.Fatalf("Blobs() has %d entries, want config and one layer", got)
	}
	if m.EffectiveArtifactType() != "application/vnd.oci.image.config.v1+json" {
		t.Fatalf("artifact type %q", m.EffectiveArtifactType())
	}
}

func FuzzParse(f *testing.F) {
	f.Add(MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":`+cfg+`,"layers":[`+layer+`]}`))
	f.Add(MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[`+cfg+`],"subject":`+cfg+`}`))
	f.Add("", []byte(`{"schemaVersion":2,"mediaType":"x"}`))
	f.Add(MediaTypeImageManifest, []byte(`{"schemaVersion":2,"Config":`+cfg+`,"layers":[`+layer+`],"annotations":{"a":"1","\u0061":"2"}}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m, err := Parse(ct, body)
		if err != nil {
			return
		}
		// Anything accepted has a known type and consistent references.
		if !Known(m.MediaType) {
			t.Fatalf("accepted unknown media type %q", m.MediaType)
		}
		if !IsIndex(m.MediaType) && len(m.Blobs()) == 0 {
			t.Fatal("image manifest without config accepted")
		}
	})
}
