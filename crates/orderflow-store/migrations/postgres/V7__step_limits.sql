-- A step under a concurrency limit is claimed by name: its ready and its expired attempts in
-- due order, without walking past the ready steps of every other kind.
CREATE INDEX run_steps_ready_by_step ON run_steps (step, due_at) WHERE status = 'ready';
CREATE INDEX run_steps_leased_by_step ON run_steps (step, lease_until) WHERE status = 'running';
