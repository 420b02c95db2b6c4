-- Escalation mode (issue 15): the request log keeps both answers' outcomes, the discarded
-- cheaper one beside the one served (RequestRecord's escalation fields).
ALTER TABLE requests ADD COLUMN escalation_tier TEXT;
ALTER TABLE requests ADD COLUMN escalated TEXT;
ALTER TABLE requests ADD COLUMN p_escalate {real};
ALTER TABLE requests ADD COLUMN check_s {real};
ALTER TABLE requests ADD COLUMN discarded_deployment TEXT;
ALTER TABLE requests ADD COLUMN discarded_tier TEXT;
ALTER TABLE requests ADD COLUMN discarded_prompt_tokens INTEGER;
ALTER TABLE requests ADD COLUMN discarded_completion_tokens INTEGER;
ALTER TABLE requests ADD COLUMN discarded_cost_usd {real};
ALTER TABLE requests ADD COLUMN discarded_s {real};
ALTER TABLE requests ADD COLUMN escalation_error TEXT;
