-- Upload leases are taken and given back around every PATCH and PUT of a
-- session, each in a transaction of its own; with a logged table each of
-- those commits waits for a WAL flush (an fsync), two per request outside
-- the event log's group commit. Leases are short-lived and worth nothing
-- after a crash (0006), which is exactly what an unlogged table keeps:
-- PostgreSQL empties it after a crash and does not replicate it, and a
-- lease's absence only means the session is free.
ALTER TABLE upload_leases SET UNLOGGED;
