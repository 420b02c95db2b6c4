"""Static checks of deploy/: compose, Prometheus config and rules, Grafana dashboard, README.

There is no Docker engine here, so the compose file is checked for what would break `docker
compose up` first: a missing file, a service without image, ports or health check.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_config
from gateway.telemetry.prometheus import GatewayMetrics
from tests.support.dashboard import dashboard, reliability_collector
from tests.support.paths import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "tiergate.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
_METRIC = re.compile(r"\btiergate_[a-z_]+\b")


def exposed_names() -> set[str]:
    """Every series name /metrics can expose (family name plus its type's suffixes)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    families = [*GatewayMetrics().registry.collect(), *reliability_collector({}).collect()]
    return {family.name + suffix for family in families for suffix in suffixes[family.type]}


def copied_sources(dockerfile: Path) -> list[str]:
    """The build-context paths a Dockerfile's COPY lines read (not `COPY --from=stage`)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    sources: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources.extend(args[:-1])
    return sources


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: run `bash deploy/local/test-prereqs.sh`")
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=REPO)


# --- compose -------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["gateway", "vllm", "prometheus", "grafana"])
def test_compose_service_has_image_ports_and_healthcheck(service: str) -> None:
    spec = compose()["services"][service]
    assert "image" in spec or "build" in spec
    assert spec.get("ports"), f"{service} publishes no port"
    for port in spec["ports"]:
        assert re.fullmatch(r"\d+:\d+", str(port)), port
    check = spec.get("healthcheck", {}).get("test")
    assert check and check[0] in ("CMD", "CMD-SHELL"), f"{service} has no health check"


def test_compose_mounts_and_builds_only_files_in_the_repo() -> None:
    spec = compose()
    base = COMPOSE.parent
    named = set(spec.get("volumes") or {})
    for name, service in spec["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (base / source).resolve().exists(), f"{name} mounts missing {source}"
                assert (base / source).resolve().is_relative_to(REPO), source
            else:
                assert source in named, f"{name} uses undeclared volume {source}"
        build = service.get("build")
        if build is not None:
            context = (base / build["context"]).resolve()
            assert context.is_dir(), f"{name} build context {context}"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name} builds from missing {dockerfile}"
            for source in copied_sources(dockerfile):
                assert (context / source).exists(), f"{dockerfile} copies missing {source}"


def test_compose_wires_services_to_each_other() -> None:
    spec = compose()["services"]
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in prometheus["scrape_configs"]
    }
    assert targets["tiergate"] == "gateway:8080"
    assert any(p.endswith(":8080") for p in spec["gateway"]["ports"])
    assert targets["vllm"] == "vllm:8000"
    assert any(p.endswith(":8000") for p in spec["vllm"]["ports"])
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(PROVIDERS.read_text())["providers"][0]
    mounts = {v.split(":")[1] for v in spec["grafana"]["volumes"]}
    assert provider["options"]["path"] in mounts


def test_compose_gateway_config_is_valid() -> None:
    config = load_config(COMPOSE.parent / "tiergate.yaml")
    small = config.deployments[config.tiers["small"].deployments[0]]
    assert small.api_base == "http://vllm:8000/v1"


# --- Prometheus ----------------------------------------------------------------------------------


@pytest.mark.prometheus
def test_promtool_checks_the_alert_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_alert_rules_fire_when_they_should() -> None:
    result = promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_checks_the_prometheus_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_errors_fallbacks_and_large_tier_share() -> None:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {
        "TiergateHighErrorRate",
        "TiergateFallbackSpike",
        "TiergateLargeTierShareAboveBudget",
    } <= names
    known = exposed_names()
    for rule in rules:
        assert set(_METRIC.findall(rule["expr"])) <= known, rule["alert"]


# --- Grafana -------------------------------------------------------------------------------------


def test_dashboard_declares_schema_and_every_panel_has_datasource_and_query() -> None:
    dash = dashboard()
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == uid


def test_dashboard_queries_name_only_metrics_that_exist() -> None:
    known = exposed_names()
    for expr in dashboard_exprs():
        unknown = set(_METRIC.findall(expr)) - known
        assert not unknown, f"{expr}: {unknown}"


def test_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = " | ".join(p["title"].lower() for p in dashboard()["panels"])
    for words in (
        "cost per route",
        "all-large",
        "savings vs all-large (%)",
        "request rate by tier",
        "share of traffic on the small tier",
        "latency by tier",
        "time to first token by tier",
        "router score distribution",
        "error and fallback rates",
    ):
        assert words in titles, words


# --- README --------------------------------------------------------------------------------------


def test_readme_lists_every_metric() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- section: metrics -->", 1)[1].split("<!-- section:", 1)[0]
    for family in GatewayMetrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}`" in section, f"README's metrics section does not list {name}"
