// Package retention decides what retention policies delete: old tags,
// manifests nothing reaches, native versions. It is pure: it parses and
// checks policies, and given a Snapshot of repositories returns the
// deletions, each with the policy, rule and reason behind it. Reading the
// state, applying deletions and collecting blobs are the caller's.
//
// A policy (YAML or JSON, same names; Parse):
//
//	name: default             # [a-z0-9][a-z0-9._-]{0,63}, unique
//	repositories: ["team/**"] # globs, as in access policies (auth.Glob)
//	tags:                     # /v2/ tags
//	  keepLast: 10            # the 10 most recent ...
//	  by: push                # ... by push (default) or pull time
//	  keepPulledWithin: 720h  # pulled within 720h
//	  keepYoungerThan: 7d     # pushed within 7 days
//	  keep: ["v*", "latest"]  # path.Match patterns over the tag name
//	untagged:
//	  deleteAfter: 24h        # manifests nothing reaches, once this old
//	versions:                 # native versions: the rules of tags
//	  keepLast: 5
//	immutableTags: ["v*"]     # never moved or deleted but by an admin
//
// Durations are Go durations or whole days ("90d"), kept as written. A
// tags or versions block needs at least one rule; a policy needs at least
// one block or immutableTags. Unknown fields are errors.
//
// Invariants of Plan:
//
//   - Nothing outside the policies' reach goes: a policy applies to a
//     repository when one of its globs matches it; a repository no policy
//     applies to keeps everything, and a kind (tags, versions, untagged)
//     is judged only by the applicable policies with a block for it.
//   - Keeps are a union, the safe direction: a tag or version is kept when
//     any rule of any taking-part policy keeps it. Otherwise it goes,
//     attributed to the first taking-part policy by name, with a reason
//     naming each of that policy's rules it failed.
//   - Nothing held goes: a manifest a surviving tag, version or index
//     reaches stands, so no plan leaves a dangling tag or a broken index.
//   - Immutable tags (any applicable policy's immutableTags) never go, nor
//     native versions whose names they match (a version's name is its tag).
//   - It depends only on its inputs: Now is the snapshot's, so a snapshot
//     of a past moment simulates the policies then.
//   - Its output is deterministic: the same inputs, in any order, give the
//     same deletions in the same order.
//   - A repository whose manifests form a cycle (through children and
//     subjects), which digests make impossible, loses nothing: such a
//     snapshot is not one of a repository.
//
// The rules, in detail:
//
//   - A tag's pull time is the later of its own and its manifest's last
//     pull; a version's likewise with its derived manifest. keepLast ranks
//     most recent first, by push time or by pull time (the never pulled by
//     push time), ties by name. keepPulledWithin never keeps the never
//     pulled. Ages are Now minus the time, kept when at most the duration.
//   - A native version's tag (Tag.Version) is not a /v2/ tag: the tags
//     rules ignore it; it stands or goes with its version (same name).
//   - A manifest a deleted tag held, which nothing else holds, goes with it
//     (rule "tags", "its last tag ... was removed"), and so, transitively,
//     do the children of an index that goes ("its index ... was removed"):
//     deleting an image frees its space. A deleted version's derived
//     manifest goes with the version's deletion and is not listed itself
//     (unless something else holds it: then it stands, and the caller
//     must keep it).
//   - untagged.deleteAfter: a manifest nothing held before the plan (no
//     tag, version, standing index or subject), pushed longer ago than
//     the duration of every taking-part policy, goes (rule "untagged").
//     Children of an index that stands, stand: reachability is transitive.
//   - A referrer (a manifest with a subject: signature, SBOM, attestation)
//     lives and dies with its subject: while the subject stands, no rule
//     deletes it on its own; when the subject goes, by any rule, the
//     referrer goes too (rule "subject", "its subject ... was removed"),
//     transitively. A referrer whose subject is not in the repository is
//     untagged garbage: it goes under the untagged rules, once older than
//     deleteAfter (OCI lets a referrer be pushed before its subject), with
//     rule "subject". A referrer that a tag, version or index holds stands
//     like any held manifest, and a version is judged only by the versions
//     rules, even when its derived manifest's subject goes.
//   - Each Deletion carries the snapshot's Size of the manifest or version
//     (0 for a tag); what bytes that frees across shared blobs is the
//     caller's to compute.
package retention
