package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The steps that run real clients, oras and skopeo, as a user would; each
// step's time includes starting the client.

// host is the server's host:port, as clients want it in references.
func (w *workload) host() string { return strings.TrimPrefix(w.base, "http://") }

// runClient runs a client in dir and returns an error with its output if
// it fails.
func runClient(ctx context.Context, dir, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tail := out.Bytes()
		if len(tail) > 1000 {
			tail = tail[len(tail)-1000:]
		}
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, bytes.TrimSpace(tail))
	}
	return nil
}

// orasPush pushes the random file itself as an artifact's one layer.
func orasPush(oras string) func(context.Context, *workload) (float64, error) {
	return func(ctx context.Context, w *workload) (float64, error) {
		dir, name := filepath.Split(w.data.bigPath)
		start := time.Now()
		err := runClient(ctx, dir, oras, "push", "--plain-http", w.host()+"/"+repoOras+":v1", name+":application/octet-stream")
		if err != nil {
			return 0, err
		}
		return rate(float64(w.cfg.bigSize)/1e6, start), nil
	}
}

// orasPull pulls it back into a new directory, which it then removes;
// oras checks the digest, and the size is checked here.
func orasPull(oras string) func(context.Context, *workload) (float64, error) {
	return func(ctx context.Context, w *workload) (float64, error) {
		out, err := os.MkdirTemp(filepath.Dir(w.data.bigPath), "oras-pull-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(out)
		start := time.Now()
		if err := runClient(ctx, out, oras, "pull", "--plain-http", w.host()+"/"+repoOras+":v1", "-o", out); err != nil {
			return 0, err
		}
		r := rate(float64(w.cfg.bigSize)/1e6, start)
		fi, err := os.Stat(filepath.Join(out, filepath.Base(w.data.bigPath)))
		if err != nil {
			return 0, fmt.Errorf("oras pull: %w", err)
		}
		if fi.Size() != w.cfg.bigSize {
			return 0, fmt.Errorf("oras pull: %d bytes, want %d", fi.Size(), w.cfg.bigSize)
		}
		return r, nil
	}
}

// skopeoArgs: no signature policy to read, and plain HTTP on loopback.
var skopeoArgs = []string{"copy", "--insecure-policy", "--src-tls-verify=false", "--dest-tls-verify=false"}

// skopeoIn copies the OCI layout's image into the server.
func skopeoIn(skopeo string) func(context.Context, *workload) (float64, error) {
	return func(ctx context.Context, w *workload) (float64, error) {
		start := time.Now()
		args := append(skopeoArgs[:len(skopeoArgs):len(skopeoArgs)], "oci:"+w.data.layout+":v1", "docker://"+w.host()+"/"+repoSkopeo+":v1")
		if err := runClient(ctx, filepath.Dir(w.data.layout), skopeo, args...); err != nil {
			return 0, err
		}
		return rate(float64(w.data.layerSize)/1e6, start), nil
	}
}

// skopeoOut copies it back into a new OCI layout, which it then removes,
// and checks that the layout holds every layer.
func skopeoOut(skopeo string) func(context.Context, *workload) (float64, error) {
	return func(ctx context.Context, w *workload) (float64, error) {
		out, err := os.MkdirTemp(filepath.Dir(w.data.layout), "skopeo-out-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(out)
		start := time.Now()
		args := append(skopeoArgs[:len(skopeoArgs):len(skopeoArgs)], "docker://"+w.host()+"/"+repoSkopeo+":v1", "oci:"+out+":v1")
		if err := runClient(ctx, out, skopeo, args...); err != nil {
			return 0, err
		}
		r := rate(float64(w.data.layerSize)/1e6, start)
		for _, d := range w.data.layers {
			if _, err := os.Stat(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
				return 0, fmt.Errorf("skopeo copy out: layer %s missing: %w", d, err)
			}
		}
		return r, nil
	}
}
