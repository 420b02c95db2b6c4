"""The gateway run the way its Kubernetes pod runs it, on this machine, without a cluster.

A private mount namespace (`unshare --mount`, needs root) makes every filesystem read-only, mounts
the rendered ConfigMap's tiergate.yaml at /etc/tiergate and a fresh tmpfs at each of the gateway
container's emptyDir mount paths, runs the init container's seed command, then starts `tiergate
serve` with the container's environment as uid 10001 when the code is readable by it. Real HTTP
against a fake upstream proves the pod's layout is enough: the router loads, requests are
answered, request-log rows land in the emptyDir, and (under strace) no write is refused anywhere.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.kubernetes import KUSTOMIZE, container, kustomize, pod_environment, pod_spec
from tests.support.ports import free_port
from tests.support.upstream import FakeUpstream

REPO = Path(__file__).resolve().parents[2]
OPENVINO_BUILT = Path.home() / ".cache" / "tiergate" / "openvino"

# Every mount read-only in this namespace; then tmpfs where the pod has writable volumes. A path
# that does not exist on the host gets a scaffold tmpfs on its nearest existing ancestor (made
# read-only again once the path exists), except /etc/tiergate: a scaffold would hide /etc, so that
# one empty directory is made on the host.
NAMESPACE_SCRIPT = r"""
set -euo pipefail
mkdir -p /etc/tiergate
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do
  case "$m" in /proc*|/sys*|/dev*) continue;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
scaffolds=()
writable() {
  local p=$1 a=$1
  if ! mkdir -p "$p" 2>/dev/null; then
    while [ ! -d "$a" ]; do a=$(dirname "$a"); done
    mount -t tmpfs -o mode=755 scaffold "$a"; scaffolds+=("$a"); mkdir -p "$p"
  fi
  mount -t tmpfs -o "mode=${2:-1777}" tmpfs "$p"
}
# Code the test runs from (a checkout under /tmp, say) that an emptyDir would hide: bound aside
# now, bound back read-only once the emptyDirs are mounted.
kept=()
for k in $KEEP; do
  for p in $EMPTY_DIRS; do
    case "$k/" in
      "$p"/*) mkdir -p "$STASH$k"; mount --bind "$k" "$STASH$k"; kept+=("$k"); break;;
    esac
  done
done
mount -t tmpfs -o mode=755 config /etc/tiergate
cp "$CONFIG" /etc/tiergate/tiergate.yaml && mount -o remount,ro /etc/tiergate
for p in $EMPTY_DIRS; do writable "$p"; done
for a in "${scaffolds[@]}"; do mount -o remount,ro "$a"; done
for k in "${kept[@]}"; do
  mkdir -p "$k"; mount --bind "$STASH$k" "$k"; mount -o remount,bind,ro "$k"
done
if [ -n "$SEED_FROM" ]; then cp -R "$SEED_FROM/." "$SEED_TO/"; fi
exec $TRACE $AS_USER "$@"
"""


def readable_by_anyone(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents])


def gateway_pid(tracer: int) -> int:
    """The traced gateway: strace's child once it has started it, else the process itself."""
    children = Path(f"/proc/{tracer}/task/{tracer}/children")
    found = children.read_text().split() if children.exists() else []
    return int(found[0]) if found else tracer


@pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_gateway_serves_on_a_read_only_root_with_the_pods_empty_dirs(
    small: FakeUpstream, tmp_path: Path
) -> None:
    manifest = kustomize(KUSTOMIZE / "base")
    deployment = manifest.gateway()
    gateway = container(deployment, "gateway")
    empty = {v["name"] for v in pod_spec(deployment)["volumes"] if "emptyDir" in v}
    empty_dirs = [m["mountPath"] for m in gateway["volumeMounts"] if m["name"] in empty]
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "config"]
    config = tmp_path / "tiergate.yaml"
    config.write_text(
        manifest.get("ConfigMap", volume["configMap"]["name"])["data"]["tiergate.yaml"]
    )

    interpreter = Path(os.path.realpath(sys.executable))
    stash = tempfile.mkdtemp(prefix="tiergate-keep-", dir="/dev/shm")
    env = {k: v for k, v in pod_environment(gateway).items() if not v.startswith("<secret:")}
    env |= {
        "OPENAI_API_KEY": "sk-test",
        "TIERGATE_ADMIN_KEY": "admin-key",
        "TIERGATE_APP_KEY": "app-key",
        "TIERGATE_SMALL_API_BASE": small.url,
        "TIERGATE_SMALL_MODEL": "small-model",
        "PATH": os.environ["PATH"],
        "HOME": "/home/tiergate",  # as in the image; not writable there either
        "PYTHONPATH": str(REPO),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
        "CONFIG": str(config),
        "EMPTY_DIRS": " ".join(empty_dirs),
        "KEEP": " ".join(str(p) for p in (REPO, Path(sys.prefix), interpreter.parents[1])),
        "STASH": stash,
        "SEED_FROM": str(OPENVINO_BUILT) if OPENVINO_BUILT.is_dir() else "",
        "SEED_TO": env_value(gateway, "TIERGATE_OPENVINO_CACHE"),
        "TRACE": "strace -f -qq -e trace=%file -e signal=none" if shutil.which("strace") else "",
        "AS_USER": "",
    }
    uid = pod_spec(deployment)["securityContext"]["runAsUser"]
    # The pod's user must reach the code, the venv and the interpreter the venv links to (a
    # pyenv Python under /root is out of its reach): otherwise the test runs as root.
    if all(readable_by_anyone(p) for p in (REPO, Path(sys.prefix), interpreter)):
        env["AS_USER"] = f"setpriv --reuid {uid} --regid {uid} --clear-groups"
    tiergate = Path(sys.prefix) / "bin" / "tiergate"
    args = [str(tiergate), *gateway["args"]]
    args[args.index("--host") + 1] = "127.0.0.1"
    port = free_port()
    args[args.index("--port") + 1] = str(port)
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-c",
                NAMESPACE_SCRIPT,
                "namespace",
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the gateway did not start: {log.read_text()[-3000:]}")
        headers = {"authorization": "Bearer app-key", "x-tiergate-tier": "small"}
        body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
        codes = [
            httpx.post(
                f"{base}/v1/chat/completions", json=body, headers=headers, timeout=30
            ).status_code
            for _ in range(10)
        ]
        assert codes == [200] * 10, log.read_text()[-3000:]
        time.sleep(1.0)  # the log writer lingers before it writes
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert "tiergate_request_log_rows_total 10.0" in metrics.splitlines()
        # The rows are in the emptyDir, seen through the gateway's own mount namespace.
        root = Path(f"/proc/{gateway_pid(process.pid)}/root")
        assert (root / env["TIERGATE_LOG_DIR"].lstrip("/") / "requests.db").is_file()
    finally:
        if process.poll() is None:
            os.kill(gateway_pid(process.pid), signal.SIGTERM)
        process.wait(timeout=60)
        shutil.rmtree(stash, ignore_errors=True)
    output = log.read_text()
    refused = [
        line
        for line in output.splitlines()
        if ("EROFS" in line or "Read-only file system" in line) and "__pycache__" not in line
    ]
    assert not refused, "\n".join(refused[:20])
    print(f"ran as {'uid ' + str(uid) if env['AS_USER'] else 'root'}; command: {shlex.join(args)}")


def env_value(c: dict[str, object], name: str) -> str:
    return pod_environment(c)[name]  # type: ignore[arg-type]
