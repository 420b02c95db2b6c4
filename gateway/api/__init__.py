"""HTTP routes, thin: each takes its services from `gateway.deps`, calls one, and turns the result
into JSON or a stream."""
