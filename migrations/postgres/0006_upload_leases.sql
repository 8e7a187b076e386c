-- Who is working on an upload session right now (PostgreSQL only: with
-- SQLite one process owns the data, and leases live in its memory):
-- operational metadata
-- (not a view, not replayed). A lease is held by one request at a time
-- and expires on its own, so a request that dies, or a client that goes
-- quiet, never keeps a session locked, and no database connection is held
-- while a client's bytes are awaited. A lost table costs nothing: leases
-- are short-lived.
CREATE TABLE upload_leases (
    id         TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_ns BIGINT NOT NULL
);
