-- Issue 12: the operator route each request was classified into (`none` when no route was
-- confident), the classifier's probability, and the kinds of personal data found (never the data).
-- Written on branch work/routing before gateway/storage reached it: renumber at merge if another
-- branch took 0004.
ALTER TABLE requests ADD COLUMN category TEXT;
ALTER TABLE requests ADD COLUMN category_probability {real};
ALTER TABLE requests ADD COLUMN pii TEXT;
