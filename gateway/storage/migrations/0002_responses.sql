-- Stored responses (issue 14, the Responses API's `store` and `previous_response_id`). Written
-- before the response returns and never dropped, unlike request-log rows. Reads match the key
-- that created the response (api_key_id, NULL when the gateway runs without keys) and skip rows
-- past expires_at (responses.retention_days); purge_expired deletes them.
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    api_key_id TEXT,
    created_at {real} NOT NULL,
    expires_at {real},
    request_id TEXT,
    previous_response_id TEXT,
    deployment TEXT,
    input_items {json} NOT NULL,
    output_items {json} NOT NULL,
    response {json}
);
CREATE INDEX responses_expires_at ON responses (expires_at);
CREATE INDEX responses_request_id ON responses (request_id);
