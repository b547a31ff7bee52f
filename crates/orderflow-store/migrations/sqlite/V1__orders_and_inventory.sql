-- Stores (tenants), API keys, products with their stock, orders with lines, backorders,
-- timeline and idempotency keys. Timestamps are Unix microseconds (UTC).

CREATE TABLE stores (
    store_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    platform   TEXT,
    created_at INTEGER NOT NULL
) STRICT;

INSERT INTO stores (store_id, name, platform, created_at)
VALUES ('default', 'Default store', NULL, CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'store', 'customer')),
    store_id    TEXT REFERENCES stores (store_id),
    customer_id TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE products (
    store_id    TEXT NOT NULL REFERENCES stores (store_id),
    product_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    category    TEXT,
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    currency    TEXT NOT NULL,
    on_hand     INTEGER NOT NULL,
    reserved    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (store_id, product_id),
    CHECK (reserved >= 0 AND reserved <= on_hand)
) STRICT, WITHOUT ROWID;

-- No foreign key to stores: every order reserves or backorders products of its store, which
-- do reference it, and on PostgreSQL a key check against one hot store row from every order
-- would serialise placements on that row's lock.
CREATE TABLE orders (
    order_id         TEXT PRIMARY KEY,
    store_id         TEXT NOT NULL,
    external_id      TEXT,
    customer_id      TEXT,
    status           TEXT NOT NULL,
    customer         TEXT,
    shipping_address TEXT,
    currency         TEXT,
    total_minor      INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX orders_by_store ON orders (store_id, order_id);
CREATE INDEX orders_by_customer ON orders (store_id, customer_id, order_id);
CREATE INDEX orders_by_status ON orders (status, order_id);
-- NULLs are distinct in a UNIQUE index, so orders without an external id never collide. (A
-- partial index would make every statement that checks a foreign key to orders be re-planned
-- at each binding.)
CREATE UNIQUE INDEX orders_by_external_id ON orders (store_id, external_id);

CREATE TABLE order_lines (
    order_id         TEXT NOT NULL REFERENCES orders (order_id),
    line_no          INTEGER NOT NULL,
    product_id       TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    PRIMARY KEY (order_id, product_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX order_lines_by_product ON order_lines (product_id);

-- Units an order still waits for; served first come, first served when stock arrives.
CREATE TABLE backorders (
    order_id   TEXT NOT NULL REFERENCES orders (order_id),
    product_id TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE order_events (
    order_id TEXT NOT NULL REFERENCES orders (order_id),
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    status   TEXT NOT NULL,
    note     TEXT,
    PRIMARY KEY (order_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    store_id     TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    receipt      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (store_id, key)
) STRICT, WITHOUT ROWID;
