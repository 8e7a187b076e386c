-- Retrieval tiers. blobs.tier is set by blob.tiered events ("hot": the
-- primary store, "cold": the object store); tier_seq is that event's
-- sequence number (0 while a blob is where it was committed).
ALTER TABLE blobs ADD COLUMN tier_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX blobs_by_tier ON blobs (tier, size);

-- When each blob was last read: operational metadata for the tiering
-- policy, written in batches by the servers. Not a view: replay leaves it
-- alone, and losing it only makes blobs look unread since their commit.
CREATE TABLE blob_reads (
    sha256  TEXT    PRIMARY KEY,
    last_ns BIGINT NOT NULL
);
