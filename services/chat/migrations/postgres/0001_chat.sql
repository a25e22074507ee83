-- Rooms and the codes of deleted ones (the registry), the message log, and
-- meta, which holds the log's epoch. Room codes are canonical upper case
-- and compared exactly.
CREATE TABLE rooms (
    code          TEXT        PRIMARY KEY,
    name          TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    owner_id      TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    idle_since    TIMESTAMPTZ NOT NULL
);
CREATE INDEX rooms_owner_id_idx ON rooms (owner_id);
CREATE INDEX rooms_idle_since_idx ON rooms (idle_since);

CREATE TABLE tombstones (
    code       TEXT        PRIMARY KEY,
    deleted_at TIMESTAMPTZ NOT NULL
);

-- No foreign key to rooms: the engine drops a room's messages itself
-- (Log.Drop), and an append must not lock the room's row. sent_us is
-- microseconds since 1970 (UTC), as on SQLite, where an integer is the
-- cheap time to bind. Every message is in the log's epoch (meta).
CREATE TABLE messages (
    room      TEXT        NOT NULL,
    seq       BIGINT      NOT NULL,
    sent_us   BIGINT      NOT NULL,
    sender_id TEXT        NOT NULL,
    sender    TEXT        NOT NULL,
    body      TEXT        NOT NULL,
    client_id TEXT        NOT NULL,
    PRIMARY KEY (room, seq)
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
