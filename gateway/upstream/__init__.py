"""Calling deployments: the `Backend` interface and the error-kind table (`base`), the litellm and
direct OpenAI-protocol backends, the balancer that orders a tier's deployments, readiness probes."""
