"""Offline work on the router: loading outcome data, labels, fitting, evaluation, the on-disk
embedding cache, plots and reports, and the `tiergate router` commands. The gateway never imports
this package: it loads what training wrote (`router.model`, `router.artifact`)."""
