-- The follow lease (eventlog/followlease.go): while one replica holds it,
-- that replica answers lookups from memory without asking the database
-- first, and every other process that appends takes it away, and waits out
-- its term, before its append can commit. One row, always present.
-- Logged on purpose: were it emptied by a crash, an appender would see no
-- holder while the holder still trusted its memory.
--   holder     the process holding the lease; '' when none
--   revoking   an appender has taken it away: the holder's trust is ending,
--              and it is cleared once its term has passed
--   term_ns    the holder's term: how long an appender that takes the lease
--              away waits before it clears the row
--   revoked_ns when it was last taken away (wall clock; only for when a
--              replica may take it again, never for whether an append may
--              commit)
CREATE TABLE follow_lease (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    holder     TEXT     COLLATE "C" NOT NULL,
    revoking   BOOLEAN  NOT NULL,
    term_ns    BIGINT   NOT NULL,
    revoked_ns BIGINT   NOT NULL
);
INSERT INTO follow_lease (id, holder, revoking, term_ns, revoked_ns) VALUES (1, '', false, 0, 0);

-- The replicas that follow the log and are alive (each writes its row every
-- few seconds): a replica takes the lease only when no other is here.
-- Unlogged: after a crash every replica writes its row again within
-- seconds; until then a replica may take the lease while another runs,
-- which costs the other one term's wait on its next append, no more.
CREATE UNLOGGED TABLE log_replicas (
    id      TEXT   COLLATE "C" PRIMARY KEY,
    seen_ns BIGINT NOT NULL
);
