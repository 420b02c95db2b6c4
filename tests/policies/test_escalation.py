"""Where a cheaper answer escalates to, with any number of tiers; when it may be shadowed."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse_config
from policies import Decision, PolicySpec, escalation_tier, escalation_tiers, shadowed

ORDER = ("small", "coder", "large")


def decided(tier: str, reason: str = "score") -> Decision:
    return Decision("p", tier, reason, 0.1, 0.5, ())


def spec(**escalate: object) -> PolicySpec:
    return PolicySpec.model_validate({"threshold": 0.5, "escalate": escalate})


def test_to_names_any_tier_and_defaults_to_the_most_capable() -> None:
    assert escalation_tier(spec(), decided("small"), ORDER) == "large"
    assert escalation_tier(spec(to="most_capable"), decided("coder"), ORDER) == "large"
    assert escalation_tier(spec(to="coder"), decided("small"), ORDER) == "coder"
    # At or past `to`, or forced by the client: the answer is final.
    assert escalation_tier(spec(to="coder"), decided("coder"), ORDER) is None
    assert escalation_tier(spec(to="coder"), decided("large"), ORDER) is None
    assert escalation_tier(spec(), decided("small", reason="header"), ORDER) is None
    assert escalation_tier(PolicySpec(threshold=0.5), decided("small"), ORDER) is None


def test_an_escalation_may_be_answered_by_to_or_any_more_capable_tier() -> None:
    assert escalation_tiers("coder", ORDER) == ("coder", "large")
    assert escalation_tiers("large", ORDER) == ("large",)


def test_shadowing_skips_the_most_capable_tier_and_protected_data() -> None:
    shadowing = PolicySpec.model_validate(
        {"threshold": 0.5, "shadow": {"fraction": 1, "judge": "j"}}
    )
    assert shadowed(shadowing, "small", ORDER) and shadowed(shadowing, "coder", ORDER)
    assert not shadowed(shadowing, "large", ORDER)
    assert not shadowed(shadowing, "small", ORDER, keep_local=True)
    assert not shadowed(spec(), "small", ORDER)


def test_the_config_refuses_an_escalation_tier_it_does_not_have() -> None:
    base = {
        "deployments": {"a": {"model": "openai/a"}, "b": {"model": "openai/b"}},
        "tiers": {"small": {"deployments": ["a"]}, "large": {"deployments": ["b"]}},
    }
    ok = parse_config({**base, "policies": {"v": {"threshold": 0.5, "escalate": {"to": "large"}}}})
    assert ok.policies["v"].escalate is not None
    with pytest.raises(ConfigError, match=r"policies\.v\.escalate\.to names tier 'medium'"):
        parse_config({**base, "policies": {"v": {"threshold": 0.5, "escalate": {"to": "medium"}}}})
