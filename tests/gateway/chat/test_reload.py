"""Swapping the router's artifact while serving: `POST /admin/router/reload` in one worker reaches
the others through the shared generation, no request fails meanwhile, a bad artifact is refused;
`SIGHUP` does the same for a `tiergate serve` process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from router import Router, load_router
from router.artifact import load_artifact
from router.model import default_artifact_dir
from tests.support.gateway import Gateway, start, two_tier_config
from tests.support.paths import REPO
from tests.support.ports import free_port
from tests.support.upstream import FakeUpstream

ADMIN = {"authorization": "Bearer ops-secret"}


@pytest.fixture(scope="module")
def trained() -> Router:
    return load_router()


def config(small: FakeUpstream, large: FakeUpstream) -> dict[str, Any]:
    cfg = two_tier_config(small.url, large.url)
    for deployment in cfg["deployments"].values():
        deployment["backend"] = "openai-compatible"
    cfg["policies"] = {"balanced": {"threshold": 0.95}}  # the shipped router: all small
    cfg["keys"] = [
        {"id": "ops", "key_env": "OPS_KEY", "admin": True},
        {"id": "app", "key_env": "APP_KEY"},
    ]
    return cfg


def retrain(directory: Path, name: str, shift: float) -> None:
    """A "retrained" artifact: the shipped one renamed, every score pushed by `shift` logits."""
    artifact = load_artifact(directory)
    artifact.name = name
    artifact.intercept += shift
    artifact.save(directory)


def router_name(gateway: Gateway) -> str:
    r = httpx.get(gateway.url + "/models", headers=ADMIN)
    auto = next(card for card in r.json()["data"] if card["id"] == "auto")
    return str(auto["tiergate"]["router"]["name"])


def route(gateway: Gateway, key: str = "app-secret") -> str:
    r = gateway.post({"model": "auto", "messages": [{"role": "user", "content": "Say hi"}]}, key)
    assert r.status_code == 200, r.text
    return r.headers["x-tiergate-route"]


@pytest.fixture
def workers(
    tmp_path: Path, trained: Router, small: FakeUpstream, large: FakeUpstream
) -> Iterator[tuple[Path, Gateway, Gateway]]:
    """Two gateway processes' worth of apps over one log directory (so one generation file)."""
    artifact = tmp_path / "artifact"
    shutil.copytree(default_artifact_dir(), artifact)
    env = {"OPS_KEY": "ops-secret", "APP_KEY": "app-secret"}
    settings: dict[str, Any] = {"router_artifact": artifact, "reload_poll_s": 0.2}
    first = start(tmp_path, config(small, large), env, scorer=trained, **settings)
    second = start(tmp_path, config(small, large), env, scorer=trained, **settings)
    yield artifact, first, second
    first.stop()
    second.stop()


def test_a_reload_reaches_every_worker_and_drops_no_request(
    workers: tuple[Path, Gateway, Gateway],
) -> None:
    artifact, first, second = workers
    shipped = router_name(first)
    assert route(first) == route(second) == "small"
    failures: list[str] = []
    stop = threading.Event()

    def traffic(gateway: Gateway) -> None:
        while not stop.is_set():
            r = gateway.post(
                {"model": "auto", "messages": [{"role": "user", "content": "Say hi"}]},
                key="app-secret",
            )
            if r.status_code != 200:
                failures.append(r.text)

    threads = [threading.Thread(target=traffic, args=(g,)) for g in (first, second) * 2]
    for thread in threads:
        thread.start()
    try:
        retrain(artifact, "retrained", shift=40.0)
        r = httpx.post(first.root + "/admin/router/reload", headers=ADMIN, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["router"]["name"] == "retrained" and r.json()["generation"] == 1
        assert router_name(first) == "retrained"
        deadline = time.monotonic() + 10
        while router_name(second) != "retrained":
            assert time.monotonic() < deadline, "the other worker did not reload"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert shipped != "retrained"
    assert route(first) == route(second) == "large", "the new artifact routes everything large"


def test_a_bad_artifact_is_refused_and_the_old_one_stays(
    workers: tuple[Path, Gateway, Gateway],
) -> None:
    artifact, first, _ = workers
    before = router_name(first)
    path = artifact / "router.json"
    path.write_text(path.read_text().replace('"intercept"', '"intercepted"', 1))
    r = httpx.post(first.root + "/admin/router/reload", headers=ADMIN, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_artifact"
    assert "checksum" in r.json()["error"]["message"]
    assert router_name(first) == before and route(first) == "small"


def test_only_an_admin_may_reload(workers: tuple[Path, Gateway, Gateway]) -> None:
    _, first, _ = workers
    r = httpx.post(
        first.root + "/admin/router/reload", headers={"authorization": "Bearer app-secret"}
    )
    assert r.status_code == 403


def test_sighup_reloads_a_serving_process(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    artifact = tmp_path / "artifact"
    shutil.copytree(default_artifact_dir(), artifact)
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config(small, large)))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OPS_KEY": "ops-secret",
        "APP_KEY": "app-secret",
        "TIERGATE_ROUTER_ARTIFACT": str(artifact),
        "TIERGATE_LOG_DIR": str(tmp_path / "logs"),
    }
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)]
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "tiergate serve did not start"
            time.sleep(0.2)
        retrain(artifact, "after-sighup", shift=0.0)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while True:
            models = httpx.get(base + "/v1/models", headers=ADMIN).json()
            auto = next(card for card in models["data"] if card["id"] == "auto")
            if auto["tiergate"]["router"]["name"] == "after-sighup":
                break
            assert process.poll() is None, f"SIGHUP must not end the process: {log.read_text()}"
            assert time.monotonic() < deadline, "SIGHUP did not reload the router"
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "router reloaded: after-sighup" in log.read_text()
