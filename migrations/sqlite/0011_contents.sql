-- Small content kept in the log (ADR 0016): the bytes a blob.committed
-- event carried, by storage key. A view like any other: replay rebuilds
-- it from the events, and a gc.condemned deletes its rows. A blob whose
-- row in blobs has tier 'inline' is read from here; a row here for a blob
-- of another tier is a second copy (two pushes raced), dropped with it.
CREATE TABLE contents (
    sha256 TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
);
