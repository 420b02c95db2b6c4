"""`backend: auto`, the default: OpenAI-protocol servers get the direct pooled backend, every other
provider litellm, and a `backend:` written in the config wins (issue 17, item 3)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.config import load_config, parse_config
from gateway.upstream.base import Target
from gateway.upstream.openai import served_model
from tests.support.gateway import start_gateway, two_tier_config
from tests.support.paths import REPO
from tests.support.upstream import FakeUpstream


def config_with(**deployments: dict[str, object]) -> dict[str, object]:
    names = list(deployments)
    return {
        "deployments": deployments,
        "tiers": {"small": {"deployments": names[:1]}, "large": {"deployments": names[-1:]}},
    }


@pytest.mark.parametrize(
    ("model", "backend"),
    [
        ("openai/gpt-4o-mini", "openai-compatible"),
        ("hosted_vllm/smollm2-135m", "openai-compatible"),
        ("vllm/Qwen/Qwen2.5-7B-Instruct", "openai-compatible"),
        ("anthropic/claude-3-5-haiku", "litellm"),
        ("bedrock/anthropic.claude-3-haiku", "litellm"),
        ("vertex_ai/gemini-1.5-flash", "litellm"),
        ("gpt-4o-mini", "litellm"),  # no provider prefix: litellm's own guess
        ("openai-like/x", "litellm"),  # a prefix, not a provider segment
    ],
)
def test_auto_follows_the_model_prefix(model: str, backend: str) -> None:
    config = parse_config(config_with(a={"model": model}, b={"model": model, "backend": "auto"}))
    assert config.deployments["a"].backend == backend
    assert config.deployments["b"].backend == backend


@pytest.mark.parametrize("explicit", ["litellm", "openai-compatible"])
def test_an_explicit_backend_wins(explicit: str) -> None:
    config = parse_config(
        config_with(
            a={"model": "openai/small", "backend": explicit},
            b={"model": "anthropic/claude-3-5-haiku", "backend": explicit},
        )
    )
    assert {d.backend for d in config.deployments.values()} == {explicit}


def test_an_unknown_backend_names_the_accepted_values() -> None:
    with pytest.raises(ValueError, match="'auto', 'litellm' or 'openai-compatible'"):
        parse_config(config_with(a={"model": "openai/small", "backend": "direct"}))


def test_the_served_name_drops_the_prefix() -> None:
    assert served_model("vllm/Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert served_model("hosted_vllm/smollm2-135m") == "smollm2-135m"


def test_openai_itself_on_the_direct_backend_reads_openai_api_key() -> None:
    """With neither api_base nor api_key_env, litellm reads OPENAI_API_KEY; so does auto."""
    config = parse_config(config_with(a={"model": "openai/gpt-4o-mini"}))
    target = Target.from_config("a", config.deployments["a"], {"OPENAI_API_KEY": "sk-test"})
    assert target.api_key == "sk-test" and target.available
    local = parse_config(config_with(a={"model": "openai/small", "api_base": "http://h/v1"}))
    assert Target.from_config("a", local.deployments["a"], {"OPENAI_API_KEY": "x"}).api_key is None


EXAMPLE = REPO / "deploy" / "examples" / "two-tier.yaml"
SHIPPED = [*sorted((REPO / "deploy").rglob("tiergate.yaml")), EXAMPLE]


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_configs_take_the_fast_path(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped config's OpenAI-protocol deployment is on the direct backend as shipped."""
    for name in ("TIERGATE_SMALL_API_BASE", "TIERGATE_LARGE_API_BASE"):
        monkeypatch.setenv(name, "http://127.0.0.1:1/v1")
    monkeypatch.setenv("TIERGATE_SMALL_MODEL", "smollm2-135m")
    config = load_config(path)
    for name, deployment in config.deployments.items():
        if deployment.model.startswith(("openai/", "hosted_vllm/", "vllm/")):
            assert deployment.backend == "openai-compatible", name


def test_over_http_auto_takes_the_direct_backend_and_explicit_litellm_stays(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """A real gateway: the small deployment leaves `backend` unset (auto, direct backend: aiohttp
    calls the upstream), the large one says `backend: litellm` (the OpenAI client calls it)."""
    config = two_tier_config(small.url, large.url)
    config["deployments"]["large-a"]["backend"] = "litellm"
    gateway = start_gateway(tmp_path, config)
    try:
        for model in ("small-a", "large-a"):
            reply = httpx.post(
                f"{gateway.url}/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
    finally:
        gateway.stop()
    (small_seen,), (large_seen,) = small.history, large.history
    assert "aiohttp" in small_seen.headers["user-agent"]
    assert small_seen.body["model"] == "small-model"
    assert "OpenAI/Python" in large_seen.headers["user-agent"]
