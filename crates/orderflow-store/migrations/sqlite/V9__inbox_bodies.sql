-- A delivery's body (a few KB) is written once and never changes, while its inbox row is
-- updated as the worker leases and settles it. Kept in the row, every one of those updates
-- wrote the body again (a whole page of the log each time); on a table of its own the row is
-- small and many share a page.
CREATE TABLE inbox_bodies (
    delivery_id TEXT PRIMARY KEY REFERENCES inbox (delivery_id),
    body        BLOB NOT NULL
) STRICT;

INSERT INTO inbox_bodies (delivery_id, body) SELECT delivery_id, body FROM inbox;
ALTER TABLE inbox DROP COLUMN body;
