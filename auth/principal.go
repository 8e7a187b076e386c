package auth

// Actions a policy grants on repositories.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAdmin  = "admin"
)

// Ways a principal authenticated.
const (
	MethodAnonymous = "anonymous"
	MethodPassword  = "password" // htpasswd user, Basic credentials
	MethodToken     = "token"    // a bearer token of the built-in token service
	MethodCert      = "cert"     // a verified client certificate
)

// Anonymous is the principal of a request without credentials.
const Anonymous = "anonymous"

// Principal is who a request comes from.
type Principal struct {
	// Name is the user name, or Anonymous.
	Name string
	// Method says how it authenticated (Method*).
	Method string
	// Via, for a bearer token, is how its subject authenticated at the
	// token service (MethodAnonymous, MethodPassword, MethodCert).
	Via string
	// Also are other identities the principal is known by in a policy
	// (a client certificate's "cn:…", "dns:…" names).
	Also []string
	// Access, for a bearer token, is what the token grants; nil for other
	// methods. It only narrows what the policy allows.
	Access []Access
	// KeyID, for an API key or a token issued to one, is the key's id.
	KeyID string
	// key is what an API key grants (set once the key is found live); the
	// policy's rules other than anonymous's do not apply to a key.
	key *keyGrant
}

// Authenticated reports whether the principal proved an identity (a token
// handed to an anonymous caller did not).
func (p Principal) Authenticated() bool {
	if p.Method == MethodToken {
		return p.Via != MethodAnonymous && p.Via != ""
	}
	return p.Method != MethodAnonymous && p.Method != ""
}

// Access is one grant of a token: actions on a named resource, as the
// Docker token protocol writes it ("repository", "app/web", ["pull"]).
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// grants reports whether the token access list allows action on repo.
func grants(access []Access, repo, action string) bool {
	for _, a := range access {
		if a.Type != "repository" || a.Name != repo {
			continue
		}
		for _, x := range a.Actions {
			if x == action || x == "*" {
				return true
			}
		}
	}
	return false
}
