"""One request's life: plan (resolve, authorize, decide, admit), attempts on deployments in order,
the stream relay, and the ledger that writes the request's one record."""
