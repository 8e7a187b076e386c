-- The event log: the source of truth. Rows are only ever inserted.
-- seq is gap-free and starts at 1; hash = BLAKE3(prev_hash, seq, time_ns,
-- type, repo, payload) as documented in eventlog/event.go.
CREATE TABLE events (
    seq       INTEGER PRIMARY KEY,
    time_ns   INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    repo      TEXT    NOT NULL,
    payload   BLOB    NOT NULL,
    prev_hash BLOB    NOT NULL,
    hash      BLOB    NOT NULL
);

-- Everything below is a view: derived from events, rebuilt by replay.

-- Committed content, keyed by its SHA-256 storage key.
CREATE TABLE blobs (
    sha256 TEXT    PRIMARY KEY,
    blake3 TEXT    NOT NULL,
    size   INTEGER NOT NULL,
    tier   TEXT    NOT NULL,
    seq    INTEGER NOT NULL
);

-- Every digest a blob answers to (sha256, blake3, sha512) -> storage key.
CREATE TABLE blob_digests (
    digest TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL
);

CREATE TABLE repositories (
    name TEXT    PRIMARY KEY,
    seq  INTEGER NOT NULL
);

-- Which repositories may serve which blobs.
CREATE TABLE blob_links (
    repo   TEXT    NOT NULL,
    sha256 TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (repo, sha256)
);

-- Manifests by the digest they were pushed under; sha256 is the storage
-- key of their bytes.
CREATE TABLE manifests (
    repo          TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    artifact_type TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    subject       TEXT    NOT NULL,
    annotations   TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX manifests_by_key ON manifests (repo, sha256);

CREATE TABLE tags (
    repo   TEXT    NOT NULL,
    tag    TEXT    NOT NULL,
    digest TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (repo, tag)
);
CREATE INDEX tags_by_digest ON tags (repo, digest);

CREATE TABLE referrers (
    repo    TEXT NOT NULL,
    subject TEXT NOT NULL,
    digest  TEXT NOT NULL,
    PRIMARY KEY (repo, subject, digest)
);

-- Open upload sessions; their bytes live in the blob store's staging area.
CREATE TABLE uploads (
    id         TEXT    PRIMARY KEY,
    repo       TEXT    NOT NULL,
    started_ns INTEGER NOT NULL,
    seq        INTEGER NOT NULL
);
