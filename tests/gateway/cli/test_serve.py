"""`tiergate serve` refusing to start: one line saying why, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.gateway import two_tier_config
from tests.support.paths import REPO
from tests.support.ports import free_port


def read_only_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write: root ignores file modes, so it gets /sys's."""
    if os.geteuid() == 0:
        return Path("/sys/fs")
    path = tmp_path / "read-only"
    path.mkdir()
    path.chmod(0o555)
    return path


def test_a_read_only_log_directory_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "tiergate.yaml"
    config.write_text(yaml.safe_dump(two_tier_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")))
    log_dir = read_only_dir(tmp_path)
    port = str(free_port())
    env = {**os.environ, "TIERGATE_LOG_DIR": str(log_dir), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", port],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tiergate: ") and str(log_dir) in lines[0]
    assert "TIERGATE_LOG_DIR" in lines[0]
