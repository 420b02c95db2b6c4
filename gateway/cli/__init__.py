"""The `tiergate` command: the entry point (`main`), `serve`, and `logs`; `up` and `models` live
in `gateway.local`, `router` in `router.training.cli` (registered by `gateway.cli.router`)."""
