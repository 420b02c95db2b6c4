"""The Tiergate service: OpenAI wire protocol, routing through policies, litellm backends,
telemetry, and the `tiergate` command. Import `gateway.app.create_app` to build the service."""
