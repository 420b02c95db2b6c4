"""The start-up banner of `tiergate up`: where to send requests and what will answer them.

A newcomer reads this once, so it says plainly which tiers can be reached. A deployment whose
`api_key_env` variable is unset is shown as unavailable, as the gateway's `/status` reports it, and
the examples are ready to paste.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import Deployment, GatewayConfig


def availability(dep: Deployment, env: Mapping[str, str]) -> str:
    """How the deployment is reached, or why it cannot be, as the gateway will judge it from the
    same environment `env`."""
    if dep.api_key_env and not env.get(dep.api_key_env):
        return f"unavailable: {dep.api_key_env} is not set"
    if dep.serve is not None:
        return f"local vLLM on port {dep.serve.port}"
    return f"via {dep.api_base}" if dep.api_base else "hosted"


def banner(config: GatewayConfig, url: str, env: Mapping[str, str]) -> list[str]:
    """The lines printed once everything is healthy."""
    rule = "-" * 72
    lines = [rule, f"tiergate is up: {url}/v1  (OpenAI-compatible)", ""]
    for tier_name in config.tier_order():
        tier = config.tiers[tier_name]
        lines.append(f"  {tier_name} tier:")
        for name in tier.deployments:
            dep = config.deployments[name]
            lines.append(f"    {name:<20} {dep.model:<32} {availability(dep, env)}")
    policy = config.default_policy
    lines += [
        "",
        f'  model "auto" routes with policy {policy!r}; "auto:<policy>" picks another '
        f"({', '.join(sorted(config.policies))});",
        "  a deployment name bypasses routing. Unavailable tiers fall back per policy",
        "  (response header x-tiergate-fallback).",
        "",
        "  curl:",
        f"    curl -s {url}/v1/chat/completions -H 'Content-Type: application/json' \\",
        '      -d \'{"model": "auto", "messages": [{"role": "user", '
        '"content": "What is the capital of France?"}]}\'',
        "",
        "  Python (pip install openai):",
        "    from openai import OpenAI",
        f'    client = OpenAI(base_url="{url}/v1", api_key="unused")',
        "    reply = client.chat.completions.create(",
        '        model="auto",',
        '        messages=[{"role": "user", "content": "What is the capital of France?"}])',
        "    print(reply.choices[0].message.content)",
        "",
        "  Ctrl-C stops everything.",
        rule,
    ]
    return lines
