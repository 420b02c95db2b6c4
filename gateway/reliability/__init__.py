"""Keeping one deployment's trouble from becoming every request's: circuit breakers, retry
backoff, per-deployment concurrency (slots and the in-flight count)."""
