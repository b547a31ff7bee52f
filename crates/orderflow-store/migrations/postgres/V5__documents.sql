-- Documents the fulfilment pipeline produces for an order (packing slip, shipping label), one
-- per kind: a retried step rewrites its document in place. Kinds sort bytewise, as on SQLite.
CREATE TABLE documents (
    order_id     TEXT NOT NULL REFERENCES orders (order_id),
    kind         TEXT COLLATE "C" NOT NULL,
    content_type TEXT NOT NULL,
    body         BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, kind)
);

-- PDFs are compressed already: storing bodies out of line but uncompressed spares TOAST a futile
-- compression attempt at every write.
ALTER TABLE documents ALTER COLUMN body SET STORAGE EXTERNAL;
