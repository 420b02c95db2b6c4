"""The load driver: Debian's `wrk`, closed loop, fixed concurrency and duration, one POST body.

wrk is C and uses one thread here, so on a 2-core machine the client takes as little CPU from the
servers under test as a client can; a Python client would compete with them for the same cores.
A small Lua script sets the body and prints the figures we keep in a line we parse: request count,
duration, and latency percentiles in microseconds (wrk's own HdrHistogram). Non-2xx answers and
socket errors are counted and reported, never silently folded into the latency figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    bad_status: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.socket_errors == 0 and self.bad_status == 0


def wrk_path() -> str:
    """The wrk binary, or an error saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("bench: wrk is not installed; run `apt-get install -y wrk`")
    return path


def run_wrk(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    duration_s: float,
    key: str = "none",
    timeout_s: float = 30.0,
) -> LoadResult:
    """Drive `url` with `concurrency` connections for `duration_s`, each sending `body` with
    `key` as its bearer token."""
    with tempfile.TemporaryDirectory(prefix="tiergate-wrk-") as tmp:
        script, body_file = Path(tmp) / "post.lua", Path(tmp) / "body.json"
        script.write_text(_SCRIPT)
        body_file.write_bytes(body)
        command = [
            wrk_path(),
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={timeout_s:g}s",
            "-s",
            str(script),
            url,
        ]
        env = {**os.environ, "BENCH_BODY": str(body_file), "BENCH_KEY": key}
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False
        )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            n, micros, p50, p99, socket_errors, bad_status = (int(x) for x in line.split()[1:])
            return LoadResult(n, micros / 1e6, p50 / 1e3, p99 / 1e3, socket_errors, bad_status)
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}): {done.stderr[-500:]}")


def wrk_version() -> str:
    done = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "wrk"
