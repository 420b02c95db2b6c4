"""The balancer orders a tier's deployments; least-in-flight reads the one in-flight count, the
deployments' slots (`gateway.reliability.concurrency`)."""

from __future__ import annotations

from gateway.config import GatewayConfig, parse_config
from gateway.reliability.concurrency import Concurrency
from gateway.upstream.balancer import Balancer
from gateway.upstream.base import Target


def three_small(strategy: str) -> GatewayConfig:
    deployment = {"model": "openai/m", "api_base": "http://127.0.0.1:9/v1"}
    return parse_config(
        {
            "deployments": {
                "a": deployment,
                "b": deployment,
                "c": {**deployment, "api_key_env": "C_KEY"},
                "big": deployment,
            },
            "tiers": {
                "small": {"deployments": ["a", "b", "c"], "strategy": strategy},
                "large": {"deployments": ["big"]},
            },
            "policies": {"balanced": {"threshold": 0.5}},
        }
    )


def balancer(config: GatewayConfig) -> tuple[Balancer, Concurrency]:
    targets = {n: Target.from_config(n, d, {}) for n, d in config.deployments.items()}
    concurrency = Concurrency(config.deployments)
    return Balancer(config, targets, concurrency), concurrency


async def test_least_in_flight_follows_the_slots_held() -> None:
    b, concurrency = balancer(three_small("least-in-flight"))
    assert [t.name for t in b.order("small")] == ["a", "b", "c"]
    held = [await concurrency["a"].acquire(), await concurrency["a"].acquire()]
    one = await concurrency["b"].acquire()
    assert concurrency.in_flight("a") == 2 and concurrency.in_flight("b") == 1
    # c has nothing in flight but no key: unavailable deployments always come last.
    assert [t.name for t in b.order("small")] == ["b", "a", "c"]
    one.release()
    one.release()  # a slot is given back once
    assert concurrency.in_flight("b") == 0
    assert [t.name for t in b.order("small")] == ["b", "a", "c"]
    for slot in held:
        slot.release()
    assert [t.name for t in b.order("small")] == ["a", "b", "c"]


def test_round_robin_turns_and_puts_the_unavailable_last() -> None:
    b, _ = balancer(three_small("round-robin"))
    orders = [[t.name for t in b.order("small")] for _ in range(3)]
    assert orders == [["a", "b", "c"], ["b", "a", "c"], ["a", "b", "c"]]
    assert b.tier_available("small") and b.tier_available("large")
