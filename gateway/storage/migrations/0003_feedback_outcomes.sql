-- Learning from the gateway's own traffic (issue 15).
-- feedback: POST /v1/feedback, one row per score a key gave one of its own requests or responses.
CREATE TABLE feedback (
    id {id},
    request_id TEXT,
    response_id TEXT,
    api_key_id TEXT,
    score {real} NOT NULL,
    created_at {real} NOT NULL
);
CREATE INDEX feedback_request_id ON feedback (request_id);
CREATE INDEX feedback_created_at ON feedback (created_at);

-- outcomes: what retraining needs from one request (a shadow verdict, feedback, an escalation):
-- the tier pair, the verdict (1.0: the cheaper tier's answer was good enough), the MiniLM
-- embedding of the routed text (float32 little-endian bytes) and the answer's features. The text
-- itself (content) only when the operator opts in. Kept until expires_at.
CREATE TABLE outcomes (
    id {id},
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at {real} NOT NULL,
    expires_at {real},
    api_key_id TEXT,
    policy TEXT,
    category TEXT,
    weak_tier TEXT,
    strong_tier TEXT,
    weak_deployment TEXT,
    strong_deployment TEXT,
    judge TEXT,
    verdict {real},
    embedding {bytes},
    embedding_model TEXT,
    features {json},
    content {json}
);
CREATE INDEX outcomes_created_at ON outcomes (created_at);
CREATE INDEX outcomes_request_id ON outcomes (request_id);
CREATE INDEX outcomes_expires_at ON outcomes (expires_at);
