-- Every text column compares bytes (COLLATE "C"), as SQLite's do.
--
-- Until now the schema mixed the two: tags.repo, repositories.name,
-- contents.sha256 and a few more were "C", the rest took the database's
-- default collation. A join between the two kinds compares in "C" (a
-- column's own collation beats the database default), and an index built
-- in the default collation cannot answer a comparison made in another: the tag
-- lookup every pull by tag makes (tags JOIN manifests ON m.repo = t.repo)
-- read the whole manifests table instead of one row. One collation for
-- every column makes every join's keys indexable, and ORDER BY is byte
-- order on both backends whatever the database's locale.
--
-- Invariant (TestEveryTextColumnIsC): no text column of the schema has a
-- collation other than "C".
--
-- Cost: the type is unchanged, so no table is rewritten, but every index
-- on these columns is rebuilt, under an exclusive lock on its table; on a
-- large database this migration takes as long as building those indexes,
-- and replicas still running wait for it.
ALTER TABLE api_keys
    ALTER COLUMN name TYPE TEXT COLLATE "C",
    ALTER COLUMN hash TYPE TEXT COLLATE "C",
    ALTER COLUMN repositories TYPE TEXT COLLATE "C",
    ALTER COLUMN actions TYPE TEXT COLLATE "C",
    ALTER COLUMN created_by TYPE TEXT COLLATE "C",
    ALTER COLUMN revoked_by TYPE TEXT COLLATE "C";
ALTER TABLE blob_digests
    ALTER COLUMN digest TYPE TEXT COLLATE "C",
    ALTER COLUMN sha256 TYPE TEXT COLLATE "C";
ALTER TABLE blob_links
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN sha256 TYPE TEXT COLLATE "C";
ALTER TABLE blob_reads
    ALTER COLUMN sha256 TYPE TEXT COLLATE "C";
ALTER TABLE blob_sweeps
    ALTER COLUMN sha256 TYPE TEXT COLLATE "C";
ALTER TABLE blob_tombstones
    ALTER COLUMN state TYPE TEXT COLLATE "C";
ALTER TABLE blobs
    ALTER COLUMN sha256 TYPE TEXT COLLATE "C",
    ALTER COLUMN blake3 TYPE TEXT COLLATE "C",
    ALTER COLUMN tier TYPE TEXT COLLATE "C";
ALTER TABLE ended_uploads
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE events
    ALTER COLUMN type TYPE TEXT COLLATE "C",
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN actor TYPE TEXT COLLATE "C";
ALTER TABLE manifest_annotations
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN digest TYPE TEXT COLLATE "C",
    ALTER COLUMN key TYPE TEXT COLLATE "C",
    ALTER COLUMN value TYPE TEXT COLLATE "C";
ALTER TABLE manifest_blobs
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN digest TYPE TEXT COLLATE "C",
    ALTER COLUMN sha256 TYPE TEXT COLLATE "C";
ALTER TABLE manifest_children
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN digest TYPE TEXT COLLATE "C",
    ALTER COLUMN child TYPE TEXT COLLATE "C";
ALTER TABLE manifests
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN digest TYPE TEXT COLLATE "C",
    ALTER COLUMN sha256 TYPE TEXT COLLATE "C",
    ALTER COLUMN media_type TYPE TEXT COLLATE "C",
    ALTER COLUMN artifact_type TYPE TEXT COLLATE "C",
    ALTER COLUMN subject TYPE TEXT COLLATE "C",
    ALTER COLUMN annotations TYPE TEXT COLLATE "C";
ALTER TABLE referrers
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN subject TYPE TEXT COLLATE "C",
    ALTER COLUMN digest TYPE TEXT COLLATE "C";
ALTER TABLE shared_keys
    ALTER COLUMN purpose TYPE TEXT COLLATE "C";
ALTER TABLE tags
    ALTER COLUMN digest TYPE TEXT COLLATE "C";
ALTER TABLE upload_counts
    ALTER COLUMN repo TYPE TEXT COLLATE "C";
ALTER TABLE upload_leases
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN holder TYPE TEXT COLLATE "C";
ALTER TABLE uploads
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN repo TYPE TEXT COLLATE "C";
ALTER TABLE versions
    ALTER COLUMN repo TYPE TEXT COLLATE "C",
    ALTER COLUMN native_sha256 TYPE TEXT COLLATE "C",
    ALTER COLUMN native_blake3 TYPE TEXT COLLATE "C",
    ALTER COLUMN oci_digest TYPE TEXT COLLATE "C";
ALTER TABLE schema_migrations
    ALTER COLUMN name TYPE TEXT COLLATE "C";
