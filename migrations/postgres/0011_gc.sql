-- Garbage collection (eventlog/gc.go). blob_tombstones is a view, rebuilt
-- by replay: one row per blob a collector condemned (gc.condemned, state
-- 'condemned') and, once its bytes are deleted, swept (gc.swept, state
-- 'swept'); seq is that event's sequence number. An append that records
-- bytes for a blob whose tombstone is newer than what its writer had read
-- of the log is refused, so no event ever names bytes a sweep deleted.
CREATE TABLE blob_tombstones (
    sha256 TEXT   COLLATE "C" PRIMARY KEY,
    state  TEXT   NOT NULL,
    seq    BIGINT NOT NULL
);

-- The collector asks "does anything in any repository still use this
-- blob?"; these answer it without a scan.
CREATE INDEX blob_links_by_blob ON blob_links (sha256);
CREATE INDEX manifests_by_blob ON manifests (sha256);
CREATE INDEX versions_by_native ON versions (native_sha256);

-- 1 when a manifest's put did not record everything it references
-- (ManifestPut.Complete unset: sparse pushes, and every put recorded
-- before the field existed): the collector reads those manifests.
ALTER TABLE manifests ADD COLUMN partial SMALLINT NOT NULL DEFAULT 1;

-- The last event that committed a blob or stopped a use of it (an unlink,
-- a deletion of the manifest or version it held): a collection sweeps a
-- blob only once this is older than its grace and its mark (0: before
-- this migration, as old as the log).
ALTER TABLE blobs ADD COLUMN used_seq BIGINT NOT NULL DEFAULT 0;
