-- The chat service keeps rooms and history in a database of its own; it
-- never reads auth's tables. Run by the postgres image on a fresh volume.
CREATE DATABASE chat OWNER grpcchatter;
