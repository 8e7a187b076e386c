-- Upload sessions that ended while their id could still be presented as
-- a session never recorded (ADR 0018: the registry records a session with
-- its first bytes, and an id it issued is valid until it expires). A view:
-- an upload.finished or upload.cancelled whose idExpires lies after its
-- own time adds the id; every such event drops the rows whose id has
-- expired by then, so replay rebuilds the same rows. Events recorded
-- before the field existed carry none and add nothing here.
-- Invariant: a row for each session whose end event set idExpires, at
-- least until the first such event at or after that time.
-- WITHOUT ROWID: the key is the row, stored once (the view turns over
-- with every push).
CREATE TABLE ended_uploads (
    id            TEXT   PRIMARY KEY,
    id_expires_ns BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ended_uploads_by_expiry ON ended_uploads (id_expires_ns);

-- Secrets every process sharing the database uses alike (the key that
-- signs upload session ids). Not a view and not in the log: the event
-- stream is public to readers, and replay leaves this table alone. Made
-- on first use by whichever process gets there first.
CREATE TABLE shared_keys (
    purpose TEXT  PRIMARY KEY,
    secret  BLOB NOT NULL
);
