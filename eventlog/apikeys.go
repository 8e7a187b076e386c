package eventlog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// API keys for robots are state like any other: made by apikey.created,
// ended by apikey.revoked, read from the api_keys view. The log never
// holds a key's secret, only the hash the registry checks it against.
// Who made or revoked a key is the event's actor.

// Payloads of the API key events.
type (
	// APIKeyCreated: a key exists. Hash is "sha256:<hex>" of the key's
	// secret (never the secret); Expires is RFC 3339 UTC.
	APIKeyCreated struct {
		ID           string   `json:"id"`
		Name         string   `json:"name"`
		Hash         string   `json:"hash"`
		Repositories []string `json:"repositories"`
		Actions      []string `json:"actions"`
		Expires      string   `json:"expires"`
	}
	// APIKeyRevoked: the key no longer authenticates anyone.
	APIKeyRevoked struct {
		ID string `json:"id"`
	}
)

// APIKey is a row of the api_keys view.
type APIKey struct {
	ID           string
	Name         string
	Hash         string
	Repositories []string
	Actions      []string
	Expires      time.Time
	Created      time.Time
	CreatedBy    string    // the actor of apikey.created
	Seq          int64     // of apikey.created
	Revoked      time.Time // zero while the key is live
	RevokedBy    string
}

const apiKeyCols = `id, name, hash, repositories, actions, expires_ns, created_ns, created_by, seq, revoked_ns, revoked_by`

func scanAPIKey(row interface{ Scan(...any) error }) (APIKey, error) {
	var k APIKey
	var repos, actions string
	var exp, created, revoked int64
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &repos, &actions, &exp, &created, &k.CreatedBy, &k.Seq, &revoked, &k.RevokedBy); err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(repos), &k.Repositories); err != nil {
		return k, fmt.Errorf("api key %s: repositories: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(actions), &k.Actions); err != nil {
		return k, fmt.Errorf("api key %s: actions: %w", k.ID, err)
	}
	k.Expires, k.Created = time.Unix(0, exp).UTC(), time.Unix(0, created).UTC()
	if revoked != 0 {
		k.Revoked = time.Unix(0, revoked).UTC()
	}
	return k, nil
}

// APIKey returns the key id, live or revoked (ErrNotFound when none).
func (l *Log) APIKey(ctx context.Context, id string) (APIKey, error) {
	k, err := scanAPIKey(l.db.QueryRowContext(ctx, l.q(`SELECT `+apiKeyCols+` FROM api_keys WHERE id = ?`), id))
	return k, notFound(err, "api key "+id)
}

// APIKeys lists at most limit keys, oldest first.
func (l *Log) APIKeys(ctx context.Context, limit int) ([]APIKey, error) {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT `+apiKeyCols+` FROM api_keys ORDER BY seq LIMIT ?`), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// applyAPIKey projects the API key events into api_keys.
func (l *Log) applyAPIKey(ctx context.Context, tx *sql.Tx, e Event) error {
	exec := func(query string, args ...any) error {
		if _, err := tx.ExecContext(ctx, l.q(query), args...); err != nil {
			return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
		}
		return nil
	}
	switch e.Type {
	case TypeAPIKeyCreated:
		var p APIKeyCreated
		if err := e.Decode(&p); err != nil {
			return err
		}
		exp, err := time.Parse(time.RFC3339Nano, p.Expires)
		if err != nil {
			return fmt.Errorf("event %d (%s): expires: %w", e.Seq, e.Type, err)
		}
		if again, err := l.found(ctx, tx, `SELECT 1 FROM api_keys WHERE id = ?`, p.ID); err != nil {
			return err
		} else if again {
			return fmt.Errorf("%w: API key %s exists", ErrConflict, p.ID)
		}
		repos, _ := json.Marshal(p.Repositories) // strings: never fails, always the same bytes
		actions, _ := json.Marshal(p.Actions)
		return exec(`INSERT INTO api_keys (id, name, hash, repositories, actions, expires_ns, created_ns, created_by, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.Name, p.Hash, string(repos), string(actions), exp.UnixNano(), e.Time.UnixNano(), e.Actor.Name, e.Seq)
	case TypeAPIKeyRevoked:
		var p APIKeyRevoked
		if err := e.Decode(&p); err != nil {
			return err
		}
		// The first revocation counts; a later one changes nothing.
		return exec(`UPDATE api_keys SET revoked_ns = ?, revoked_by = ?, revoked_seq = ? WHERE id = ? AND revoked_seq = 0`,
			e.Time.UnixNano(), e.Actor.Name, e.Seq, p.ID)
	}
	return fmt.Errorf("apply event %d: unknown type %q", e.Seq, e.Type)
}

// guardAPIKey keeps, for new appends: a live key's name is unique (so
// that "key:<name>" in the audit trail names one key at any time), and
// only a live key is revoked.
func (l *Log) guardAPIKey(ctx context.Context, tx *sql.Tx, e Event) error {
	switch e.Type {
	case TypeAPIKeyCreated:
		var p APIKeyCreated
		if err := e.Decode(&p); err != nil {
			return err
		}
		taken, err := l.found(ctx, tx, `SELECT 1 FROM api_keys WHERE name = ? AND revoked_seq = 0`, p.Name)
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%w: a live API key is named %s; revoke it or choose another name", ErrConflict, p.Name)
		}
	case TypeAPIKeyRevoked:
		var p APIKeyRevoked
		if err := e.Decode(&p); err != nil {
			return err
		}
		var seq int64
		err := tx.QueryRowContext(ctx, l.q(`SELECT revoked_seq FROM api_keys WHERE id = ?`), p.ID).Scan(&seq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: no API key %s", ErrConflict, p.ID)
		case err != nil:
			return fmt.Errorf("check API key %s: %w", p.ID, err)
		case seq != 0:
			return fmt.Errorf("%w: API key %s is already revoked", ErrConflict, p.ID)
		}
	}
	return nil
}
