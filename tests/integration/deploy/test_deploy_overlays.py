"""The overlays (deploy/k8s/overlays/*) render, are schema-valid, and wire the add-ons right.

Built-in kinds are validated offline with kubernetes-validate (strict). The custom
resources (KEDA ScaledObject/TriggerAuthentication, Prometheus Operator ServiceMonitor/
PrometheusRule) have no schema there, so their key fields are checked here by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from service.pipeline.layout import Layout
from service.settings import Settings
from tests.integration.deploy.test_deploy import (
    APP,
    K8S_VERSIONS,
    KAFKA_SECRET,
    REPO,
    render,
    schema_errors,
)

OVERLAYS = REPO / "deploy" / "k8s" / "overlays"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
NAMES = sorted(p.name for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())
CUSTOM = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}
Docs = list[dict[str, Any]]


def test_both_overlays_exist() -> None:
    assert NAMES == ["production", "staging"]


@pytest.fixture(scope="module", params=NAMES)
def overlay(request: pytest.FixtureRequest) -> tuple[str, Docs]:
    return request.param, render(OVERLAYS / request.param)


@pytest.fixture(scope="module")
def production() -> Docs:
    return render(OVERLAYS / "production")


def one(docs: Docs, kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def config_of(docs: Docs) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap")["data"]
    return data


def container_of(docs: Docs) -> dict[str, Any]:
    first: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return first


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_overlay_built_in_kinds_are_schema_valid(overlay: tuple[str, Docs], version: str) -> None:
    name, docs = overlay
    errors = schema_errors([d for d in docs if d["kind"] not in CUSTOM], version)
    assert not errors, f"{name} invalid for Kubernetes {version}:\n" + "\n".join(errors)


def test_overlay_renders_everything_in_one_namespace(overlay: tuple[str, Docs]) -> None:
    name, docs = overlay
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "NetworkPolicy", "ScaledObject", "ServiceMonitor", "PrometheusRule"} <= (
        kinds
    )
    assert len({d["metadata"]["namespace"] for d in docs}) == 1
    assert all(d["metadata"]["labels"]["app.kubernetes.io/name"] == APP for d in docs)
    assert "change-me.invalid" not in config_of(docs)["KAFKA_BOOTSTRAP_SERVERS"], name


def test_the_service_accepts_each_overlay(overlay: tuple[str, Docs], tmp_path: Path) -> None:
    _, docs = overlay
    container = container_of(docs)
    literal_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env = {**config_of(docs), **literal_env, "SECRETS_DIR": str(tmp_path)}
    env |= {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}  # from the Secret
    settings = Settings.from_env(env)
    assert settings.bootstrap_servers == env["KAFKA_BOOTSTRAP_SERVERS"]
    assert settings.topic_replication_factor == int(env.get("TOPIC_REPLICATION_FACTOR", "1"))


def test_scaledobject_follows_the_delivery_stage_up_to_the_work_partition_count(
    overlay: tuple[str, Docs], tmp_path: Path
) -> None:
    """KEDA watches the lag more pods can reduce: the delivery stage's group on the
    work topic (service/pipeline/layout.py), never more pods than its partitions."""
    _, docs = overlay
    scaled, deployment, config = one(docs, "ScaledObject"), one(docs, "Deployment"), config_of(docs)
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["kind"] == "Deployment"
    assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    partitions = int(scaled["metadata"]["annotations"]["trailspark.io/work-partitions"])
    assert spec["maxReplicaCount"] == partitions
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    # `kubectl apply` must not fight the autoscaler's floor.
    assert deployment["spec"]["replicas"] == spec["minReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    literal_env = {e["name"]: e["value"] for e in container_of(docs)["env"] if "value" in e}
    env = {**config, **literal_env, "SECRETS_DIR": str(tmp_path)}
    env |= {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    layout = Layout.of(Settings.from_env(env))
    assert meta["consumerGroup"] == layout.work_group == config["KAFKA_CONSUMER_GROUP"] + ".work"
    assert meta["topic"] == layout.work == literal_env["TOPIC_WORK"]
    assert meta["allowIdleConsumers"] == "false"
    assert int(meta["lagThreshold"]) > 0
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]


def test_networkpolicy_allows_egress_only_to_kafka_dns_and_https(
    overlay: tuple[str, Docs],
) -> None:
    _, docs = overlay
    policy = one(docs, "NetworkPolicy")["spec"]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    kafka_ports = {
        int(server.rsplit(":", 1)[1])
        for server in config_of(docs)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    }
    allowed = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert allowed == {(53, "UDP"), (53, "TCP"), (443, "TCP")} | {(p, "TCP") for p in kafka_ports}
    for rule in policy["egress"]:
        assert rule["to"], "an egress rule without `to` allows every destination"
        for peer in rule["to"]:
            if "ipBlock" in peer:  # HTTPS to the internet, never to the cloud metadata API
                assert [p["port"] for p in rule["ports"]] == [443]
                assert "169.254.0.0/16" in peer["ipBlock"]["except"]
    (ingress,) = policy["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["http"]


def test_servicemonitor_scrapes_the_services_http_port(overlay: tuple[str, Docs]) -> None:
    _, docs = overlay
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_prometheusrule_wraps_the_rule_file_unchanged(overlay: tuple[str, Docs]) -> None:
    _, docs = overlay
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    assert rule["spec"]["groups"] == groups, "stale: run `make prometheusrule`"


def test_production_uses_sasl_ssl_scram_everywhere(production: Docs) -> None:
    config = config_of(production)
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    plaintext = [
        f"{doc['kind']}/{doc['metadata']['name']}"
        for doc in production
        if "PLAINTEXT" in yaml.safe_dump(doc)
    ]
    assert not plaintext, f"PLAINTEXT in {plaintext}"
    meta = one(production, "ScaledObject")["spec"]["triggers"][0]
    assert meta["metadata"]["sasl"] == "scram_sha512"
    assert meta["metadata"]["tls"] == "enable"
    auth = one(production, "TriggerAuthentication")
    assert meta["authenticationRef"]["name"] == auth["metadata"]["name"]
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        "username": (KAFKA_SECRET, "KAFKA_SASL_USERNAME"),
        "password": (KAFKA_SECRET, "KAFKA_SASL_PASSWORD"),
    }
    env = {e["name"]: e for e in container_of(production)["env"]}
    for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is False, name
    assert env["TOPIC_REPLICATION_FACTOR"]["value"] == "3"


def test_production_runs_more_replicas_than_staging(production: Docs) -> None:
    staging = render(OVERLAYS / "staging")
    prod, stage = one(production, "ScaledObject")["spec"], one(staging, "ScaledObject")["spec"]
    assert prod["minReplicaCount"] > stage["minReplicaCount"]
    assert prod["maxReplicaCount"] > stage["maxReplicaCount"]
