-- Storefront intake: store integrations, the inbox of raw deliveries and forwards to courier
-- systems. Timestamps are timestamptz.

-- Platform credentials, rules and destination, as one JSON document (model::StoreSettings).
ALTER TABLE stores ADD COLUMN settings JSONB NOT NULL DEFAULT '{}';

-- For orders that came from a storefront: when the platform last changed the order (an older
-- update is stale) and the normalised order as it arrived.
-- False for the orders of a store that does not manage stock here: their lines never
-- reserved anything, so cancelling them releases nothing and the audit leaves them out.
ALTER TABLE orders ADD COLUMN holds_stock BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE orders ADD COLUMN source_updated_at TIMESTAMPTZ;
ALTER TABLE orders ADD COLUMN source JSONB;

-- Every delivery, kept as received. `status` is its fate: received (waiting for the worker),
-- accepted, duplicate, stale, rejected, failed, forwarded.
CREATE TABLE inbox (
    delivery_id  TEXT PRIMARY KEY,
    store_id     TEXT NOT NULL,
    platform     TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    topic        TEXT,
    headers      JSONB NOT NULL,
    body         BYTEA NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT,
    order_id     TEXT,
    duplicate_of TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_until  TIMESTAMPTZ,
    received_at  TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ
);

CREATE INDEX inbox_by_status ON inbox (status, delivery_id);
CREATE INDEX inbox_by_store ON inbox (store_id, delivery_id);

-- The first level of de-duplication: one row per platform event, whoever delivers it.
CREATE TABLE inbox_events (
    store_id    TEXT NOT NULL,
    event_key   TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    PRIMARY KEY (store_id, event_key)
);

-- Orders handed to a store's destination; one per order, retried until delivered or dead.
CREATE TABLE forwards (
    forward_id      TEXT PRIMARY KEY,
    store_id        TEXT NOT NULL,
    order_id        TEXT NOT NULL UNIQUE,
    delivery_id     TEXT,
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ
);

CREATE INDEX forwards_due ON forwards (status, next_attempt_at);
CREATE INDEX forwards_by_store ON forwards (store_id, forward_id);
