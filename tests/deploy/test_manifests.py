"""Every Kustomize overlay renders and passes the schema and rule checks, and the checks
catch what they are there for (each negative case breaks one rule on a rendered copy)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from cantus.deploy.manifests import OVERLAYS, SCHEMA_DIR, check, render


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def _messages(overlay: str, docs: list[dict]) -> list[str]:
    return [str(problem) for problem in check(docs, overlay)]


def _find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_overlay_is_clean(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered
    assert _messages(overlay, docs) == []
    kinds = {doc["kind"] for doc in docs}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject", "ServiceMonitor"} <= kinds
    assert {"Deployment", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"} <= kinds


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.rglob("*.yaml")), ids=lambda p: p.name)
def test_committed_schemas_are_json_schemas(path: Path) -> None:
    jsonschema.Draft7Validator.check_schema(yaml.safe_load(path.read_text()))


def _broken(docs: list[dict], change) -> list[dict]:  # type: ignore[no-untyped-def]
    copied = copy.deepcopy(docs)
    change(copied)
    return copied


def test_a_misspelt_crd_field_fails(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered

    def misspell(docs: list[dict]) -> None:
        spec = _find(docs, "ScaledObject", "cantus-melody")["spec"]
        spec["maxReplicas"] = spec.pop("maxReplicaCount")

    assert any("maxReplicas" in m for m in _messages(overlay, _broken(docs, misspell)))


def test_a_wrong_core_field_fails(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered

    def wrong(docs: list[dict]) -> None:
        _find(docs, "Deployment", "cantus-harmony")["spec"]["replicas"] = "two"

    assert any("Deployment/cantus-harmony" in m for m in _messages(overlay, _broken(docs, wrong)))


def test_scaling_above_the_partitions_fails(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered

    def scale_up(docs: list[dict]) -> None:
        _find(docs, "ScaledObject", "cantus-render")["spec"]["maxReplicaCount"] = 99

    messages = _messages(overlay, _broken(docs, scale_up))
    assert any("maxReplicaCount 99 is above" in m for m in messages)


def test_a_topic_off_the_partition_count_fails(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered

    def shrink(docs: list[dict]) -> None:
        _find(docs, "KafkaTopic", "dead-letter")["spec"]["partitions"] = 1

    messages = _messages(overlay, _broken(docs, shrink))
    assert any("cantus.dead-letter has 1 partitions" in m for m in messages)


def test_a_segment_retention_off_the_gateway_window_fails(
    rendered: tuple[str, list[dict]],
) -> None:
    overlay, docs = rendered  # the rendered ones agree: test_overlay_is_clean

    def lengthen(docs: list[dict]) -> None:
        _find(docs, "KafkaTopic", "station-segment")["spec"]["config"]["retention.ms"] = 7200000

    messages = _messages(overlay, _broken(docs, lengthen))
    assert any("retention.ms is 7200000, CANTUS_STATION_SEGMENT_RETENTION_S" in m for m in messages)


def test_a_missing_topic_fails(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered
    without = [
        d
        for d in docs
        if not (d["kind"] == "KafkaTopic" and d["metadata"]["name"] == "dead-letter")
    ]
    assert any("no KafkaTopic for cantus.dead-letter" in m for m in _messages(overlay, without))


def test_missing_pdb_probe_and_writable_root_fail(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered

    def weaken(docs: list[dict]) -> None:
        container = _find(docs, "Deployment", "cantus-lyric")["spec"]["template"]["spec"][
            "containers"
        ][0]
        del container["readinessProbe"]
        container["securityContext"]["readOnlyRootFilesystem"] = False
        docs.remove(_find(docs, "PodDisruptionBudget", "cantus-lyric"))

    messages = " | ".join(_messages(overlay, _broken(docs, weaken)))
    assert "no readinessProbe" in messages
    assert "root filesystem is not read-only" in messages
    assert "Deployment/cantus-lyric: no PodDisruptionBudget" in messages


def test_committed_secret_values_fail(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "leak"},
        "stringData": {"a": "b"},
    }
    assert any("Secret/leak" in m for m in _messages(overlay, [*docs, secret]))


def test_settings_the_code_rejects_fail(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered

    def bad_setting(docs: list[dict]) -> None:
        _find(docs, "ConfigMap", "cantus-settings")["data"]["CANTUS_TRITON_GRPC"] = "triton"

    messages = _messages(overlay, _broken(docs, bad_setting))
    assert any("Settings rejects it" in m and "triton_grpc" in m for m in messages)


def test_production_promises() -> None:
    docs = render("production")
    triton = _find(docs, "Deployment", "cantus-triton")["spec"]["template"]["spec"]
    assert triton["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    config = _find(docs, "ConfigMap", "cantus-settings")["data"]
    assert config["CANTUS_GATEWAY_REQUIRE_AUTH"] == "true"
    assert config["CANTUS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"

    def unsecure(docs: list[dict]) -> None:
        _find(docs, "ConfigMap", "cantus-settings")["data"]["CANTUS_GATEWAY_REQUIRE_AUTH"] = "false"
        spec = _find(docs, "Deployment", "cantus-triton")["spec"]["template"]["spec"]
        del spec["tolerations"]

    messages = " | ".join(_messages("production", _broken(docs, unsecure)))
    assert "CANTUS_GATEWAY_REQUIRE_AUTH is not true" in messages
    assert "nvidia.com/gpu taint" in messages


def test_dev_runs_triton_on_the_cpu() -> None:
    spec = _find(render("dev"), "Deployment", "cantus-triton")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"].get("limits", {})
    assert "--model-config-name=gpu" not in spec["containers"][0]["args"]
