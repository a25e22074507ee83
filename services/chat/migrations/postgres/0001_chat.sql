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

-- The message log, in chunks: one row per room and append holds the
-- consecutive messages first_seq..last_seq, encoded together in data (see
-- sqlstore/chunk.go), so that a group commit of many messages writes a few
-- rows rather than one per message: a row costs the same to insert whether
-- it holds one message or hundreds. Every message is in the log's epoch
-- (meta), which is not repeated per row. No foreign key to rooms: the
-- engine drops a room's messages itself (Log.Drop).
CREATE TABLE message_chunks (
    room      TEXT    NOT NULL,
    first_seq BIGINT  NOT NULL,
    last_seq  BIGINT  NOT NULL,
    data      BYTEA   NOT NULL,
    PRIMARY KEY (room, first_seq)
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
