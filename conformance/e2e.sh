#!/usr/bin/env bash
# End-to-end: real clients (oras, crane, skopeo; regctl, helm, podman and
# docker when logging in) against a live artifactstore
# on loopback with a fresh data directory, over HTTP and over HTTPS, and
# logging in to a server with authentication on, over HTTPS. Every
# check asserts on content (bytes, digests, media types, listed names), not
# only on exit codes.
#
#   conformance/e2e.sh [path/to/artifactstore]
#
# oras and crane are built from the Go module proxy, pinned, into $TOOLS;
# skopeo, jq and b3sum come from Debian packages when missing.
set -euo pipefail
BIN=${1:-$(dirname "$0")/../bin/artifactstore} # relative to where we were called from
if [ -d "$(dirname "$BIN")" ]; then BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN"); fi
[ -x "$BIN" ] || { echo "e2e: no server binary at $BIN (run make build)"; exit 1; }
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${TOOLS:-$PWD/tools}
CRANE_VERSION=v0.22.1
REGCTL_VERSION=v0.11.1
HELM_VERSION=v3.21.4
START=$SECONDS

# ---------------------------------------------------------------- tools

. conformance/lib.sh
ensure_oras
if [ "$("$TOOLS/crane" version 2>/dev/null || true)" != "$CRANE_VERSION" ]; then
  echo "== installing crane $CRANE_VERSION into $TOOLS"
  GOBIN="$TOOLS" go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
fi
if ! "$TOOLS/regctl" version 2>/dev/null | grep -q "$REGCTL_VERSION"; then
  echo "== installing regctl $REGCTL_VERSION into $TOOLS"
  GOBIN="$TOOLS" go install "github.com/regclient/regclient/cmd/regctl@$REGCTL_VERSION"
fi
# helm built by go install reports only its minor version; the module says all.
if ! go version -m "$TOOLS/helm" 2>/dev/null | grep -qE "mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$HELM_VERSION"; then
  echo "== installing helm $HELM_VERSION into $TOOLS"
  GOBIN="$TOOLS" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
missing=()
for p in skopeo jq b3sum podman; do command -v "$p" > /dev/null || missing+=("$p"); done
command -v dockerd > /dev/null || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  apt_install "${missing[@]}"
fi
for p in skopeo jq podman dockerd; do
  command -v "$p" > /dev/null || { echo "e2e: $p is required and could not be installed"; exit 1; }
done
CRANE=$TOOLS/crane
REGCTL=$TOOLS/regctl
HELM=$TOOLS/helm

WORK=$(mktemp -d)
DATA=$WORK/data
mkdir -p "$DATA"

# ---------------------------------------------------------------- harness

PASSED=0
FAILED=0
SERVER_PID=
TLS_PID=
finish() {
  local rc=$?
  stop_server
  if [ -n "$TLS_PID" ]; then kill "$TLS_PID" 2>/dev/null || true; wait "$TLS_PID" 2>/dev/null || true; fi
  if [ -n "${AUTH_PID:-}" ]; then kill "$AUTH_PID" 2>/dev/null || true; wait "$AUTH_PID" 2>/dev/null || true; fi
  if [ -n "${DOCKERD_PID:-}" ]; then kill "$DOCKERD_PID" 2>/dev/null || true; wait "$DOCKERD_PID" 2>/dev/null || true; fi
  if [ -n "${DOCKER_CERTS:-}" ]; then rm -rf "$DOCKER_CERTS"; fi
  if [ "$rc" = 0 ] && [ "$FAILED" = 0 ]; then
    rm -rf "$WORK"
  else
    echo "--- server log (tail): $DATA/server.log"
    tail -n 40 "$DATA/server.log" 2>/dev/null || true
    echo "--- work dir kept for inspection: $WORK"
    echo "e2e: $PASSED passed, 1 failed"
  fi
}
trap finish EXIT
trap 'FAILED=1; echo "FAIL: unexpected error at line $LINENO: $BASH_COMMAND"' ERR

fail() {
  FAILED=1
  echo "FAIL: $*"
  trap - ERR
  exit 1
}
pass() { PASSED=$((PASSED + 1)); echo "ok $PASSED - $*"; }

# run DESC CMD...: runs CMD with stdout in $OUT and stderr in $ERR; a
# non-zero exit fails DESC and shows both.
OUT=$WORK/out
ERR=$WORK/err
run() {
  local desc=$1; shift
  if ! "$@" > "$OUT" 2> "$ERR"; then
    echo "--- command: $*"; echo "--- stdout:"; head -c 4000 "$OUT"; echo "--- stderr:"; head -c 4000 "$ERR"
    fail "$desc: command exited non-zero"
  fi
}
# run_fails DESC CMD...: CMD must exit non-zero.
run_fails() {
  local desc=$1; shift
  if "$@" > "$OUT" 2> "$ERR"; then
    echo "--- command: $*"; echo "--- stdout:"; head -c 4000 "$OUT"
    fail "$desc: command succeeded but should have failed"
  fi
}
expect_eq() { # DESC GOT WANT
  [ "$2" == "$3" ] || fail "$1: got [$2], want [$3]"
  pass "$1"
}
expect_same_file() { # DESC GOT_FILE WANT_FILE
  cmp "$2" "$3" || fail "$1: $2 differs from $3 (sizes $(stat -c %s "$2" 2>/dev/null || echo none) vs $(stat -c %s "$3"))"
  pass "$1"
}
json() { jq -r "$1" "$OUT"; } # jq FILTER over the last run's stdout

# blake3 FILE: prints blake3:<hex>. b3sum (Debian) is an implementation
# independent of the server's; without it, the module's own BLAKE3 package.
if command -v b3sum > /dev/null; then
  blake3() { echo "blake3:$(b3sum --no-names "$1")"; }
else
  cat > "$WORK/b3.go" <<'EOF'
package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/zeebo/blake3"
)

func main() {
	h := blake3.New()
	if _, err := io.Copy(h, os.Stdin); err != nil {
		panic(err)
	}
	fmt.Println("blake3:" + hex.EncodeToString(h.Sum(nil)))
}
EOF
  (cd "$ROOT" && go build -o "$WORK/b3" "$WORK/b3.go") || fail "building the BLAKE3 helper"
  blake3() { "$WORK/b3" < "$1"; }
fi
sha256() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# ---------------------------------------------------------------- server

BIN=$BIN start_server "$DATA"
echo "== e2e against $ADDR (server $BIN, data $DATA)"
cd "$WORK"
HTTP=http://$ADDR

# ---------------------------------------------------------------- oras

echo "== oras $ORAS_VERSION"
mkdir -p in
printf 'hello from the artifact-store e2e\n' > in/hello.txt
head -c $((1024 * 1024 + 17)) /dev/urandom > in/random.bin
cd in # oras names each layer after the path it was given
run "oras push" "$ORAS" push --plain-http --format json \
  "$ADDR/e2e/files:v1,latest" --artifact-type application/vnd.example.e2e hello.txt random.bin
cd "$WORK"
ART=$(json .digest)
expect_eq "oras push reports the artifact type" "$(json .artifactType)" application/vnd.example.e2e

run "oras manifest fetch" "$ORAS" manifest fetch --plain-http "$ADDR/e2e/files:v1"
cp "$OUT" manifest.json
expect_eq "manifest bytes hash to the pushed digest" "$(sha256 manifest.json)" "$ART"
expect_eq "manifest artifactType" "$(jq -r .artifactType manifest.json)" application/vnd.example.e2e
expect_eq "manifest layer digests are the files' sha256" \
  "$(jq -r '.layers[] | .annotations["org.opencontainers.image.title"] + " " + .digest' manifest.json | sort)" \
  "$(printf 'hello.txt %s\nrandom.bin %s' "$(sha256 in/hello.txt)" "$(sha256 in/random.bin)")"

run "oras pull" "$ORAS" pull --plain-http -o pulled "$ADDR/e2e/files:v1"
expect_same_file "oras pull: hello.txt bytes" pulled/hello.txt in/hello.txt
expect_same_file "oras pull: random.bin bytes" pulled/random.bin in/random.bin
expect_eq "oras pull: nothing else pulled" "$(find pulled -mindepth 1 -printf '%P\n' | sort | tr '\n' ' ')" "hello.txt random.bin "

run "oras repo tags" "$ORAS" repo tags --plain-http "$ADDR/e2e/files"
expect_eq "oras repo tags lists exactly the pushed tags" "$(sort "$OUT" | tr '\n' ' ')" "latest v1 "

printf '{"sbom":"e2e","packages":["a","b"]}\n' > in/sbom.json
cd in
run "oras attach" "$ORAS" attach --plain-http --format json \
  "$ADDR/e2e/files:v1" --artifact-type application/vnd.example.sbom sbom.json
cd "$WORK"
SBOM=$(json .digest)
run "oras discover" "$ORAS" discover --plain-http --format json "$ADDR/e2e/files:v1"
expect_eq "oras discover: subject digest" "$(json .digest)" "$ART"
expect_eq "oras discover lists the referrer (artifactType digest)" \
  "$(json '.referrers[] | .artifactType + " " + .digest')" "application/vnd.example.sbom $SBOM"
run "oras discover --artifact-type (no match)" "$ORAS" discover --plain-http --format json \
  --artifact-type application/vnd.example.other "$ADDR/e2e/files:v1"
expect_eq "oras discover filtered by another artifactType lists nothing" "$(json '.referrers | length')" 0
run "oras repo tags after attach" "$ORAS" repo tags --plain-http "$ADDR/e2e/files"
expect_eq "attach used the referrers API (no fallback tag)" "$(sort "$OUT" | tr '\n' ' ')" "latest v1 "
run "oras pull referrer" "$ORAS" pull --plain-http -o sbom-out "$ADDR/e2e/files@$SBOM"
expect_same_file "oras pull of the referrer: sbom.json bytes" sbom-out/sbom.json in/sbom.json

run "oras blob fetch" "$ORAS" blob fetch --plain-http -o fetched.bin "$ADDR/e2e/files@$(sha256 in/random.bin)"
expect_same_file "oras blob fetch by sha256: bytes" fetched.bin in/random.bin

# BLAKE3 aliases: oras (go-digest) refuses blake3 references client-side,
# so the alias is fetched with curl.
B3=$(blake3 in/random.bin)
run "GET blob by BLAKE3" curl -fsS -D headers.txt -o b3.bin "$HTTP/v2/e2e/files/blobs/$B3"
expect_same_file "GET /v2/e2e/files/blobs/$B3: bytes" b3.bin in/random.bin
expect_eq "GET blob by BLAKE3: Docker-Content-Digest echoes the BLAKE3 digest" \
  "$(grep -i '^docker-content-digest:' headers.txt | cut -d' ' -f2 | tr -d '\r')" "$B3"
run "HEAD blob by BLAKE3" curl -fsS -I "$HTTP/v2/e2e/files/blobs/$(blake3 in/hello.txt)"
expect_eq "HEAD blob by BLAKE3: Content-Length" \
  "$(grep -i '^content-length:' "$OUT" | cut -d' ' -f2 | tr -d '\r')" "$(stat -c %s in/hello.txt)"
run "GET blob by sha256 with curl" curl -fsS -o s256.bin "$HTTP/v2/e2e/files/blobs/$(sha256 in/random.bin)"
expect_same_file "GET blob by sha256 with curl: bytes" s256.bin in/random.bin

# ---------------------------------------------------------------- crane

echo "== crane $CRANE_VERSION"
mkdir -p rootfs/etc
printf 'crane e2e payload %s\n' "$RANDOM$RANDOM" > rootfs/etc/e2e.txt
tar -C rootfs -cf layer.tar etc

# Default empty base: Docker Image Manifest V2 Schema 2.
run "crane append (docker schema2)" "$CRANE" append --insecure -f layer.tar -t "$ADDR/e2e/img:v1"
IMG=$(sed -n 's/.*@//p' "$OUT")
run "crane digest" "$CRANE" digest --insecure "$ADDR/e2e/img:v1"
expect_eq "crane digest equals the digest append pushed" "$(cat "$OUT")" "$IMG"
run "crane manifest" "$CRANE" manifest --insecure "$ADDR/e2e/img:v1"
cp "$OUT" img-manifest.json
expect_eq "docker manifest bytes hash to its digest" "$(sha256 img-manifest.json)" "$IMG"
expect_eq "manifest is Docker V2 schema 2" "$(jq -r .mediaType img-manifest.json)" \
  application/vnd.docker.distribution.manifest.v2+json
expect_eq "docker config media type" "$(jq -r .config.mediaType img-manifest.json)" \
  application/vnd.docker.container.image.v1+json
run "HEAD docker manifest" curl -fsS -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "$HTTP/v2/e2e/img/manifests/v1"
expect_eq "docker manifest served with its Content-Type" \
  "$(grep -i '^content-type:' "$OUT" | cut -d' ' -f2 | tr -d '\r')" application/vnd.docker.distribution.manifest.v2+json
LAYER=$(jq -r '.layers[0].digest' img-manifest.json)

run "crane ls" "$CRANE" ls --insecure "$ADDR/e2e/img"
expect_eq "crane ls lists the tag" "$(cat "$OUT")" v1

run "crane copy" "$CRANE" copy --insecure "$ADDR/e2e/img:v1" "$ADDR/e2e/copy:v1"
run "crane digest of the copy" "$CRANE" digest --insecure "$ADDR/e2e/copy:v1"
expect_eq "crane copy: same digest in both repositories" "$(cat "$OUT")" "$IMG"

run "crane export" "$CRANE" export --insecure "$ADDR/e2e/copy:v1" exported.tar
tar -xOf exported.tar etc/e2e.txt > exported-e2e.txt || fail "crane export: etc/e2e.txt missing from the filesystem tar"
expect_same_file "crane export: file content from the copied image" exported-e2e.txt rootfs/etc/e2e.txt

run "crane pull" "$CRANE" pull --insecure "$ADDR/e2e/img:v1" pulled.tar
mkdir -p pulled-img && tar -C pulled-img -xf pulled.tar
LAYER_FILE=pulled-img/$(jq -r '.[0].Layers[0]' pulled-img/manifest.json)
expect_eq "crane pull: layer file hashes to the manifest's layer digest" "$(sha256 "$LAYER_FILE")" "$LAYER"
tar -xzOf "$LAYER_FILE" etc/e2e.txt > pulled-e2e.txt || fail "crane pull: etc/e2e.txt missing from the layer"
expect_same_file "crane pull: file content inside the layer" pulled-e2e.txt rootfs/etc/e2e.txt

# An OCI image manifest, then an OCI index and a Docker manifest list.
run "crane append (OCI)" "$CRANE" append --insecure --oci-empty-base -f layer.tar -t "$ADDR/e2e/oci:v1"
OCI=$(sed -n 's/.*@//p' "$OUT")
run "crane manifest (OCI)" "$CRANE" manifest --insecure "$ADDR/e2e/oci:v1"
expect_eq "manifest is an OCI image manifest" "$(json .mediaType)" application/vnd.oci.image.manifest.v1+json
expect_eq "OCI and docker images share the layer bytes" "$(json '.layers[0].digest')" "$LAYER"

run "crane index append (OCI index)" "$CRANE" index append --insecure -m "$ADDR/e2e/oci@$OCI" -t "$ADDR/e2e/oci:idx"
IDX=$(sed -n 's/.*@//p' "$OUT")
run "crane manifest (OCI index)" "$CRANE" manifest --insecure "$ADDR/e2e/oci:idx"
cp "$OUT" idx.json
expect_eq "OCI index bytes hash to its digest" "$(sha256 idx.json)" "$IDX"
expect_eq "OCI index: media type and child" "$(jq -r '.mediaType + " " + .manifests[0].digest' idx.json)" \
  "application/vnd.oci.image.index.v1+json $OCI"

run "crane index append (Docker list)" "$CRANE" index append --insecure --docker-empty-base \
  -m "$ADDR/e2e/img@$IMG" -t "$ADDR/e2e/img:list"
LIST=$(sed -n 's/.*@//p' "$OUT")
run "crane manifest (Docker list)" "$CRANE" manifest --insecure "$ADDR/e2e/img:list"
cp "$OUT" list.json
expect_eq "Docker manifest list bytes hash to its digest" "$(sha256 list.json)" "$LIST"
expect_eq "Docker manifest list: media type and child" "$(jq -r '.mediaType + " " + .manifests[0].digest' list.json)" \
  "application/vnd.docker.distribution.manifest.list.v2+json $IMG"

run "crane catalog" "$CRANE" catalog --insecure "$ADDR"
expect_eq "crane catalog lists exactly the repositories pushed so far" "$(tr '\n' ' ' < "$OUT")" \
  "e2e/copy e2e/files e2e/img e2e/oci "

# Delete by digest in the copy: both of its tags go, the source stays.
run "crane tag" "$CRANE" tag --insecure "$ADDR/e2e/copy:v1" v2
run "crane ls (two tags)" "$CRANE" ls --insecure "$ADDR/e2e/copy"
expect_eq "crane ls lists both tags" "$(sort "$OUT" | tr '\n' ' ')" "v1 v2 "
run "crane delete" "$CRANE" delete --insecure "$ADDR/e2e/copy@$IMG"
run_fails "crane digest after delete" "$CRANE" digest --insecure "$ADDR/e2e/copy:v1"
grep -q MANIFEST_UNKNOWN "$ERR" || { cat "$ERR"; fail "crane digest after delete: error is not MANIFEST_UNKNOWN"; }
pass "crane digest of a deleted manifest's tag fails with MANIFEST_UNKNOWN"
run_fails "crane digest by digest after delete" "$CRANE" digest --insecure "$ADDR/e2e/copy@$IMG"
pass "crane digest of the deleted digest fails"
run "crane ls after delete" "$CRANE" ls --insecure "$ADDR/e2e/copy"
expect_eq "crane ls lists no tag after delete" "$(cat "$OUT")" ""
run "crane digest of the source after delete" "$CRANE" digest --insecure "$ADDR/e2e/img:v1"
expect_eq "the source repository is untouched" "$(cat "$OUT")" "$IMG"

# ---------------------------------------------------------------- skopeo

echo "== $(skopeo --version)"
SK=(--src-tls-verify=false --dest-tls-verify=false)
run "skopeo copy registry -> oci layout" skopeo copy "${SK[@]}" "docker://$ADDR/e2e/img:v1" oci:layout:v1
expect_eq "OCI layout has the tag" "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' layout/index.json)" v1
expect_eq "OCI layout holds the layer blob" "$(sha256 "layout/blobs/sha256/${LAYER#sha256:}")" "$LAYER"
run "skopeo copy oci layout -> registry" skopeo copy "${SK[@]}" oci:layout:v1 "docker://$ADDR/e2e/skopeo:v1"
run "skopeo inspect (source)" skopeo inspect --tls-verify=false "docker://$ADDR/e2e/img:v1"
cp "$OUT" inspect-src.json
run "skopeo inspect (round trip)" skopeo inspect --tls-verify=false "docker://$ADDR/e2e/skopeo:v1"
cp "$OUT" inspect-dst.json
expect_eq "skopeo inspect: source digest" "$(jq -r .Digest inspect-src.json)" "$IMG"
expect_eq "skopeo inspect: source layers" "$(jq -c .Layers inspect-src.json)" "[\"$LAYER\"]"
expect_eq "skopeo round trip: same layer digests" "$(jq -c .Layers inspect-dst.json)" "$(jq -c .Layers inspect-src.json)"
run "skopeo inspect --raw (round trip)" skopeo inspect --raw --tls-verify=false "docker://$ADDR/e2e/skopeo:v1"
cp "$OUT" sk-manifest.json
expect_eq "round trip manifest digest equals the layout's" "$(sha256 sk-manifest.json)" "$(jq -r '.manifests[0].digest' layout/index.json)"
expect_eq "round trip manifest is OCI (converted by the layout)" "$(jq -r .mediaType sk-manifest.json)" application/vnd.oci.image.manifest.v1+json
run "skopeo list-tags" skopeo list-tags --tls-verify=false "docker://$ADDR/e2e/skopeo"
expect_eq "skopeo list-tags" "$(json '.Tags | join(" ")')" v1

run "skopeo copy registry -> registry (docker)" skopeo copy "${SK[@]}" "docker://$ADDR/e2e/img:v1" "docker://$ADDR/e2e/skopeo-docker:v1"
run "skopeo inspect --raw (docker copy)" skopeo inspect --raw --tls-verify=false "docker://$ADDR/e2e/skopeo-docker:v1"
cp "$OUT" sk-docker.json
expect_same_file "skopeo registry copy keeps the Docker schema2 bytes" sk-docker.json img-manifest.json

run "skopeo copy --all (Docker list)" skopeo copy --all "${SK[@]}" "docker://$ADDR/e2e/img:list" "docker://$ADDR/e2e/skopeo-list:list"
run "skopeo inspect --raw (Docker list copy)" skopeo inspect --raw --tls-verify=false "docker://$ADDR/e2e/skopeo-list:list"
cp "$OUT" sk-list.json
expect_same_file "skopeo copy --all keeps the manifest list bytes" sk-list.json list.json
run "crane digest of the copied list's child" "$CRANE" digest --insecure "$ADDR/e2e/skopeo-list@$IMG"
expect_eq "the list's child manifest was copied" "$(cat "$OUT")" "$IMG"

# An OCI index out to a layout and back. skopeo 1.9 re-encodes the index
# (it drops the descriptors' artifactType), so compare with the layout's.
run "skopeo copy --all (OCI index) -> oci layout" skopeo copy --all "${SK[@]}" "docker://$ADDR/e2e/oci:idx" oci:idx-layout:idx
IDX_LAYOUT=$(jq -r '.manifests[0].digest' idx-layout/index.json)
run "skopeo copy --all oci layout -> registry" skopeo copy --all "${SK[@]}" oci:idx-layout:idx "docker://$ADDR/e2e/skopeo-idx:idx"
run "skopeo inspect --raw (OCI index copy)" skopeo inspect --raw --tls-verify=false "docker://$ADDR/e2e/skopeo-idx:idx"
cp "$OUT" sk-idx.json
expect_same_file "OCI index pushed by skopeo: same bytes as in the layout" sk-idx.json "idx-layout/blobs/sha256/${IDX_LAYOUT#sha256:}"
expect_eq "OCI index pushed by skopeo: media type and child" "$(jq -r '.mediaType + " " + .manifests[0].digest' sk-idx.json)" \
  "application/vnd.oci.image.index.v1+json $OCI"
run "crane digest of the copied index's child" "$CRANE" digest --insecure "$ADDR/e2e/skopeo-idx@$OCI"
expect_eq "the index's child manifest was copied" "$(cat "$OUT")" "$OCI"

run "oras repo ls" "$ORAS" repo ls --plain-http "$ADDR/e2e"
expect_eq "oras repo ls lists every repository under e2e/" "$(tr '\n' ' ' < "$OUT")" \
  "copy files img oci skopeo skopeo-docker skopeo-idx skopeo-list "


# ---------------------------------------------------------------- native API

# Publish one file with curl -T; oras pulls the same version's OCI view.
head -c 300000 /dev/urandom > in/report.bin
run "curl -T publishes a version" curl -fsS -T in/report.bin \
  "$HTTP/api/v1/repositories/e2e/native/-/versions/1.0/files/report.bin?artifactType=application/vnd.example.report"
NATIVE_OCI=$(json .ociDigest)
expect_eq "publish answer names the file and both digests" "$(json '.files, (.digest|startswith("sha256:")), (.blake3|startswith("blake3:"))' | tr '\n' ' ')" "1 true true "
run "oras pull of a native version" "$ORAS" pull --plain-http -o native-out "$ADDR/e2e/native:1.0"
expect_same_file "oras pull of a curl -T publish: bytes" native-out/report.bin in/report.bin
run "oras manifest fetch of the native version" "$ORAS" manifest fetch --plain-http "$ADDR/e2e/native:1.0"
cp "$OUT" native-oci.json
expect_eq "the derived OCI manifest hashes to the published ociDigest" "$(sha256 native-oci.json)" "$NATIVE_OCI"
expect_eq "the derived manifest is an OCI artifact with the file's title" \
  "$(jq -r '.artifactType + " " + .layers[0].annotations["org.opencontainers.image.title"]' native-oci.json)" \
  "application/vnd.example.report report.bin"

# What oras pushed is a version too: fetch its files by path and by BLAKE3.
run "native API lists the oras push as a version" curl -fsS "$HTTP/api/v1/repositories/e2e/files/-/versions"
expect_eq "oras-pushed versions, newest first, not native" "$(json '[.versions[] | .version + ":" + (.native|tostring)] | join(" ")')" "latest:false v1:false"
run "GET a file of the oras push by path" curl -fsS -D file-headers.txt -o by-path.bin "$HTTP/api/v1/repositories/e2e/files/-/versions/v1/files/random.bin"
expect_same_file "file by path: bytes" by-path.bin in/random.bin
expect_eq "file by path: Repr-Digest carries both digests" \
  "$(grep -i '^repr-digest:' file-headers.txt | grep -c 'sha-256=:.*blake3=:')" 1
run "GET a blob by BLAKE3 through the native API" curl -fsS -o by-b3.bin "$HTTP/api/v1/repositories/e2e/files/-/blobs/$(blake3 in/hello.txt)"
expect_same_file "blob by BLAKE3 through the native API: bytes" by-b3.bin in/hello.txt

# An image crane pushed has no title annotations: its layer is the file
# blobs/sha256/<hex> of version v1, and artifactstore pull fetches it.
run "native view of the crane image" curl -fsS "$HTTP/api/v1/repositories/e2e/img/-/versions/v1/files"
expect_eq "the crane image's layer is a file named by its digest" "$(json '[.files[].path] | join(" ")')" "blobs/sha256/${LAYER#sha256:}"
run "artifactstore pull of the crane image" "$BIN" pull --server "$HTTP" e2e/img:v1 img-pull
expect_eq "the pulled layer has the layer's digest" "$(sha256 "img-pull/blobs/sha256/${LAYER#sha256:}")" "$LAYER"
# The URL form without the /-/ separator is gone, and says what to use.
run "old native URL" curl -sS -o old-url.json -w '%{http_code}' "$HTTP/api/v1/repositories/e2e/files/versions/v1"
expect_eq "old native URL: 404 naming the new one" "$(cat "$OUT") $(grep -c '/api/v1/repositories/e2e/files/-/versions/v1' old-url.json)" "404 1"

# The derived digest survives a replay of the log.
stop_server
run "artifactstore replay" "$BIN" replay --data "$DATA"
BIN=$BIN start_server "$DATA"
HTTP=http://$ADDR
run "crane digest of the native version after replay" "$CRANE" digest --insecure "$ADDR/e2e/native:1.0"
expect_eq "derived digest is the same after replay" "$(cat "$OUT")" "$NATIVE_OCI"
run "artifactstore verify" "$BIN" verify --data "$DATA"
expect_eq "verify finds no problems" "$(grep -c 'PROBLEM' "$OUT" || true)" 0

# The derived digest is the same from two replicas on one PostgreSQL log.
if [ -n "${ARTIFACTSTORE_TEST_POSTGRES:-}" ]; then
  SCHEMA="e2e_$(date +%s)_$$"
  psql -q "$ARTIFACTSTORE_TEST_POSTGRES" -c "CREATE SCHEMA $SCHEMA"
  DSN="$ARTIFACTSTORE_TEST_POSTGRES?search_path=$SCHEMA"
  REPDATA=$WORK/replicas
  mkdir -p "$REPDATA"
  MAIN_PID=$SERVER_PID MAIN_ADDR=$ADDR
  BIN=$BIN start_server "$REPDATA" --db "$DSN"; R1_PID=$SERVER_PID R1=$ADDR; mv "$REPDATA/server.log" "$REPDATA/server1.log"
  BIN=$BIN start_server "$REPDATA" --db "$DSN"; R2_PID=$SERVER_PID R2=$ADDR
  run "curl -T publishes on replica 1" curl -fsS -T in/report.bin \
    "http://$R1/api/v1/repositories/e2e/native/-/versions/1.0/files/report.bin?artifactType=application/vnd.example.report"
  R1_OCI=$(json .ociDigest)
  run "crane digest on replica 2" "$CRANE" digest --insecure "$R2/e2e/native:1.0"
  expect_eq "replica 2 serves the derived manifest under replica 1's digest" "$(cat "$OUT")" "$R1_OCI"
  run "native manifest from replica 2" curl -fsS "http://$R2/api/v1/repositories/e2e/native/-/versions/1.0"
  expect_eq "replica 2's native manifest names the same file digests" "$(json '.files[0].sha256 + " " + .files[0].blake3')" \
    "$(sha256 in/report.bin) $(blake3 in/report.bin)"
  kill "$R1_PID" "$R2_PID" 2>/dev/null || true
  wait "$R1_PID" "$R2_PID" 2>/dev/null || true
  SERVER_PID=$MAIN_PID ADDR=$MAIN_ADDR
  PGOPTIONS=--client-min-messages=warning psql -q "$ARTIFACTSTORE_TEST_POSTGRES" -c "DROP SCHEMA $SCHEMA CASCADE"
else
  echo "*** e2e: the two-replica check is SKIPPED: set ARTIFACTSTORE_TEST_POSTGRES to run it ***"
fi

# ---------------------------------------------------------------- S3

# The real clients against a server whose blobs are in an S3 bucket (the
# Versity gateway), and a chunked push whose PATCHes alternate between two
# replicas sharing the bucket (and, for their log, PostgreSQL).
if [ ! -x "$TOOLS/versitygw" ]; then
  GOBIN="$TOOLS" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
(cd "$ROOT" && go build -o "$TOOLS/rrproxy" ./conformance/rrproxy)
S3DIR=$WORK/s3
mkdir -p "$S3DIR/gw" "$S3DIR/a"
S3PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TOOLS/versitygw" --access e2e --secret e2e-secret-key --port "127.0.0.1:$S3PORT" posix "$S3DIR/gw" > "$S3DIR/versitygw.log" 2>&1 &
S3_PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$S3PORT") 2>/dev/null && break; sleep 0.1; done
S3F=(--storage s3://e2e/blobs --s3-endpoint "http://127.0.0.1:$S3PORT" --s3-access-key e2e --s3-secret-key e2e-secret-key --s3-path-style)
MAIN_PID=$SERVER_PID MAIN_ADDR=$ADDR
BIN=$BIN start_server "$S3DIR/a" "${S3F[@]}"
S3A_PID=$SERVER_PID
run "crane append on S3" "$CRANE" append --insecure -f layer.tar -t "$ADDR/e2e/s3img:v1"
run "crane export from S3" "$CRANE" export --insecure "$ADDR/e2e/s3img:v1" s3-export.tar
expect_eq "crane export from S3 has the layer's file" "$(tar -xOf s3-export.tar etc/e2e.txt)" "$(cat rootfs/etc/e2e.txt)"
run "oras push to S3" "$ORAS" push --plain-http "$ADDR/e2e/s3files:v1" --artifact-type application/vnd.example.e2e in/random.bin:application/octet-stream
run "oras pull from S3" "$ORAS" pull --plain-http -o s3-pulled "$ADDR/e2e/s3files:v1"
expect_same_file "oras pull from S3: bytes" s3-pulled/in/random.bin in/random.bin
run "ranged GET from S3" curl -fsS -r 1000-1999 -o s3-range.bin "http://$ADDR/v2/e2e/s3files/blobs/$(sha256 in/random.bin)"
expect_eq "ranged GET from S3: bytes" "$(sha256 s3-range.bin)" "sha256:$(tail -c +1001 in/random.bin | head -c 1000 | sha256sum | cut -d' ' -f1)"
kill "$S3A_PID" 2>/dev/null || true; wait "$S3A_PID" 2>/dev/null || true

if [ -n "${ARTIFACTSTORE_TEST_POSTGRES:-}" ]; then
  SCHEMA="e2es3_$(date +%s)_$$"
  psql -q "$ARTIFACTSTORE_TEST_POSTGRES" -c "CREATE SCHEMA $SCHEMA"
  DSN="$ARTIFACTSTORE_TEST_POSTGRES?search_path=$SCHEMA"
  mkdir -p "$S3DIR/r1" "$S3DIR/r2"
  BIN=$BIN start_server "$S3DIR/r1" --db "$DSN" "${S3F[@]}"; P1=$SERVER_PID; B1=http://$ADDR
  BIN=$BIN start_server "$S3DIR/r2" --db "$DSN" "${S3F[@]}"; P2=$SERVER_PID; B2=http://$ADDR
  PXPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$TOOLS/rrproxy" -v --listen "127.0.0.1:$PXPORT" "$B1" "$B2" > "$S3DIR/proxy.log" 2>&1 &
  PX_PID=$!
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PXPORT/v2/" > /dev/null 2>&1 && break; sleep 0.1; done
  PX=http://127.0.0.1:$PXPORT
  head -c 7340032 /dev/urandom > in/chunked.bin   # 7 MiB in three chunks
  LOC=$(curl -fsS -X POST -D - -o /dev/null "$PX/v2/e2e/s3chunks/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  OFF=0
  for LEN in 3145728 3145728 1048576; do
    head -c $((OFF + LEN)) in/chunked.bin | tail -c "$LEN" > chunk.part
    LOC=$(curl -fsS -X PATCH -H "Content-Type: application/octet-stream" -H "Content-Range: $OFF-$((OFF + LEN - 1))" \
      --data-binary @chunk.part -D - -o /dev/null "$PX$LOC" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    OFF=$((OFF + LEN))
  done
  run "finish the chunked push through the proxy" curl -fsS -X PUT -o /dev/null -w '%{http_code}' "$PX$LOC?digest=$(sha256 in/chunked.bin)"
  expect_eq "chunked push across two replicas on one bucket: 201" "$(cat "$OUT")" 201
  expect_eq "the PATCHes went to both replicas" "$(grep ' PATCH ' "$S3DIR/proxy.log" | awk '{print $NF}' | sort -u | wc -l)" 2
  for B in "$B1" "$B2"; do
    run "GET the chunked blob from $B" curl -fsS -o s3-chunked.bin "$B/v2/e2e/s3chunks/blobs/$(sha256 in/chunked.bin)"
    expect_same_file "chunked blob from $B: bytes" s3-chunked.bin in/chunked.bin
  done
  run "a BLAKE3 fetch of the chunked blob" curl -fsS -o s3-chunked-b3.bin "$PX/v2/e2e/s3chunks/blobs/$(blake3 in/chunked.bin)"
  expect_same_file "chunked blob by BLAKE3: bytes" s3-chunked-b3.bin in/chunked.bin
  kill "$PX_PID" "$P1" "$P2" 2>/dev/null || true
  wait "$PX_PID" "$P1" "$P2" 2>/dev/null || true
  PGOPTIONS=--client-min-messages=warning psql -q "$ARTIFACTSTORE_TEST_POSTGRES" -c "DROP SCHEMA $SCHEMA CASCADE"
else
  echo "*** e2e: the two-replica S3 check is SKIPPED: set ARTIFACTSTORE_TEST_POSTGRES to run it ***"
fi
kill "$S3_PID" 2>/dev/null || true; wait "$S3_PID" 2>/dev/null || true
SERVER_PID=$MAIN_PID ADDR=$MAIN_ADDR

# ---------------------------------------------------------------- HTTPS

# The same clients over HTTPS, trusting a CA made here with openssl: no
# --insecure, no --tls-verify=false, no --plain-http. The server also asks
# for optional client certificates (--tls-client-ca), which clients without
# one must not notice. Podman is not installed by this script, so it is not
# among them.
TLSDIR=$WORK/tls
mkdir -p "$TLSDIR/data" "$TLSDIR/certs.d"
# new_cert NAME CN EXTENSIONS: NAME.key and NAME.crt signed by the test CA.
new_cert() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$TLSDIR/$1.key" -out "$TLSDIR/$1.csr" 2> /dev/null
  printf '%b' "$3" > "$TLSDIR/$1.ext"
  openssl x509 -req -in "$TLSDIR/$1.csr" -CA "$TLSDIR/ca.crt" -CAkey "$TLSDIR/ca.key" -CAcreateserial \
    -days 1 -extfile "$TLSDIR/$1.ext" -out "$TLSDIR/$1.crt" 2> /dev/null
}
SERVER_EXT='subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n'
run "openssl: test CA" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=e2e test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$TLSDIR/ca.key" -out "$TLSDIR/ca.crt"
run "openssl: server certificate for 127.0.0.1" new_cert server 127.0.0.1 "$SERVER_EXT"
run "openssl: client certificate" new_cert client e2e-robot 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n'
run "openssl: a self-signed client certificate" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=e2e-robot" -keyout "$TLSDIR/stranger.key" -out "$TLSDIR/stranger.crt"
cp "$TLSDIR/ca.crt" "$TLSDIR/certs.d/ca.crt" # skopeo's --cert-dir: *.crt are CAs
TLSPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TLSADDR=127.0.0.1:$TLSPORT
HTTPS=https://$TLSADDR
"$BIN" serve --addr "$TLSADDR" --data "$TLSDIR/data" --tls-cert "$TLSDIR/server.crt" --tls-key "$TLSDIR/server.key" \
  --tls-client-ca "$TLSDIR/ca.crt" > "$TLSDIR/server.log" 2>&1 &
TLS_PID=$!
for _ in $(seq 100); do curl -fsS --cacert "$TLSDIR/ca.crt" "$HTTPS/v2/" > /dev/null 2>&1 && break; sleep 0.1; done
CA=(--cacert "$TLSDIR/ca.crt")

run "curl over HTTPS (HTTP/2)" curl -fsS "${CA[@]}" -o /dev/null -w '%{http_version} %{http_code}' "$HTTPS/v2/"
expect_eq "HTTPS: curl negotiates HTTP/2" "$(cat "$OUT")" "2 200"
run "curl over HTTPS (HTTP/1.1)" curl -fsS "${CA[@]}" --http1.1 -o /dev/null -w '%{http_version} %{http_code}' "$HTTPS/v2/"
expect_eq "HTTPS: curl with --http1.1 gets HTTP/1.1" "$(cat "$OUT")" "1.1 200"
expect_eq "HTTPS: a client that does not trust the CA is refused (curl exit 60)" "$(curl -sS -o /dev/null "$HTTPS/v2/" 2> /dev/null; echo $?)" 60
run "curl with a client certificate from the client CA" curl -fsS "${CA[@]}" --cert "$TLSDIR/client.crt" --key "$TLSDIR/client.key" \
  -o /dev/null -w '%{http_code}' "$HTTPS/v2/"
expect_eq "mTLS: a certificate from --tls-client-ca is accepted" "$(cat "$OUT")" 200
run_fails "curl with a self-signed client certificate" curl -fsS "${CA[@]}" --cert "$TLSDIR/stranger.crt" --key "$TLSDIR/stranger.key" "$HTTPS/v2/"
# The client sees an alert or a reset, as the timing goes; the server's log
# says why (it may write the line just after the client gave up).
for _ in $(seq 20); do grep -q 'TLS handshake error.*certificate signed by unknown authority' "$TLSDIR/server.log" && break; sleep 0.1; done
grep -q 'TLS handshake error.*certificate signed by unknown authority' "$TLSDIR/server.log" ||
  { cat "$ERR"; fail "curl with a self-signed client certificate: the server logged no handshake failure"; }
pass "mTLS: a client certificate from another CA fails the handshake"

# crane trusts the CA through SSL_CERT_FILE (Go's standard variable).
run_fails "crane without trusting the CA" "$CRANE" digest "$TLSADDR/e2e/none:v1"
grep -q 'certificate signed by unknown authority' "$ERR" || { cat "$ERR"; fail "crane without the CA: not a certificate error"; }
pass "HTTPS: crane refuses the server's certificate unless the CA is trusted"
run "crane append over HTTPS" env SSL_CERT_FILE="$TLSDIR/ca.crt" "$CRANE" append -f layer.tar -t "$TLSADDR/e2e/tls-img:v1"
TLS_IMG=$(sed -n 's/.*@//p' "$OUT")
run "crane digest over HTTPS" env SSL_CERT_FILE="$TLSDIR/ca.crt" "$CRANE" digest "$TLSADDR/e2e/tls-img:v1"
expect_eq "HTTPS: crane digest equals what crane pushed" "$(cat "$OUT")" "$TLS_IMG"
run "crane export over HTTPS" env SSL_CERT_FILE="$TLSDIR/ca.crt" "$CRANE" export "$TLSADDR/e2e/tls-img:v1" tls-export.tar
tar -xOf tls-export.tar etc/e2e.txt > tls-export-e2e.txt || fail "crane export over HTTPS: etc/e2e.txt missing"
expect_same_file "HTTPS: crane export: file content" tls-export-e2e.txt rootfs/etc/e2e.txt

# oras trusts it with --ca-file.
cd in
run "oras push over HTTPS" "$ORAS" push --ca-file "$TLSDIR/ca.crt" --format json \
  "$TLSADDR/e2e/tls-files:v1" --artifact-type application/vnd.example.e2e hello.txt random.bin
cd "$WORK"
TLS_ART=$(json .digest)
run "oras pull over HTTPS" "$ORAS" pull --ca-file "$TLSDIR/ca.crt" -o tls-pulled "$TLSADDR/e2e/tls-files:v1"
expect_same_file "HTTPS: oras pull: hello.txt bytes" tls-pulled/hello.txt in/hello.txt
expect_same_file "HTTPS: oras pull: random.bin bytes" tls-pulled/random.bin in/random.bin
run "oras manifest fetch over HTTPS" "$ORAS" manifest fetch --ca-file "$TLSDIR/ca.crt" "$TLSADDR/e2e/tls-files:v1"
expect_eq "HTTPS: the manifest hashes to the digest oras pushed" "$(sha256 "$OUT")" "$TLS_ART"

# skopeo trusts it through a cert dir holding ca.crt.
run "skopeo copy registry -> oci layout over HTTPS" skopeo copy --src-cert-dir "$TLSDIR/certs.d" \
  "docker://$TLSADDR/e2e/tls-img:v1" oci:tls-layout:v1
TLS_LAYER=$(jq -r '.layers[0].digest' "tls-layout/blobs/sha256/$(jq -r '.manifests[0].digest' tls-layout/index.json | cut -d: -f2)")
expect_eq "HTTPS: skopeo fetched the layer crane pushed" "$(sha256 "tls-layout/blobs/sha256/${TLS_LAYER#sha256:}")" "$LAYER"
run "skopeo copy oci layout -> registry over HTTPS" skopeo copy --dest-cert-dir "$TLSDIR/certs.d" \
  oci:tls-layout:v1 "docker://$TLSADDR/e2e/tls-skopeo:v1"
run "skopeo inspect over HTTPS" skopeo inspect --cert-dir "$TLSDIR/certs.d" "docker://$TLSADDR/e2e/tls-skopeo:v1"
expect_eq "HTTPS: skopeo round trip keeps the layer" "$(json '.Layers | join(" ")')" "$LAYER"
run "crane export of what skopeo pushed over HTTPS" env SSL_CERT_FILE="$TLSDIR/ca.crt" "$CRANE" export "$TLSADDR/e2e/tls-skopeo:v1" tls-skopeo.tar
expect_eq "HTTPS: the image skopeo pushed has the file" "$(tar -xOf tls-skopeo.tar etc/e2e.txt)" "$(cat rootfs/etc/e2e.txt)"

# The project's own client, trusting the CA the standard way.
run "artifactstore pull over HTTPS" env SSL_CERT_FILE="$TLSDIR/ca.crt" "$BIN" pull --server "$HTTPS" e2e/tls-files:v1 tls-native
expect_same_file "HTTPS: artifactstore pull: random.bin bytes" tls-native/random.bin in/random.bin

# Rotation without a restart: a new certificate, SIGHUP, the next
# connection sees its serial.
OLD_SERIAL=$(openssl x509 -noout -serial -in "$TLSDIR/server.crt")
run "openssl: a new server certificate" new_cert server-new 127.0.0.1 "$SERVER_EXT"
cp "$TLSDIR/server-new.key" "$TLSDIR/server.key.tmp" && cp "$TLSDIR/server-new.crt" "$TLSDIR/server.crt.tmp"
mv "$TLSDIR/server.crt.tmp" "$TLSDIR/server.crt" && mv "$TLSDIR/server.key.tmp" "$TLSDIR/server.key"
kill -HUP "$TLS_PID"
NEW_SERIAL=$(openssl x509 -noout -serial -in "$TLSDIR/server-new.crt")
for _ in $(seq 50); do
  SEEN=$(openssl s_client -connect "$TLSADDR" -CAfile "$TLSDIR/ca.crt" < /dev/null 2> /dev/null | openssl x509 -noout -serial)
  [ "$SEEN" = "$NEW_SERIAL" ] && break
  sleep 0.1
done
[ "$OLD_SERIAL" != "$NEW_SERIAL" ] || fail "openssl made the same serial twice"
expect_eq "HTTPS: after rotation and SIGHUP, new connections get the new certificate" "$SEEN" "$NEW_SERIAL"
run "oras pull after rotation" "$ORAS" pull --ca-file "$TLSDIR/ca.crt" -o tls-rotated "$TLSADDR/e2e/tls-files:v1"
expect_same_file "HTTPS: oras pull after rotation: bytes" tls-rotated/random.bin in/random.bin
kill "$TLS_PID" 2>/dev/null || true; wait "$TLS_PID" 2>/dev/null || true
TLS_PID=
if grep -qiE 'panic|fatal error' "$TLSDIR/server.log"; then
  grep -iE -A5 'panic|fatal error' "$TLSDIR/server.log" | head -40 || true
  fail "the HTTPS server's log shows a panic"
fi
pass "the HTTPS server's log has no panic"

# ---------------------------------------------------------------- login

# Authentication on, over HTTPS (the CA of the section above): an htpasswd
# user and a policy, the built-in token service, and the clients' own
# login commands, each trusting the CA rather than skipping verification.
# Anonymous callers may pull e2e-public/** only; e2e-user may do anything
# under e2e/**.
AUTHDIR=$WORK/auth
mkdir -p "$AUTHDIR/data"
echo e2e-secret | "$BIN" htpasswd e2e-user > "$AUTHDIR/htpasswd"
cat > "$AUTHDIR/policy.yaml" <<'POLICY'
rules:
  - subjects: [anonymous]
    repositories: ["e2e-public/**"]
    actions: [pull]
  - subjects: [e2e-user]
    repositories: ["e2e/**", "e2e-public/**"]
    actions: [pull, push, delete]
POLICY
AUTHPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AUTHADDR=127.0.0.1:$AUTHPORT
"$BIN" serve --addr "$AUTHADDR" --data "$AUTHDIR/data" --htpasswd "$AUTHDIR/htpasswd" --policy "$AUTHDIR/policy.yaml" \
  --tls-cert "$TLSDIR/server.crt" --tls-key "$TLSDIR/server.key" > "$AUTHDIR/server.log" 2>&1 &
AUTH_PID=$!
for _ in $(seq 100); do curl -s "${CA[@]}" -o /dev/null "https://$AUTHADDR/v2/" && break; sleep 0.1; done
expect_eq "login: /v2/ without credentials is 401" "$(curl -s "${CA[@]}" -o /dev/null -w '%{http_code}' "https://$AUTHADDR/v2/")" 401
CHALLENGE=$(curl -s "${CA[@]}" -D - -o /dev/null "https://$AUTHADDR/v2/e2e/x/manifests/v1" | tr -d '\r' | sed -n 's/^[Ww]ww-[Aa]uthenticate: //p')
expect_eq "login: the challenge names the token service (over HTTPS) and the scope" "$CHALLENGE" \
  "Bearer realm=\"https://$AUTHADDR/auth/token\",service=\"artifactstore\",scope=\"repository:e2e/x:pull\""
export SSL_CERT_FILE=$TLSDIR/ca.crt # crane (Go's standard variable)

export DOCKER_CONFIG=$AUTHDIR/docker-config # crane and oras keep their logins here
mkdir -p "$DOCKER_CONFIG"
run_fails "crane push without logging in" "$CRANE" append -f layer.tar -t "$AUTHADDR/e2e/login-img:v1"
pass "login: crane cannot push before logging in"
run "crane auth login" "$CRANE" auth login "$AUTHADDR" -u e2e-user -p e2e-secret
run "crane push after login" "$CRANE" append -f layer.tar -t "$AUTHADDR/e2e/login-img:v1"
LOGIN_IMG=$(sed -n 's/.*@//p' "$OUT")
run "crane digest after login" "$CRANE" digest "$AUTHADDR/e2e/login-img:v1"
expect_eq "login: crane reads back what it pushed" "$(cat "$OUT")" "$LOGIN_IMG"
run_fails "oras pull before oras login (a fresh config)" env DOCKER_CONFIG="$AUTHDIR/empty" "$ORAS" pull --ca-file "$TLSDIR/ca.crt" -o x "$AUTHADDR/e2e/login-img:v1"
pass "login: oras without credentials cannot pull e2e/**"
run "oras login" "$ORAS" login --ca-file "$TLSDIR/ca.crt" -u e2e-user --password-stdin "$AUTHADDR" <<< e2e-secret
cd in
run "oras push after login" "$ORAS" push --ca-file "$TLSDIR/ca.crt" --format json "$AUTHADDR/e2e/login-files:v1" hello.txt random.bin
cd "$WORK"
run "oras pull after login" "$ORAS" pull --ca-file "$TLSDIR/ca.crt" -o login-pulled "$AUTHADDR/e2e/login-files:v1"
expect_same_file "login: oras pull: random.bin bytes" login-pulled/random.bin in/random.bin
run "skopeo copy with --creds" skopeo copy --src-cert-dir "$TLSDIR/certs.d" --dest-cert-dir "$TLSDIR/certs.d" --dest-creds e2e-user:e2e-secret \
  "docker://$AUTHADDR/e2e/login-img:v1" "docker://$AUTHADDR/e2e-public/img:v1" --src-creds e2e-user:e2e-secret
run "skopeo inspect anonymously (public)" skopeo inspect --cert-dir "$TLSDIR/certs.d" --no-creds "docker://$AUTHADDR/e2e-public/img:v1"
expect_eq "login: anonymous callers pull what the policy makes public" "$(json '.Layers | join(" ")')" "$LAYER"
run_fails "skopeo inspect anonymously (private)" skopeo inspect --cert-dir "$TLSDIR/certs.d" --no-creds "docker://$AUTHADDR/e2e/login-img:v1"
pass "login: anonymous callers cannot pull e2e/**"
run_fails "skopeo with a wrong password" skopeo inspect --cert-dir "$TLSDIR/certs.d" --creds e2e-user:wrong "docker://$AUTHADDR/e2e/login-img:v1"
pass "login: a wrong password is refused"
# regctl and helm: their own logins and configs (and no docker login for
# them to fall back on).
export DOCKER_CONFIG=$AUTHDIR/empty REGCTL_CONFIG=$AUTHDIR/regctl.json
run "regctl: trust the test CA" "$REGCTL" registry set --cacert "$(cat "$TLSDIR/ca.crt")" "$AUTHADDR"
run_fails "regctl before logging in" "$REGCTL" image digest "$AUTHADDR/e2e/login-img:v1"
pass "login: regctl cannot read e2e/** before logging in"
run "regctl registry login" "$REGCTL" registry login "$AUTHADDR" -u e2e-user -p e2e-secret
run "regctl image copy" "$REGCTL" image copy "$AUTHADDR/e2e/login-img:v1" "$AUTHADDR/e2e/regctl-img:v1"
run "regctl image digest" "$REGCTL" image digest "$AUTHADDR/e2e/regctl-img:v1"
expect_eq "login: regctl copies within the registry, digest kept" "$(cat "$OUT")" "$LOGIN_IMG"
unset REGCTL_CONFIG
# helm: a chart through helm registry login, push and pull.
export HELM_REGISTRY_CONFIG=$AUTHDIR/helm-registry.json HELM_CACHE_HOME=$AUTHDIR/helm-cache \
  HELM_CONFIG_HOME=$AUTHDIR/helm-config HELM_DATA_HOME=$AUTHDIR/helm-data
run "helm create" "$HELM" create e2echart
run "helm package" "$HELM" package e2echart -d charts
run_fails "helm push before logging in" "$HELM" push charts/e2echart-0.1.0.tgz "oci://$AUTHADDR/e2e/charts" --ca-file "$TLSDIR/ca.crt"
pass "login: helm cannot push before logging in"
run "helm registry login" "$HELM" registry login "$AUTHADDR" -u e2e-user --password-stdin --ca-file "$TLSDIR/ca.crt" <<< e2e-secret
run "helm push" "$HELM" push charts/e2echart-0.1.0.tgz "oci://$AUTHADDR/e2e/charts" --ca-file "$TLSDIR/ca.crt"
mkdir -p pulled-charts
run "helm pull" "$HELM" pull "oci://$AUTHADDR/e2e/charts/e2echart" --version 0.1.0 --ca-file "$TLSDIR/ca.crt" -d pulled-charts
expect_same_file "login: helm pulls the chart it pushed" pulled-charts/e2echart-0.1.0.tgz charts/e2echart-0.1.0.tgz
unset HELM_REGISTRY_CONFIG HELM_CACHE_HOME HELM_CONFIG_HOME HELM_DATA_HOME
# podman (as root, its own storage) and the docker daemon (Debian's, with
# vfs storage and no networking of its own), trusting the test CA through
# their certificate directories.
PODMAN=(podman --root "$AUTHDIR/podman/root" --runroot "$AUTHDIR/podman/run" --storage-driver vfs)
export REGISTRY_AUTH_FILE=$AUTHDIR/podman-auth.json
mkdir -p "$AUTHDIR/podman/certs"
cp "$TLSDIR/ca.crt" "$AUTHDIR/podman/certs/ca.crt"
mkdir -p img-rootfs/etc && cp rootfs/etc/e2e.txt img-rootfs/etc/e2e.txt && tar -C img-rootfs -cf img-rootfs.tar .
run "podman import" "${PODMAN[@]}" import img-rootfs.tar "$AUTHADDR/e2e/podman-img:v1"
echo '{}' > "$REGISTRY_AUTH_FILE"
run_fails "podman push before logging in" "${PODMAN[@]}" push --cert-dir "$AUTHDIR/podman/certs" "$AUTHADDR/e2e/podman-img:v1"
grep -qi 'unauthorized\|authentication required' "$ERR" || { cat "$ERR"; fail "podman push before login: not refused for authentication"; }
pass "login: podman cannot push before logging in"
run "podman login" "${PODMAN[@]}" login --cert-dir "$AUTHDIR/podman/certs" -u e2e-user --password-stdin "$AUTHADDR" <<< e2e-secret
run "podman push" "${PODMAN[@]}" push --cert-dir "$AUTHDIR/podman/certs" "$AUTHADDR/e2e/podman-img:v1"
run "crane export of what podman pushed" env DOCKER_CONFIG="$AUTHDIR/docker-config" "$CRANE" export "$AUTHADDR/e2e/podman-img:v1" podman-export.tar
expect_eq "login: the image podman pushed has the file" "$(tar -xOf podman-export.tar etc/e2e.txt)" "$(cat rootfs/etc/e2e.txt)"
run "podman rmi" "${PODMAN[@]}" rmi "$AUTHADDR/e2e/podman-img:v1"
run "podman pull" "${PODMAN[@]}" pull --cert-dir "$AUTHDIR/podman/certs" "$AUTHADDR/e2e/podman-img:v1"
pass "login: podman pulls back what it pushed"
unset REGISTRY_AUTH_FILE

DOCKER_CERTS=/etc/docker/certs.d/$AUTHADDR
mkdir -p "$DOCKER_CERTS" && cp "$TLSDIR/ca.crt" "$DOCKER_CERTS/ca.crt"
mkdir -p "$AUTHDIR/docker"
dockerd --storage-driver=vfs --iptables=false --bridge=none --data-root "$AUTHDIR/docker/root" --exec-root "$AUTHDIR/docker/exec" \
  -H "unix://$AUTHDIR/docker/docker.sock" --pidfile "$AUTHDIR/docker/docker.pid" > "$AUTHDIR/docker/dockerd.log" 2>&1 &
DOCKERD_PID=$!
export DOCKER_HOST=unix://$AUTHDIR/docker/docker.sock DOCKER_CONFIG=$AUTHDIR/docker/config
for _ in $(seq 100); do docker version > /dev/null 2>&1 && break; sleep 0.2; done
run "docker version (the daemon is up)" docker version
run "docker import" docker import img-rootfs.tar "$AUTHADDR/e2e/docker-img:v1"
run_fails "docker push before logging in" docker push "$AUTHADDR/e2e/docker-img:v1"
grep -qi 'unauthorized\|authentication required' "$OUT" "$ERR" || { cat "$OUT" "$ERR"; fail "docker push before login: not refused for authentication"; }
pass "login: docker cannot push before logging in"
run "docker login" docker login -u e2e-user --password-stdin "$AUTHADDR" <<< e2e-secret
run "docker push" docker push "$AUTHADDR/e2e/docker-img:v1"
run "docker rmi" docker rmi "$AUTHADDR/e2e/docker-img:v1"
run "docker pull" docker pull "$AUTHADDR/e2e/docker-img:v1"
run "crane export of what docker pushed" env DOCKER_CONFIG="$AUTHDIR/docker-config" "$CRANE" export "$AUTHADDR/e2e/docker-img:v1" docker-export.tar
expect_eq "login: the image docker pushed has the file, and docker pulls it back" "$(tar -xOf docker-export.tar etc/e2e.txt)" "$(cat rootfs/etc/e2e.txt)"
kill "$DOCKERD_PID" 2>/dev/null || true; wait "$DOCKERD_PID" 2>/dev/null || true
DOCKERD_PID=
rm -rf "$DOCKER_CERTS"; DOCKER_CERTS=
unset DOCKER_HOST
kill "$AUTH_PID" 2>/dev/null || true; wait "$AUTH_PID" 2>/dev/null || true
AUTH_PID=
unset DOCKER_CONFIG SSL_CERT_FILE
if grep -qiE 'panic|fatal error' "$AUTHDIR/server.log"; then
  grep -iE -A5 'panic|fatal error' "$AUTHDIR/server.log" | head -40 || true
  fail "the authenticating server's log shows a panic"
fi
pass "the authenticating server's log has no panic"

# ---------------------------------------------------------------- end

if grep -qiE 'panic|fatal error' "$DATA/server.log"; then
  grep -iE -A5 'panic|fatal error' "$DATA/server.log" | head -40 || true
  fail "server log shows a panic"
fi
pass "server log has no panic"

echo "e2e took $((SECONDS - START))s"
echo "e2e: $PASSED passed, 0 failed"
