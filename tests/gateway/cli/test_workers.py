"""`tiergate serve --workers N`: how many, when it is refused, and two real workers over HTTP
(metrics merged on /metrics, every request in the log, SIGTERM stops them all with exit 0)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli.main import main
from gateway.config import parse_config
from gateway.workers import (
    cgroup_cpu_quota,
    encoder_threads,
    refusal,
    resolve_workers,
    usable_cpus,
)
from tests.support.gateway import two_tier_config, write_config
from tests.support.paths import REPO
from tests.support.ports import free_port
from tests.support.upstream import FakeUpstream

AFFINITY = len(os.sched_getaffinity(0))


def cgroup(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup tree and /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    return root, proc


def test_cgroup_v2_quota_is_honoured_and_rounded_up(tmp_path: Path) -> None:
    root, proc = cgroup(
        tmp_path, "0::/kubepods/pod1/c1\n", {"kubepods/pod1/c1/cpu.max": "150000 100000\n"}
    )
    assert cgroup_cpu_quota(root, proc) == 1.5
    assert usable_cpus(root, proc) == min(AFFINITY, 2)


def test_the_tightest_ancestor_wins_and_max_means_none(tmp_path: Path) -> None:
    root, proc = cgroup(
        tmp_path,
        "0::/a/b\n",
        {"a/b/cpu.max": "max 100000\n", "a/cpu.max": "50000 100000\n", "cpu.max": "max 100000"},
    )
    assert cgroup_cpu_quota(root, proc) == 0.5
    assert usable_cpus(root, proc) == 1
    free, proc = cgroup(tmp_path / "free", "0::/\n", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(free, proc) is None
    assert usable_cpus(free, proc) == AFFINITY  # the affinity mask (taskset) alone


def test_cgroup_v1_cfs_quota(tmp_path: Path) -> None:
    root, proc = cgroup(
        tmp_path,
        "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "100000\n",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
        },
    )
    assert cgroup_cpu_quota(root, proc) == 1.0
    unlimited, proc = cgroup(
        tmp_path / "u",
        "3:cpu:/\n",
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    assert cgroup_cpu_quota(unlimited, proc) is None


def config(**over: object) -> dict[str, object]:
    return two_tier_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", **over)


LIMITED_KEY = {"id": "team", "key_env": "TEAM_KEY", "rpm": 60}


def test_how_many_workers() -> None:
    plain, shared = parse_config(config()), parse_config(config(redis_url="redis://r:6379/0"))
    assert resolve_workers(None, plain, cpus=4) == 1  # the default without Redis
    assert resolve_workers(None, shared, cpus=4) == 4  # auto when limits are shared
    assert resolve_workers("auto", plain, cpus=3) == 3
    assert resolve_workers(" 2 ", plain, cpus=8) == 2
    for bad in ("0", "-1", "two", ""):
        with pytest.raises(ValueError, match="expected a whole number >= 1 or 'auto'"):
            resolve_workers(bad, plain, cpus=2)
    assert [encoder_threads(4, n) for n in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]


def test_in_memory_limits_refuse_several_workers() -> None:
    limited = parse_config(config(keys=[LIMITED_KEY]))
    problem = refusal(2, limited)
    assert problem is not None
    assert "2x its rpm, tpm and budget (keys: team)" in problem and "redis_url" in problem
    assert refusal(1, limited) is None
    assert refusal(2, parse_config(config(keys=[LIMITED_KEY], redis_url="redis://r/0"))) is None
    assert refusal(2, parse_config(config())) is None  # nothing to multiply


def test_serve_refuses_before_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, config(keys=[LIMITED_KEY]))
    monkeypatch.setenv("TIERGATE_LOG_DIR", str(tmp_path / "logs"))
    port = str(free_port())
    assert main(["serve", "--config", str(path), "--port", port, "--workers", "2"]) == 2
    assert "keys: team" in capsys.readouterr().err
    assert main(["serve", "--config", str(path), "--port", port, "--workers", "many"]) == 2
    assert "expected a whole number >= 1 or 'auto'" in capsys.readouterr().err


def requests_total(root: str) -> float:
    text = httpx.get(f"{root}/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = families["tiergate_requests"].samples
    return sum(s.value for s in samples if s.name == "tiergate_requests_total")


@contextmanager
def two_workers(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> Iterator[tuple[subprocess.Popen[bytes], str, list[psutil.Process]]]:
    """`tiergate serve --workers 2` started and answering: (supervisor, root URL, workers)."""
    path = write_config(tmp_path, two_tier_config(small.url, large.url))
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TIERGATE_LOG_DIR": str(tmp_path / "logs"),
        "TIERGATE_REQUEST_LOG_LINGER_S": "0",
        "HF_HUB_OFFLINE": "1",
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "TIERGATE_ENCODER_THREADS", "TIERGATE_WORKERS"):
        env.pop(name, None)
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)]
    output = tmp_path / "serve.log"
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [*command, "--port", str(port), "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, output.read_text()
            try:
                if httpx.get(f"{root}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.5)
        workers = [
            child
            for child in psutil.Process(proc.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        yield proc, root, workers
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for worker in workers:
            if worker.is_running():
                worker.kill()


def test_two_workers_over_http(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> None:
    with two_workers(tmp_path, small, large) as (proc, root, workers):
        sent = 0
        for i in range(30):  # one connection each: the kernel hands them to either worker
            body = {"model": "small-a", "messages": [{"role": "user", "content": f"hi {i}"}]}
            reply = httpx.post(f"{root}/v1/chat/completions", json=body, timeout=30)
            assert reply.status_code == 200, reply.text
            sent += 1
        # Every scrape, whichever worker answers it, counts every worker's requests.
        assert {requests_total(root) for _ in range(6)} == {sent}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()
    with sqlite3.connect(tmp_path / "logs" / "requests.db") as db:
        logged = db.execute("SELECT count(*), count(DISTINCT request_id) FROM requests").fetchone()
    assert logged == (sent, sent)
    assert not any(child.is_running() for child in workers)


def test_a_killed_supervisor_takes_its_workers_with_it(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """SIGKILL to `tiergate serve` is the replica's death: no orphaned worker goes on serving on
    the port (and holding it against the restart)."""
    with two_workers(tmp_path, small, large) as (proc, root, workers):
        proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, [w.pid for w in alive]
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{root}/health", timeout=2)
