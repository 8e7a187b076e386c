package eventlog

// knownRepos remembers the repositories whose rows in the repositories
// view this process has seen committed, so that apply skips their INSERT
// (… ON CONFLICT DO NOTHING, which would change nothing): one statement
// of every blob link, manifest and tag, on PostgreSQL a part of the
// committer's serial chain.
//
// Why skipping is exact: no event's projection deletes a row of
// repositories, so a row once committed stays, whichever process appends
// next. Only two things take rows away, and both clear the set: Replay
// (views rebuilt; it clears the set under commitMu before it starts) and
// a database put back to an earlier state under a live log (rewound, seen
// as a head below the last one this process committed).
//
// Invariants (all under commitMu): a name enters known only after the
// group that inserted it committed, and not when its append was rolled
// back to its savepoint (record truncates pending); known holds at most
// maxKnownRepos names, past which the INSERT is simply sent.
type knownRepos struct {
	known   map[string]struct{}
	pending []string // inserted by the group in progress
	head    int64    // the last sequence number this process committed
}

const maxKnownRepos = 1 << 16

// committed promotes the group's pending names; head is its last event.
func (k *knownRepos) committed(head int64) {
	k.head = max(k.head, head)
	for _, name := range k.pending {
		if len(k.known) >= maxKnownRepos {
			break
		}
		if k.known == nil {
			k.known = map[string]struct{}{}
		}
		k.known[name] = struct{}{}
	}
	k.pending = k.pending[:0]
}

// rewound is told the head a group reads under the write lock: one below
// what this process committed means the database went back.
func (k *knownRepos) rewound(head int64) {
	if head < k.head {
		k.reset()
		k.head = head
	}
}

// reset forgets every name (Replay).
func (k *knownRepos) reset() {
	clear(k.known)
	k.pending = k.pending[:0]
}
