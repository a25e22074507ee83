-- Rooms and the codes of deleted ones (the registry), the message log, and
-- meta, which holds the log's epoch. Room codes are canonical upper case
-- and compared exactly (BINARY collation). Times are DATETIME so that the
-- driver reads them back as times. The store writes them all in UTC, so
-- their text sorts in time order.
CREATE TABLE rooms (
    code          TEXT     PRIMARY KEY NOT NULL,
    name          TEXT     NOT NULL,
    password_hash TEXT     NOT NULL,
    owner_id      TEXT     NOT NULL,
    created_at    DATETIME NOT NULL,
    idle_since    DATETIME NOT NULL
);
CREATE INDEX rooms_owner_id_idx ON rooms (owner_id);
CREATE INDEX rooms_idle_since_idx ON rooms (idle_since);

CREATE TABLE tombstones (
    code       TEXT     PRIMARY KEY NOT NULL,
    deleted_at DATETIME NOT NULL
);

-- WITHOUT ROWID stores a room's messages together in (room, seq) order,
-- which is how they are appended, read and trimmed. sent_us is microseconds
-- since 1970 (UTC): an integer binds and compares for less than a text time
-- on the hot path. Every message is in the log's epoch (meta), not stored
-- per row.
CREATE TABLE messages (
    room      TEXT     NOT NULL,
    seq       INTEGER  NOT NULL,
    sent_us   INTEGER  NOT NULL,
    sender_id TEXT     NOT NULL,
    sender    TEXT     NOT NULL,
    body      TEXT     NOT NULL,
    client_id TEXT     NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
