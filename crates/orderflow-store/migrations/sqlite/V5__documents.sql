-- Documents the fulfilment pipeline produces for an order (packing slip, shipping label), one
-- per kind: a retried step rewrites its document in place. Timestamps are Unix microseconds
-- (UTC).

-- A rowid table, not WITHOUT ROWID: bodies run to tens of kilobytes, and SQLite stores large
-- rows of a WITHOUT ROWID table in its index b-tree, which then fans out poorly.
CREATE TABLE documents (
    order_id     TEXT NOT NULL REFERENCES orders (order_id),
    kind         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (order_id, kind)
) STRICT;
