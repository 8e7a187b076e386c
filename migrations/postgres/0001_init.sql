-- PostgreSQL schema; mirrors sqlite/0001_init.sql. Names and tags use the
-- "C" collation so that pagination is in byte order, as on SQLite.

-- The event log: the source of truth. Rows are only ever inserted.
-- seq is gap-free and starts at 1; hash = BLAKE3(prev_hash, seq, time_ns,
-- type, repo, payload) as documented in eventlog/event.go.
CREATE TABLE events (
    seq       BIGINT  PRIMARY KEY,
    time_ns   BIGINT NOT NULL,
    type      TEXT    NOT NULL,
    repo      TEXT    NOT NULL,
    payload   BYTEA   NOT NULL,
    prev_hash BYTEA   NOT NULL,
    hash      BYTEA   NOT NULL
);

-- Everything below is a view: derived from events, rebuilt by replay.

-- Committed content, keyed by its SHA-256 storage key.
CREATE TABLE blobs (
    sha256 TEXT    PRIMARY KEY,
    blake3 TEXT    NOT NULL,
    size   BIGINT NOT NULL,
    tier   TEXT    NOT NULL,
    seq    BIGINT NOT NULL
);

-- Every digest a blob answers to (sha256, blake3, sha512) -> storage key.
CREATE TABLE blob_digests (
    digest TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL
);

CREATE TABLE repositories (
    name TEXT COLLATE "C" PRIMARY KEY,
    seq  BIGINT NOT NULL
);

-- Which repositories may serve which blobs.
CREATE TABLE blob_links (
    repo   TEXT    NOT NULL,
    sha256 TEXT    NOT NULL,
    seq    BIGINT NOT NULL,
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
    size          BIGINT NOT NULL,
    subject       TEXT    NOT NULL,
    annotations   TEXT    NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX manifests_by_key ON manifests (repo, sha256);

CREATE TABLE tags (
    repo   TEXT    COLLATE "C" NOT NULL,
    tag    TEXT    COLLATE "C" NOT NULL,
    digest TEXT    NOT NULL,
    seq    BIGINT NOT NULL,
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
    started_ns BIGINT NOT NULL,
    seq        BIGINT NOT NULL
);
