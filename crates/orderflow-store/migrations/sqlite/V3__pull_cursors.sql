-- Where each store's incremental pull from its platform got to: the updated-at mark (in the
-- platform's own spelling) of the last order taken in.
CREATE TABLE pull_cursors (
    store_id   TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
