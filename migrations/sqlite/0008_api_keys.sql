-- API keys for robots (a view, rebuilt by replay from apikey.created and
-- apikey.revoked). Never the key's secret: hash is "sha256:<hex>" of it.
-- repositories and actions are JSON arrays of strings; created_by and
-- revoked_by are the names of the events' actors. revoked_seq is 0 while
-- the key is live.
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    hash         TEXT    NOT NULL,
    repositories TEXT    NOT NULL,
    actions      TEXT    NOT NULL,
    expires_ns   INTEGER NOT NULL,
    created_ns   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    revoked_ns   INTEGER NOT NULL DEFAULT 0,
    revoked_by   TEXT    NOT NULL DEFAULT '',
    revoked_seq  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_name ON api_keys (name, revoked_seq);
