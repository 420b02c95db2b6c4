-- The request log: one row per accepted request, its columns the fields of RequestRecord
-- (gateway/telemetry/record.py). No key on request_id: clients may send their own x-request-id,
-- and a client that reuses one must not overwrite an earlier row (rows = requests accepted).
-- IF NOT EXISTS: SQLite logs written before migrations existed already have this table (the
-- runner first adds the columns they lack) and keep their rows.
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT,
    started_at {real},
    endpoint TEXT,
    api_key_id TEXT,
    policy TEXT,
    p_strong {real},
    threshold {real},
    decision_reason TEXT,
    intended_tier TEXT,
    served_tier TEXT,
    deployment TEXT,
    fallback_reason TEXT,
    stream {bool},
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    tokens_estimated {bool},
    cost_usd {real},
    counterfactual_cost_usd {real},
    latency_s {real},
    ttft_s {real},
    upstream_latency_s {real},
    router_s {real},
    overhead_s {real},
    status_code INTEGER,
    error_kind TEXT,
    client_aborted {bool},
    partial {bool}
);
CREATE INDEX IF NOT EXISTS requests_started_at ON requests (started_at);
CREATE INDEX IF NOT EXISTS requests_request_id ON requests (request_id);
