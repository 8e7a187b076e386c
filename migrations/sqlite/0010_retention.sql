-- Retention (eventlog/retention.go). Views, rebuilt by replay.

-- Policies by name; policy is the canonical JSON of retention.Policy.
CREATE TABLE retention_policies (
    name   TEXT    PRIMARY KEY,
    policy TEXT    NOT NULL,
    seq    INTEGER NOT NULL
);

-- When each manifest was last pulled, from manifest.pulled events (each
-- server records the pulls it served in batches).
CREATE TABLE manifest_pulls (
    repo    TEXT    NOT NULL,
    digest  TEXT    NOT NULL,
    last_ns INTEGER NOT NULL,
    PRIMARY KEY (repo, digest)
);

-- What retention deleted and may still be restored: kind is 'tag',
-- 'manifest' or 'version'; name the tag, digest or version; digest the
-- manifest (a tag's target, a version's derived manifest); sha256 the
-- bytes a restore needs (a manifest's, a version's native manifest); seq
-- the deleting event; put_seq the event that had created it (manifest.put,
-- version.published: its payload a restore appends again; a tag's tag.set:
-- its time a restored tag keeps; for an item itself restored before, the
-- original, through since_seq below). The garbage
-- collector keeps every blob these rows and trash_blobs name.
CREATE TABLE retention_trash (
    repo    TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    digest  TEXT    NOT NULL,
    sha256  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    put_seq INTEGER NOT NULL,
    policy  TEXT    NOT NULL,
    PRIMARY KEY (repo, kind, name)
);
CREATE INDEX retention_trash_by_blob ON retention_trash (sha256);

-- The blobs a deleted manifest needed (its manifest_blobs rows, kept).
CREATE TABLE trash_blobs (
    repo   TEXT NOT NULL,
    digest TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (repo, digest, sha256)
);
CREATE INDEX trash_blobs_by_blob ON trash_blobs (repo, sha256);

-- A restored tag or version keeps the time it was first set: since_seq
-- is the event that set it before retention deleted it (0: seq's).
ALTER TABLE tags ADD COLUMN since_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN since_seq INTEGER NOT NULL DEFAULT 0;
