"""What the gateway reports about each request: the record and its sinks (Prometheus metrics,
the request log), and the token estimates used when an upstream reports no usage."""
