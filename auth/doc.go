// Package auth decides who a request comes from and what it may do: users
// from an htpasswd file, API keys for robots (apikeys.go), bearer tokens
// from the built-in token service (the Docker registry token protocol),
// verified client certificates, and one policy of principals and groups,
// repository globs and actions.
//
// Invariants:
//
//   - Deny by default: a principal may do only what a policy rule grants
//     it; anonymous callers are a principal like any other and get nothing
//     unless a rule names them.
//   - One decision: Policy.Allowed is the only place a (principal,
//     repository, action) is decided; a bearer token's access claims can
//     only narrow it (Token access ∩ policy now), never widen it. An API
//     key's grants take the place of the policy's rules for its principal
//     (anonymous's still apply), and are found live on every use.
//   - Repository names are decided as the registry serves them: callers
//     validate a name (no dot segments, empty segments or upper case)
//     before asking, so no spelling of a path reaches a different decision
//     than the repository it serves.
//   - Secrets never leave: passwords, tokens and private keys are not
//     logged, not put in errors, and not shown in -h output.
//
// The package imports nothing of the project; the registry consumes it.
package auth
