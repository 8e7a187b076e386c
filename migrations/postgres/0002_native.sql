-- Native artifact versions (views, rebuilt by replay).

-- A version published through /api/v1/: its native manifest (canonical
-- CBOR, stored as a blob) and the OCI manifest derived from it.
CREATE TABLE versions (
    repo          TEXT    NOT NULL,
    version       TEXT    COLLATE "C" NOT NULL,
    native_sha256 TEXT    NOT NULL,
    native_blake3 TEXT    NOT NULL,
    native_size   BIGINT NOT NULL,
    oci_digest    TEXT    NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (repo, version)
);

-- Every manifest's annotations, one row each, for search.
CREATE TABLE manifest_annotations (
    repo   TEXT NOT NULL,
    digest TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (repo, digest, key)
);
CREATE INDEX manifest_annotations_by_key ON manifest_annotations (key, value);
