-- Which tier moves have had their source copy swept: operational metadata
-- (not a view, not replayed), so that sweeps look only at moves not yet
-- swept. Losing it costs one re-check of each moved blob.
CREATE TABLE blob_sweeps (
    sha256   TEXT    PRIMARY KEY,
    tier_seq INTEGER NOT NULL
);
