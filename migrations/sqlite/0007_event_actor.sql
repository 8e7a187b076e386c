-- Who made each change (principal, how it authenticated, client address),
-- inside the hash chain (eventlog/actor.go). Events written before carry
-- none, and keep their original chain input.
ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
