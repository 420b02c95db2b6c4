-- Issue 12: the operator route each request was classified into (`none` when no route was
-- confident), the classifier's probability, and the kinds of personal data found (never the data).
ALTER TABLE requests ADD COLUMN category TEXT;
ALTER TABLE requests ADD COLUMN category_probability {real};
ALTER TABLE requests ADD COLUMN pii TEXT;
