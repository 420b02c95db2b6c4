"""deploy/kubernetes rendered by the real `kubectl kustomize`, checked offline overlay by overlay.

There is no cluster here, so a manifest is checked for what would break it on one: the built-in
kinds against the Kubernetes API's own schemas (kubernetes-validate ships them, strict mode: an
unknown or misspelt field fails), the gateway's pod against what the gateway needs (probes, drain
timing, read-only root with an emptyDir for every path it writes), the tiergate.yaml inside the
ConfigMap through the gateway's own config loader with the pod's environment, and every name one
object uses to find another (Service selectors, ports, Secrets, the small tier's URL, the
InferencePool's pods and picker). Custom resources (ServiceMonitor, PrometheusRule, Gateway,
HTTPRoute, InferencePool) have no schema in kubernetes-validate and their CRDs are not shipped by
any package installed here, so their required fields and references are checked by hand below.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from gateway.config import load_config
from tests.support.kubernetes import (
    BRING_YOUR_OWN_SMALL_TIER,
    CUSTOM_KINDS,
    KUBERNETES_VERSIONS,
    KUSTOMIZE,
    OVERLAYS,
    README,
    REPO,
    VAR_REF,
    WRITE_DIRS,
    Manifest,
    container,
    kustomize,
    labels,
    pod_environment,
    pod_spec,
)


@pytest.fixture(scope="module", params=OVERLAYS)
def manifest(request: pytest.FixtureRequest) -> Manifest:
    return kustomize(KUSTOMIZE / "overlays" / request.param)


def readme_section(name: str) -> str:
    text = README.read_text()
    assert f"<!-- section: {name} -->" in text, f"{README} has no section {name!r}"
    return text.split(f"<!-- section: {name} -->", 1)[1].split("<!-- section:", 1)[0]


def is_under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


# --- rendering and schemas -----------------------------------------------------------------------


def test_base_renders() -> None:
    base = kustomize(KUSTOMIZE / "base")
    assert {o["kind"] for o in base.objects} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
    }


def test_every_overlay_renders_into_one_namespace(manifest: Manifest) -> None:
    namespaces = {o["metadata"].get("namespace") for o in manifest.objects}
    assert namespaces == {"tiergate"}, namespaces


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_kinds_validate_against_the_kubernetes_schemas(
    manifest: Manifest, version: str
) -> None:
    custom = []
    for obj in manifest.objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.append((obj["apiVersion"], obj["kind"]))
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {where}: {exc.message}")
    # Only the custom resources may lack a schema; they are checked by hand further down.
    assert set(custom) <= CUSTOM_KINDS, set(custom) - CUSTOM_KINDS


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The schema check has teeth: one wrong field name fails it."""
    deployment = kustomize(KUSTOMIZE / "overlays" / "production").gateway()
    broken = json.loads(json.dumps(deployment))
    gateway = container(broken, "gateway")
    gateway["readinessProbes"] = gateway.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


# --- the gateway's pod ---------------------------------------------------------------------------


def test_gateway_image_command_and_replicas(manifest: Manifest) -> None:
    deployment = manifest.gateway()
    gateway = container(deployment, "gateway")
    image = gateway["image"]
    name, _, tag = image.rpartition(":")
    assert name.rsplit("/", 1)[-1] == "tiergate" and tag and tag != "latest", image
    assert [c["image"] for c in pod_spec(deployment)["initContainers"]] == [image]
    assert gateway["command"] == ["tiergate"]
    assert gateway["args"][:3] == ["serve", "--config", "/etc/tiergate/tiergate.yaml"]
    assert deployment["spec"]["replicas"] >= 2
    hpa = manifest.get("HorizontalPodAutoscaler", "tiergate")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "tiergate"
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_gateway_probes(manifest: Manifest) -> None:
    gateway = container(manifest.gateway(), "gateway")
    port_names = {p["name"] for p in gateway["ports"]}
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = gateway[probe]["httpGet"]
        assert get["port"] in port_names, probe
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/health",
        "readinessProbe": "/ready",
        "livenessProbe": "/health",
    }
    startup = gateway["startupProbe"]
    # The router and its encoder load before anything answers: at least two minutes for that.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_gateway_resources(manifest: Manifest) -> None:
    resources = container(manifest.gateway(), "gateway")["resources"]
    for kind in ("cpu", "memory"):
        assert kind in resources["requests"] and kind in resources["limits"], kind


def test_drain_fits_in_the_grace_period(manifest: Manifest) -> None:
    """SIGTERM comes after preStop, and SIGKILL at terminationGracePeriodSeconds counted from the
    start: the gateway must get its whole drain grace between the two."""
    deployment = manifest.gateway()
    gateway = container(deployment, "gateway")
    command = gateway["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    pre_stop = int(command[1])
    drain = int(pod_environment(gateway)["TIERGATE_DRAIN_GRACE_S"])
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert pre_stop >= 3, "endpoint removal needs a few seconds to propagate"
    assert grace > pre_stop + drain, (grace, pre_stop, drain)


def test_every_container_is_non_root_read_only_and_without_capabilities(manifest: Manifest) -> None:
    for deployment in manifest.all("Deployment"):
        pod = pod_spec(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True, deployment["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"] + pod.get("initContainers", []):
            where = f"{deployment['metadata']['name']}/{c['name']}"
            context = c["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "requests" in c["resources"] and "limits" in c["resources"], where
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), where


def test_every_path_the_gateway_writes_is_an_empty_dir_listed_in_the_readme(
    manifest: Manifest,
) -> None:
    deployment = manifest.gateway()
    gateway = container(deployment, "gateway")
    env = pod_environment(gateway)
    empty_dirs = {v["name"] for v in pod_spec(deployment)["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in gateway["volumeMounts"]}
    written = [env[name] for name in WRITE_DIRS]
    log_url = env.get("TIERGATE_REQUEST_LOG_URL", "")
    if log_url.startswith("sqlite:///"):
        written.append(str(Path(log_url.removeprefix("sqlite://")).parent))
    for path in written:
        volume = [name for mount, name in mounts.items() if is_under(path, mount)]
        assert volume and volume[0] in empty_dirs, f"{path} is not on an emptyDir"
    listed = set(re.findall(r"`(/[^`]+)`", readme_section("emptydir")))
    for mount, name in mounts.items():
        if name in empty_dirs:
            assert mount in listed, f"README's emptyDir list lacks {mount}"
    # The OpenVINO cache is seeded from the image into the same volume before the gateway starts.
    (seed,) = pod_spec(deployment)["initContainers"]
    cache = env["TIERGATE_OPENVINO_CACHE"]
    assert seed["volumeMounts"] == [{"name": mounts[cache], "mountPath": cache}]
    assert seed["command"][-1].rstrip("/") == cache


def test_environment_references_only_earlier_entries(manifest: Manifest) -> None:
    """The kubelet expands `$(VAR)` from entries above it only; a later one stays literal."""
    for deployment in manifest.all("Deployment"):
        for c in pod_spec(deployment)["containers"]:
            seen: set[str] = set()
            for entry in c.get("env", []):
                for name in VAR_REF.findall(entry.get("value", "")):
                    assert name in seen, f"{c['name']}: {entry['name']} uses $({name}) before it"
                seen.add(entry["name"])


# --- the config inside the ConfigMap -------------------------------------------------------------


def test_config_loads_with_the_pods_environment(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = manifest.gateway()
    gateway = container(deployment, "gateway")
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "config"]
    config_map = manifest.get("ConfigMap", volume["configMap"]["name"])
    path = tmp_path / "tiergate.yaml"
    path.write_text(config_map["data"]["tiergate.yaml"])
    env = pod_environment(gateway)
    for name in [n for n in os.environ if n.startswith("TIERGATE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config(path)

    # Every key and upstream key the config names comes from the pod's environment.
    named = [k.key_env for k in config.keys] + [d.api_key_env for d in config.deployments.values()]
    for variable in filter(None, named):
        assert variable in env, f"the config reads {variable}; the Deployment does not set it"
    # Replicas share counters and the request log: both are set in every overlay.
    assert config.redis_url, "rate limits would be counted per replica"
    log_url = env["TIERGATE_REQUEST_LOG_URL"]
    assert log_url.startswith(("postgresql://", "<secret:")), log_url

    (small,) = [config.deployments[n] for n in config.tiers["small"].deployments]
    assert small.api_base == env["TIERGATE_SMALL_API_BASE"]
    if manifest.overlay not in BRING_YOUR_OWN_SMALL_TIER:
        assert_small_tier_reachable(manifest, small.api_base or "")
    for server in small_tier_servers(manifest):
        args = dict(a.removeprefix("--").split("=", 1) for a in container(server, "vllm")["args"])
        assert small.model == f"hosted_vllm/{args['served-model-name']}"
        assert small.capabilities.max_context_tokens == int(args["max-model-len"])


def small_tier_servers(manifest: Manifest) -> list[dict[str, Any]]:
    return [d for d in manifest.all("Deployment") if d["metadata"]["name"] == "tiergate-small"]


def assert_small_tier_reachable(manifest: Manifest, api_base: str) -> None:
    """The small tier's host is a Service in the render with that port, or, for the llm-d overlay,
    the Service Istio creates for the Gateway (`<gateway>-<class>`)."""
    url = urlsplit(api_base)
    services = {s["metadata"]["name"]: s for s in manifest.all("Service")}
    if url.hostname in services:
        ports = [p["port"] for p in services[url.hostname]["spec"]["ports"]]
        assert url.port in ports, (api_base, ports)
        return
    gateways = {
        f"{g['metadata']['name']}-{g['spec']['gatewayClassName']}": g
        for g in manifest.all("Gateway")
    }
    assert url.hostname in gateways, f"{api_base}: no Service or Gateway of that name"
    assert url.port in [ls["port"] for ls in gateways[url.hostname]["spec"]["listeners"]]


# --- names that find other objects ---------------------------------------------------------------


def test_service_selectors_and_ports_find_pods(manifest: Manifest) -> None:
    pods = [(labels(d), pod_spec(d)) for d in manifest.all("Deployment")]
    for service in manifest.all("Service"):
        selector = service["spec"]["selector"]
        matched = [spec for labels, spec in pods if selector.items() <= labels.items()]
        assert matched, f"Service {service['metadata']['name']} selects no pod"
        ports = [p for spec in matched for c in spec["containers"] for p in c["ports"]]
        targets = {p.get("name") for p in ports} | {p["containerPort"] for p in ports}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in targets, (service["metadata"]["name"], port)
    gateway_labels = labels(manifest.gateway())
    pdb = manifest.get("PodDisruptionBudget", "tiergate")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= gateway_labels.items()
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < manifest.gateway()["spec"]["replicas"]


def test_secrets_are_referenced_never_shipped_and_documented(manifest: Manifest) -> None:
    assert not manifest.all("Secret"), "a Secret's values would be committed"
    documented = readme_section("secrets")
    for deployment in manifest.all("Deployment"):
        for c in pod_spec(deployment)["containers"]:
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    assert ref["name"] in documented and ref["key"] in documented, ref


def test_scrape_annotations_and_dashboard(manifest: Manifest) -> None:
    deployment = manifest.gateway()
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    ports = [p["containerPort"] for p in container(deployment, "gateway")["ports"]]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in ports
    assert annotations["prometheus.io/path"] == "/metrics"
    dashboard = manifest.get("ConfigMap", "tiergate-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = REPO / "deploy" / "grafana" / "dashboards" / "tiergate.json"
    assert json.loads(dashboard["data"]["tiergate.json"]) == json.loads(shipped.read_text())


# --- custom resources: required fields and references, by hand ----------------------------------


def test_service_monitor_and_rules_for_the_prometheus_operator() -> None:
    manifest = kustomize(KUSTOMIZE / "overlays" / "monitoring")
    monitor = manifest.get("ServiceMonitor", "tiergate")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = manifest.get("Service", "tiergate")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"
    rules = manifest.get("PrometheusRule", "tiergate")
    alerts = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rules["spec"]["groups"] == alerts["groups"], "copy deploy/prometheus/alerts.yml again"


def test_inference_pool_gateway_and_route() -> None:
    """Gateway API Inference Extension v1 (inference.networking.k8s.io/v1): the pool's required
    fields and limits as its CRD states them, and every reference resolved inside the render."""
    manifest = kustomize(KUSTOMIZE / "overlays" / "llm-d")
    (pool,) = manifest.all("InferencePool")
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    spec = pool["spec"]
    assert set(spec) <= {"selector", "targetPorts", "appProtocol", "endpointPickerRef"}
    numbers = [p["number"] for p in spec["targetPorts"]]
    assert 1 <= len(numbers) <= 8 and len(set(numbers)) == len(numbers)
    assert all(1 <= n <= 65535 for n in numbers)
    picker = spec["endpointPickerRef"]
    assert set(picker) <= {"group", "kind", "name", "port", "failureMode"} and picker["name"]
    assert picker.get("failureMode", "FailClose") in ("FailOpen", "FailClose")
    assert picker.get("kind", "Service") == "Service"
    epp = manifest.get("Service", picker["name"])
    assert picker["port"]["number"] in [p["port"] for p in epp["spec"]["ports"]]

    selector = spec["selector"]["matchLabels"].items()
    members = [d for d in manifest.all("Deployment") if selector <= labels(d).items()]
    assert [d["metadata"]["name"] for d in members] == ["tiergate-small"]
    served = [p["containerPort"] for p in container(members[0], "vllm")["ports"]]
    assert set(numbers) <= set(served)
    assert members[0]["spec"]["replicas"] >= 2, "a pool of one leaves the picker no choice"
    args = container(manifest.get("Deployment", picker["name"]), "epp")["args"]
    assert f"--pool-name={pool['metadata']['name']}" in args

    (route,) = manifest.all("HTTPRoute")
    gateways = {g["metadata"]["name"]: g for g in manifest.all("Gateway")}
    for parent in route["spec"]["parentRefs"]:
        gateway = gateways[parent["name"]]
        assert gateway["spec"]["gatewayClassName"]
        for listener in gateway["spec"]["listeners"]:
            assert listener["name"] and listener["port"]
            assert listener["protocol"] in ("HTTP", "HTTPS")
    backends = [b for rule in route["spec"]["rules"] for b in rule["backendRefs"]]
    pool_ref = {"group": "inference.networking.k8s.io", "kind": "InferencePool"}
    assert backends == [{**pool_ref, "name": pool["metadata"]["name"]}]


def test_vllm_asks_for_one_gpu() -> None:
    manifest = kustomize(KUSTOMIZE / "overlays" / "vllm")
    (server,) = small_tier_servers(manifest)
    resources = container(server, "vllm")["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == 1
    volumes = {v["name"]: v for v in pod_spec(server)["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["readOnly"] is True
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
