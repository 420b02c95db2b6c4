"""Rendering deploy/kubernetes with the real `kubectl kustomize`, and reading what it rendered.

Shared by the manifest checks (tests/deploy/test_kubernetes.py) and the read-only pod test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "deploy" / "kubernetes"
README = KUSTOMIZE / "README.md"
OVERLAYS = ("self-contained", "production", "monitoring", "vllm", "llm-d")
# Overlays whose small tier is the operator's own Service `tiergate-small`, outside the render.
BRING_YOUR_OWN_SMALL_TIER = ("production", "monitoring")
# The oldest Kubernetes minor these manifests claim, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("inference.networking.k8s.io/v1", "InferencePool"),
}
# The environment variables that name a directory the gateway writes (gateway.settings,
# router.openvino, router.training.embeddings; TMPDIR for Python's tempfile).
WRITE_DIRS = ("TIERGATE_LOG_DIR", "TIERGATE_OPENVINO_CACHE", "TIERGATE_CACHE_DIR", "TMPDIR")
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class Manifest:
    """One overlay's rendered objects, with look-ups by kind and name."""

    overlay: str
    objects: tuple[dict[str, Any], ...]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.all(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name!r}, found {len(found)}"
        return found[0]

    def gateway(self) -> dict[str, Any]:
        return self.get("Deployment", "tiergate")


def kustomize(directory: Path) -> Manifest:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl (which carries kustomize) is not installed: deploy/local/test-prereqs.sh"
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
    objects = tuple(o for o in yaml.safe_load_all(result.stdout) if o)
    return Manifest(directory.name, objects)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def labels(workload: dict[str, Any]) -> dict[str, str]:
    """The labels of the workload's pods."""
    found: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return found


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    return found


def pod_environment(c: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: literal values with `$(VAR)` expanded
    from earlier entries; a Secret's value stands in as `<secret:name/key>`."""
    env: dict[str, str] = {}
    for entry in c.get("env", []):
        if "value" in entry:
            value = entry["value"]
            env[entry["name"]] = VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = f"<secret:{ref['name']}/{ref['key']}>"
    return env
