"""The config's `routes:` mapping expanded: presets merged, each route with its target and texts.

What a route's classifier learns from (its name, description and examples) is parsed by the router
(`router.route_specs.parse_routes`), so that `tiergate router fit-routes --config C` and the gateway
read a config into the same specs and share one cached fit. What it targets (`tier:` or
`deployment:`) is the gateway's: a preset's routes name `cheapest` or `most_capable`, which the
engine resolves against the config's tier order (`policies.TierFacts.resolve`).

    routes:
      preset: general             # the shipped routes (router/presets/general.yaml)
      code: {tier: coder}         # move one preset route to another tier, keeping its examples
      billing:                    # add a route
        tier: small               # or deployment: <name>
        description: invoices, refunds and payment methods
        examples: ["Where can I download my invoice?", ...]   # at least 5, distinct
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import RouterError
from router.route_specs import PRESET_KEY, TARGET_KEYS, load_preset, parse_routes


def expand_routes(raw: Any) -> dict[str, dict[str, Any]]:
    """Route name -> {tier, deployment, description, examples}, in the order written (a preset's
    routes first); ValueError naming the route and field that is not accepted."""
    if raw is None:
        return {}
    try:
        specs = parse_routes(raw, "routes")
        preset = load_preset(raw[PRESET_KEY], "routes.preset") if PRESET_KEY in raw else None
    except RouterError as exc:
        raise ValueError(str(exc)) from None
    expanded: dict[str, dict[str, Any]] = {}
    for spec in specs:
        body = raw.get(spec.name)
        target = {k: body[k] for k in TARGET_KEYS if k in body} if isinstance(body, Mapping) else {}
        if not target and preset is not None and spec.name in preset.tiers:
            target = {"tier": preset.tiers[spec.name]}
        expanded[spec.name] = {
            **target,
            "description": spec.description,
            "examples": list(spec.examples),
        }
    return expanded
