package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/registry"
	"golang.org/x/crypto/bcrypt"
)

// authConfig is serve's authentication settings. With neither htpasswd
// nor policy set, authentication is off: the embedded default stays open.
type authConfig struct {
	htpasswd, policy string
	issuers          string // external token issuers (YAML)
	keys             string // comma-separated key files; empty: DATA/auth/keys
	realm, service   string
	tokenTTL         time.Duration
}

func authFlags(fs *flag.FlagSet) *authConfig {
	c := &authConfig{}
	fs.StringVar(&c.htpasswd, "htpasswd", env("ARTIFACTSTORE_HTPASSWD", ""), "turn authentication on with the users of this htpasswd file (bcrypt only); without --policy every user may pull, push and delete everywhere, anonymous callers nothing (env ARTIFACTSTORE_HTPASSWD)")
	fs.StringVar(&c.policy, "policy", env("ARTIFACTSTORE_POLICY", ""), "turn authentication on with this policy file (YAML: groups, rules of subjects, repository globs and actions); re-read when it changes (env ARTIFACTSTORE_POLICY)")
	fs.StringVar(&c.issuers, "issuers", env("ARTIFACTSTORE_ISSUERS", ""), "trust the external token issuers of this file (YAML: OIDC discovery or JWKS, audience, pinned algorithms, the claim naming the principal), e.g. CI workload identity (env ARTIFACTSTORE_ISSUERS)")
	fs.StringVar(&c.keys, "token-key", env("ARTIFACTSTORE_TOKEN_KEY", ""), "token signing key files (PEM, P-256), comma separated, the last signing: give replicas the same files; default: generated in DATA/auth/keys (env ARTIFACTSTORE_TOKEN_KEY)")
	fs.StringVar(&c.realm, "token-realm", env("ARTIFACTSTORE_TOKEN_REALM", ""), "the token service's URL in challenges, when clients reach the server under another address than the one they asked (a proxy); default: derived from each request (env ARTIFACTSTORE_TOKEN_REALM)")
	fs.StringVar(&c.service, "token-service", env("ARTIFACTSTORE_TOKEN_SERVICE", "artifactstore"), "the token service's name: token audience and issuer (env ARTIFACTSTORE_TOKEN_SERVICE)")
	fs.DurationVar(&c.tokenTTL, "token-ttl", envDuration("ARTIFACTSTORE_TOKEN_TTL", 5*time.Minute), "lifetime of an access token (env ARTIFACTSTORE_TOKEN_TTL)")
	return c
}

// open builds the authenticator, or nil when authentication is off, and
// keeps the policy file's changes flowing in until ctx ends.
func (c *authConfig) open(ctx context.Context, data string, logger *slog.Logger) (*auth.Authenticator, error) {
	if c.htpasswd == "" && c.policy == "" && c.issuers == "" {
		return nil, nil
	}
	opts := auth.Options{Realm: c.realm, Service: c.service, TokenTTL: c.tokenTTL,
		ValidName: func(n string) bool { return registry.ValidateName(n) == nil }}
	var err error
	if c.htpasswd != "" {
		if opts.Users, err = auth.LoadHtpasswd(c.htpasswd); err != nil {
			return nil, err
		}
	}
	if c.policy != "" {
		if opts.Policy, err = auth.LoadPolicy(c.policy); err != nil {
			return nil, err
		}
	}
	if c.issuers != "" {
		if opts.Issuers, err = auth.LoadIssuers(c.issuers); err != nil {
			return nil, err
		}
	}
	if c.keys != "" {
		opts.Keys, err = auth.LoadKeyFiles(strings.Split(c.keys, ",")...)
	} else {
		opts.Keys, err = auth.LoadKeyDir(filepath.Join(data, "auth", "keys"))
	}
	if err != nil {
		return nil, err
	}
	a, err := auth.New(opts)
	if err != nil {
		return nil, err
	}
	if c.policy != "" {
		go watchPolicy(ctx, c.policy, a, logger)
	}
	logger.Info("authentication on", "users", usersCount(opts.Users), "policy", c.policy, "issuers", len(opts.Issuers), "token_key", opts.Keys.KeyID())
	return a, nil
}

// watchPolicy re-reads the policy file when it changes; a file that does
// not load leaves the current policy in force, and says why.
func watchPolicy(ctx context.Context, file string, a *auth.Authenticator, logger *slog.Logger) {
	stat := func() (time.Time, int64) {
		fi, err := os.Stat(file)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mod, size := stat()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, s := stat()
		if m.Equal(mod) && s == size {
			continue
		}
		mod, size = m, s
		loadPolicy(file, a, logger)
	}
}

// reloadPolicy re-reads the policy file now (SIGHUP).
func (c *authConfig) reloadPolicy(a *auth.Authenticator, logger *slog.Logger) {
	loadPolicy(c.policy, a, logger)
}

// reloadUsers re-reads the htpasswd file, or leaves the accounts in force
// and says why.
func (c *authConfig) reloadUsers(a *auth.Authenticator, logger *slog.Logger) {
	u, err := auth.LoadHtpasswd(c.htpasswd)
	if err != nil {
		logger.Error("users not reloaded; the previous ones stay in force", "file", c.htpasswd, "err", err)
		return
	}
	a.SetUsers(u)
	logger.Info("users reloaded", "file", c.htpasswd, "users", usersCount(u))
}

// loadPolicy puts file's policy in force, or leaves the current one and
// says why.
func loadPolicy(file string, a *auth.Authenticator, logger *slog.Logger) {
	p, err := auth.LoadPolicy(file)
	if err != nil {
		logger.Error("policy not reloaded; the previous one stays in force", "err", err)
		return
	}
	a.SetPolicy(p)
	logger.Info("policy reloaded", "file", file)
}

func usersCount(u *auth.Users) int {
	if u == nil {
		return 0
	}
	return u.Len()
}

// htpasswd prints "user:bcrypt-hash" for the password on stdin (its first
// line), so that an htpasswd file can be made without Apache's tools.
func htpasswd(args []string) error {
	fs := flag.NewFlagSet("htpasswd", flag.ExitOnError)
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: artifactstore htpasswd [-cost N] USER < password-file   (prints USER:HASH)")
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() != 1 || strings.ContainsAny(fs.Arg(0), ": ") {
		fs.Usage()
		return fmt.Errorf("give one user name, without ':' or spaces")
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("read the password from stdin: %v", err)
	}
	pass := strings.TrimRight(line, "\r\n")
	if pass == "" {
		return fmt.Errorf("the password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pass), *cost)
	if err != nil {
		return err
	}
	fmt.Printf("%s:%s\n", fs.Arg(0), h)
	return nil
}
