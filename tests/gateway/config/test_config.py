from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, load_config, parse_config, substitute_env
from tests.support.paths import REPO


def minimal(**over: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "deployments": {
            "s": {"model": "openai/s", "api_base": "http://127.0.0.1:1/v1"},
            "l": {"model": "openai/gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
        },
        "tiers": {"small": {"deployments": ["s"]}, "large": {"deployments": ["l"]}},
    }
    raw.update(over)
    return raw


def test_presets_are_merged_and_default_policy_is_balanced() -> None:
    config = parse_config(minimal())
    assert {"balanced", "cost-saver", "quality-first"} <= set(config.policies)
    assert config.default_policy == "balanced"
    assert config.policies["cost-saver"].target_strong_fraction == 0.2


def test_a_policy_in_the_file_replaces_the_preset_of_that_name() -> None:
    config = parse_config(minimal(policies={"balanced": {"threshold": 0.7}}))
    assert config.policies["balanced"].threshold == 0.7
    assert config.policies["balanced"].target_strong_fraction is None


def test_env_substitution_with_and_without_default() -> None:
    env = {"BASE": "http://10.0.0.1/v1", "EMPTY": ""}
    tree = {"a": "${BASE}", "b": ["x-${MISSING:-fallback}"], "c": "${EMPTY:-used}", "d": 3}
    assert substitute_env(tree, env) == {
        "a": "http://10.0.0.1/v1",
        "b": ["x-fallback"],
        "c": "used",
        "d": 3,
    }


def test_missing_env_without_default_names_the_file_and_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    raw = minimal()
    raw["deployments"]["s"]["api_base"] = "${TIERGATE_TEST_UNSET_VAR}"  # type: ignore[index]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"c\.yaml: environment variable TIERGATE_TEST_UNSET_VAR"):
        load_config(path)


def test_validation_error_names_file_key_path_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    raw = minimal()
    raw["deployments"]["s"]["price"] = {"input_per_mtok": -1}  # type: ignore[index]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert str(path) in text
    assert "deployments.s.price.input_per_mtok" in text
    assert "greater than or equal to 0" in text and "got -1" in text


def test_unknown_key_is_refused() -> None:
    raw = minimal()
    raw["deployments"]["s"]["modle"] = "typo"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"deployments\.s\.modle: Extra inputs are not permitted"):
        parse_config(raw)


def test_tier_naming_an_undeclared_deployment() -> None:
    with pytest.raises(ConfigError, match=r"tiers\.small names deployment 'nope'; declared: l, s"):
        parse_config(
            minimal(tiers={"small": {"deployments": ["nope"]}, "large": {"deployments": ["l"]}})
        )


def test_both_tiers_are_required() -> None:
    with pytest.raises(ConfigError, match="missing: \\['large'\\]"):
        parse_config(minimal(tiers={"small": {"deployments": ["s"]}}))


def test_policy_needs_exactly_one_way_to_decide() -> None:
    with pytest.raises(ConfigError, match="exactly one of threshold and target_strong_fraction"):
        parse_config(minimal(policies={"p": {"threshold": 0.5, "target_strong_fraction": 0.5}}))


def test_unknown_default_policy() -> None:
    with pytest.raises(ConfigError, match="default_policy 'fast' is not one of"):
        parse_config(minimal(default_policy="fast"))


def test_reserved_deployment_names() -> None:
    raw = minimal()
    raw["deployments"]["auto"] = {"model": "openai/x"}  # type: ignore[index]
    with pytest.raises(ConfigError, match="reserved for routing"):
        parse_config(raw)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("deployments: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="top level must be a mapping, got list"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_gpu_hour_pricing_charges_every_token_alike() -> None:
    config = parse_config(minimal())
    price = config.deployments["s"].price.model_copy(
        update={"gpu_hour_usd": 3.6, "tokens_per_second": 1000.0}
    )
    assert price.cost(1000, 1000) == pytest.approx(2000 * 3.6 / 3600 / 1000)


def test_shipped_example_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERGATE_SMALL_API_BASE", "http://127.0.0.1:8001/v1")
    monkeypatch.setenv("TIERGATE_LARGE_API_BASE", "http://127.0.0.1:8002/v1")
    # What deploy/kubernetes sets in the pod (tests/deploy checks the rendered values themselves).
    monkeypatch.setenv("TIERGATE_SMALL_MODEL", "hosted_vllm/smollm2-135m")
    monkeypatch.setenv("TIERGATE_SMALL_CONTEXT_TOKENS", "2048")
    monkeypatch.setenv("TIERGATE_REDIS_URL", "redis://127.0.0.1:6379/0")
    root = REPO / "deploy"
    paths = sorted(root.glob("**/tiergate*.yaml")) + sorted(root.glob("examples/*.yaml"))
    assert paths
    for path in paths:
        load_config(path)


def test_empty_substitution_means_unset() -> None:
    raw = minimal()
    raw["deployments"]["l"]["api_key_env"] = "${TIERGATE_TEST_UNSET_VAR:-}"  # type: ignore[index]
    assert parse_config(raw).deployments["l"].api_key_env is None
