"""Who may call and how much: API keys, per-key quotas (rpm, tpm, budget), the counter stores
behind them (memory or Redis), and request size limits."""
