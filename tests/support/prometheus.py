"""A real Prometheus (Debian's binary) on loopback, driven by tests through its HTTP API.

Scrape targets are added while it runs (`add_target` rewrites the config and reloads it), so one
server per test session serves every test. Every scrape runs each second.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.ports import free_port

SCRAPE_INTERVAL_S = 1.0


class PrometheusServer:
    def __init__(self, workdir: Path, rule_files: list[Path] | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(
                "prometheus is not installed: run `bash deploy/local/test-prereqs.sh` "
                "(or deselect these tests with -m 'not prometheus')"
            )
        self.binary = binary
        self.workdir = workdir
        self.config_path = workdir / "prometheus.yml"
        self.rule_files = [str(p) for p in rule_files or []]
        self.targets: dict[str, list[str]] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.proc: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> None:
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_INTERVAL_S:g}s",
                "scrape_timeout": f"{SCRAPE_INTERVAL_S:g}s",
                "evaluation_interval": f"{SCRAPE_INTERVAL_S:g}s",
            },
            "rule_files": self.rule_files,
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in self.targets.items()
            ],
        }
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config), encoding="utf-8")
        tmp.replace(self.config_path)

    def start(self) -> PrometheusServer:
        self._write_config()
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self._wait(lambda: self._ready(), 30, "Prometheus did not become ready")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"Prometheus exited: {self.log_tail()}")
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def log_tail(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text("utf-8", "replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def add_target(self, job: str, address: str) -> None:
        """Scrape `address` (host:port, path /metrics) as `job`; returns once a scrape succeeded."""
        self.add_targets(job, [address])

    def add_targets(self, job: str, addresses: list[str]) -> None:
        """Scrape every address as one job (a fleet of replicas, told apart by `instance`);
        returns once each has been scraped."""
        self.targets[job] = list(addresses)
        self._write_config()
        self.http.post("/-/reload").raise_for_status()
        self.wait_for(
            f'count(up{{job="{job}"}} == 1)',
            lambda r: bool(r) and float(r[0]["value"][1]) == len(addresses),
            timeout=20,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/query", params={"query": expr})
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query failed: {expr}\n{json.dumps(body)}")
        data: dict[str, Any] = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float:
        """The single value of `expr`; fails if it does not return exactly one series."""
        result = self.query(expr)
        assert len(result) == 1, f"{expr} returned {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def wait_for(
        self, expr: str, check: Callable[[list[dict[str, Any]]], bool] = bool, timeout: float = 20
    ) -> list[dict[str, Any]]:
        """Poll `expr` until `check(result)` holds; the default waits for any data at all."""
        last: list[dict[str, Any]] = []

        def ok() -> bool:
            nonlocal last
            last = self.query(expr)
            return check(last)

        self._wait(ok, timeout, f"{expr} never satisfied the check; last result: {last}")
        return last

    @staticmethod
    def _wait(predicate: Callable[[], bool], timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return
            if time.monotonic() > deadline:
                raise AssertionError(message)
            time.sleep(0.2)


# Grafana's variables, as the dashboard would fill them for "all policies, last hour".
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$policy": ".*",
}


_GRAFANA_VARIABLE = re.compile(r"\$(\{|[A-Za-z_])")


def substitute(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    # A Grafana variable is $name or ${name}; label_replace's "$1" is PromQL's own capture group.
    assert not _GRAFANA_VARIABLE.search(expr), f"unsubstituted variable in {expr}"
    return expr


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    """Some series has a real number: a panel of only NaN (0/0) or Inf would show nothing useful."""
    return any(math.isfinite(float(series["value"][1])) for series in result)


_SELECTOR = re.compile(r"\b(tiergate_[a-z_]+)(\{)?")


def scoped(expr: str, job: str) -> str:
    """`expr` with every tiergate selector limited to one scrape job, so tests sharing one
    Prometheus cannot pass on each other's data."""

    def add(match: re.Match[str]) -> str:
        name, brace = match.group(1), match.group(2)
        return f'{name}{{job="{job}", ' if brace else f'{name}{{job="{job}"}}'

    return _SELECTOR.sub(add, expr)
