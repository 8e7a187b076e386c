-- Event payloads and kept content are compressed with lz4 instead of
-- PostgreSQL's default pglz. Payloads over about 2 KiB (a small blob's
-- bytes travel in its blob.committed, and the contents view keeps them
-- again, ADR 0016) are compressed as they are stored; pglz spent about 12
-- µs on each 4 KiB of incompressible bytes, a fifth of what PostgreSQL
-- spent executing a small push's statements. lz4 gives up on such bytes
-- at once, and still compresses JSON (manifests, configs) about as well.
--
-- Only values stored from now on are affected; older ones stay as they
-- are and read as before. A server built without lz4 (or older than
-- PostgreSQL 14) keeps pglz: the change is skipped with a notice.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE contents ALTER COLUMN bytes SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available here: event payloads and contents stay compressed with pglz';
END
$$;
