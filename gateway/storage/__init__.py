"""What the gateway keeps besides metrics: for now, stored responses (`gateway.storage.responses`),
in the request log's SQLite file."""
