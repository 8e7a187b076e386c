package eventlog

import (
	"context"
	"encoding/json"
	"fmt"
)

// Actor is who made a change: the principal, how it authenticated, and the
// client's address. It is part of the event's record and of its chain
// hash (chainHash, form v2), so the log is an audit trail whose entries
// cannot be re-attributed without breaking the chain.
//
// Events appended before actors existed have none; their hash keeps the v1
// input, so old logs verify and replay unchanged.
type Actor struct {
	Name   string `json:"name"`             // the principal ("anonymous" when none)
	Method string `json:"method,omitempty"` // password, token, cert, anonymous, system
	Addr   string `json:"addr,omitempty"`   // the client's IP address
}

// IsZero reports whether no actor is recorded.
func (a Actor) IsZero() bool { return a == Actor{} }

// encode is the actor's stored and hashed form: JSON of the struct, whose
// field order is fixed, so equal actors have equal bytes; "" for none.
func (a Actor) encode() string {
	if a.IsZero() {
		return ""
	}
	b, _ := json.Marshal(a) // three strings: never fails
	return string(b)
}

func decodeActor(s string) (Actor, error) {
	var a Actor
	if s == "" {
		return a, nil
	}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return a, fmt.Errorf("event actor %q: %w", s, err)
	}
	return a, nil
}

type actorKey struct{}

// WithActor returns ctx carrying the actor that Append records on events
// that name none themselves.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries (zero when none).
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}
