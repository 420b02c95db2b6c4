"""`tiergate router explain`: the shipped router, the fixture routes, one prompt at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli.main import main
from tests.support.paths import REPO

FIXTURE = REPO / "tests" / "router" / "routes_data" / "fixture_config.yaml"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explain") / "tiergate.yaml"
    raw = {
        "deployments": {
            "local-small": {
                "model": "openai/s",
                "api_base": "http://127.0.0.1:1/v1",
                "local": True,
            },
            "hosted-large": {"model": "openai/l", "api_base": "http://127.0.0.1:2/v1"},
        },
        "tiers": {
            "small": {"deployments": ["local-small"]},
            "large": {"deployments": ["hosted-large"]},
        },
        "routes": yaml.safe_load(FIXTURE.read_text())["routes"],
        "policies": {"private": {"threshold": 0.5, "pii": "keep_local"}},
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _routes_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERGATE_ROUTES_CACHE", str(tmp_path_factory.getbasetemp() / "routes"))


def explain(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["router", "explain", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_explain_names_the_route_its_examples_and_the_tier(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = explain(capsys, "--config", str(config), "--json", "Has my parcel been sent yet?")
    assert code == 0
    report: dict[str, Any] = json.loads(out)
    assert report["category"]["name"] == "shipping" and report["category"]["probability"] >= 0.6
    assert len(report["category"]["nearest"]) == 3
    assert all(n["example"] for n in report["category"]["nearest"])
    assert report["decision"]["tier"] == "small"
    assert report["decision"]["reason"] == "route:shipping"
    assert report["rules"] == ["routes: small"]
    assert report["tiers"] == ["small", "large"]
    code, text = explain(capsys, "--config", str(config), "Has my parcel been sent yet?")
    lines = text.splitlines()
    assert lines[0].startswith("policy     balanced")
    assert lines[2].startswith("category   shipping (best shipping p=")
    assert lines[3].startswith("  nearest  ")
    assert "decision   tier small (reason route:shipping)" in lines


def test_explain_shows_pii_and_a_refusal_or_the_local_tier(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prompt = "Review this NDA for jane@example.com"
    code, out = explain(capsys, "--config", str(config), "--policy", "private", "--json", prompt)
    report = json.loads(out)
    assert report["pii"] == {"found": ["email"], "policy": "keep_local"}
    assert report["decision"]["tier"] == "small" and report["decision"]["reason"] == "pii"
    assert report["rules"][0] == "pii: only small"
    raw = yaml.safe_load(config.read_text())
    raw["deployments"]["local-small"]["local"] = False
    remote = tmp_path / "remote.yaml"
    remote.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, text = explain(capsys, "--config", str(remote), "--policy", "private", prompt)
    assert code == 0
    assert "decision   refused (400, reason pii)" in text


def test_explain_refuses_bad_arguments_with_a_message(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = explain(capsys, "--config", str(config), "--policy", "nope", "hi")
    assert code == 2 and "--policy 'nope'" in text
    code, text = explain(capsys, "--config", str(config), "--tier", "medium", "hi")
    assert code == 2 and "--tier must be one of ['small', 'large']" in text
