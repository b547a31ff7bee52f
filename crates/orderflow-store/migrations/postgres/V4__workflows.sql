-- The workflow engine's state: runs of a workflow, their steps and every attempt at a step,
-- and the alerts waiting to be sent.

-- `status`: running, succeeded, failed, cancelled. `dedupe_key` makes starting the same run
-- twice (a cron tick seen by two nodes) impossible rather than unlikely.
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    workflow    TEXT NOT NULL,
    store_id    TEXT NOT NULL,
    order_id    TEXT,
    dedupe_key  TEXT UNIQUE,
    status      TEXT NOT NULL,
    input       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);

CREATE INDEX runs_by_order ON runs (order_id);
CREATE INDEX runs_by_status ON runs (status, run_id);

-- One row per step of a run. `status`: waiting (for its upstream), ready (due at `due_at`),
-- running (leased to `lease_owner` until `lease_until`), succeeded, failed, skipped,
-- upstream_failed, cancelled. `position` keeps the order the workflow declares them in. `attempts` counts tries, not a sensor's pokes: `poking` marks a
-- sensor that is between pokes of the same attempt.
CREATE TABLE run_steps (
    run_id           TEXT NOT NULL,
    step             TEXT NOT NULL,
    position         INTEGER NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    poking           BOOLEAN NOT NULL DEFAULT FALSE,
    due_at           TIMESTAMPTZ,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    first_started_at TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    output           TEXT,
    error            TEXT,
    PRIMARY KEY (run_id, step)
);

-- What workers claim: ready steps by due time, and running steps by lease expiry.
CREATE INDEX run_steps_ready ON run_steps (due_at) WHERE status = 'ready';
CREATE INDEX run_steps_leased ON run_steps (lease_until) WHERE status = 'running';

CREATE TABLE step_attempts (
    run_id      TEXT NOT NULL,
    step        TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    worker      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome     TEXT,
    error       TEXT,
    PRIMARY KEY (run_id, step, attempt)
);

-- Alerts to operations, written in the transaction that failed the step for good, sent by
-- whichever worker claims them.
CREATE TABLE alerts (
    alert_id        TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL,
    step            TEXT NOT NULL,
    order_id        TEXT,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ
);

CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE status = 'pending';
