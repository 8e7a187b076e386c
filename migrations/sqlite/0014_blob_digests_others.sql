-- blob_digests maps a blob's other digests (blake3, sha512) to its storage
-- key, its sha256 digest, and no longer holds a row mapping that key to
-- itself: a sha256 digest is looked up in blobs directly (eventlog keyOf).
-- Its key is random, so that row was an insert into a random page of the
-- index for every blob committed, one of the pages every small push wrote
-- to the log's write-ahead log.
--
-- Invariant: every row's digest is not a sha256 digest, and names a
-- different algorithm's digest of the blob stored under sha256.
DELETE FROM blob_digests WHERE digest = sha256;
