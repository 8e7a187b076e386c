-- Open upload sessions counted per repository, kept by the same events as
-- uploads, so that the caps every POST checks cost two lookups by key
-- instead of a scan of every open session (which a client could make
-- long by leaving sessions open). The row with repo '' (no repository has
-- that name) counts them all. A view like any other: replay rebuilds it.
-- Invariant: a row for each repository with open sessions, and the ''
-- row while any is open, each with its number of rows in uploads; no row
-- counts zero.
CREATE TABLE upload_counts (
    repo TEXT   PRIMARY KEY,
    n    BIGINT NOT NULL
);
INSERT INTO upload_counts (repo, n) SELECT repo, COUNT(*) FROM uploads GROUP BY repo;
INSERT INTO upload_counts (repo, n) SELECT '', COUNT(*) FROM uploads HAVING COUNT(*) > 0;
