package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// apiClient talks to a server's /api/v1/ as the commands that manage it
// (keys, retention, restore, storage, history) do: --server, and Basic
// credentials of --user with the password in ARTIFACTSTORE_PASSWORD, so
// that it never shows in a process list.
type apiClient struct {
	server, user *string // read when a request is made, after flags are parsed
}

// apiFlags defines --server and --user on fs; who says whose user name
// the command wants ("user name", "an admin's user name").
func apiFlags(fs *flag.FlagSet, who string) apiClient {
	return apiClient{
		server: fs.String("server", env("ARTIFACTSTORE_SERVER", "http://127.0.0.1:5000"), "registry URL (env ARTIFACTSTORE_SERVER)"),
		user:   fs.String("user", env("ARTIFACTSTORE_USER", ""), who+", with the password in ARTIFACTSTORE_PASSWORD (env ARTIFACTSTORE_USER)"),
	}
}

// do sends body (nil for none) as JSON and answers the response body when
// the status is want.
func (c apiClient) do(ctx context.Context, method, path string, body any, want int) ([]byte, error) {
	if body == nil {
		return c.send(ctx, method, path, "", nil, want)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, method, path, "application/json", b, want)
}

// send sends body as contentType. Any status but want is an error that
// carries the status and the server's own message.
func (c apiClient) send(ctx context.Context, method, path, contentType string, body []byte, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(*c.server, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if *c.user != "" {
		req.SetBasicAuth(*c.user, os.Getenv("ARTIFACTSTORE_PASSWORD"))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s: %s", resp.Status, serverMessage(out))
	}
	return out, nil
}

// serverMessage is what an error answer says: "CODE: message" from the
// distribution-spec envelope, or the body as it is when it is not one (a
// proxy's page, say).
func serverMessage(body []byte) string {
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		msgs := make([]string, len(env.Errors))
		for i, e := range env.Errors {
			msgs[i] = e.Code + ": " + e.Message
		}
		return strings.Join(msgs, "; ")
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		return s
	}
	return "(no message)"
}

// decode reads a server's JSON answer into v.
func decode(out []byte, v any) error {
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	return nil
}

// printJSON writes a server's answer indented, for --json.
func printJSON(out []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	b.WriteByte('\n')
	_, err := os.Stdout.Write(b.Bytes())
	return err
}

// parseInterspersed parses fs from args, letting flags come after
// positional arguments too ("restore team/app --version 1.0"), and
// returns the positional ones. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) []string {
	var pos []string
	for {
		fs.Parse(args)
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...)
		}
		if len(rest) == 0 {
			return pos
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
