"""The Kubernetes base in deploy/k8s/base renders, is schema-valid, and is wired to the contract.

Renders with the real `kubectl kustomize` (a missing kubectl is a failure, not a skip),
validates every document offline with kubernetes-validate's strict schemas, then checks
the wiring the service depends on (contract §7): command, probes, SECRETS_DIR mount,
shutdown budget, and that the ConfigMap only holds settings the contract defines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.errors import SettingsError
from service.settings import Settings

REPO = Path(__file__).resolve().parents[3]
BASE = REPO / "deploy" / "k8s" / "base"
EXAMPLES = REPO / "deploy" / "k8s" / "examples"
# In CI the contract sits beside the clone (../shared/CONTRACT.md from the repo root).
CONTRACT = REPO.parent / "shared" / "CONTRACT.md"

APP = "trailspark-destinations"
CREDENTIALS_SECRET = "trailspark-destinations-credentials"
KAFKA_SECRET = "trailspark-destinations-kafka"

# The oldest version kubernetes-validate>=1.30 (pyproject) is sure to ship, and the newest
# schemas of the installed package.
K8S_VERSIONS = sorted({"1.30", kubernetes_validate.latest_version()})

# Environment variables the contract defines (§2, §6, §7). Used when CONTRACT.md is not
# beside the repo; when it is, the names are parsed from it and this list is checked
# against them so it cannot drift.
CONTRACT_ENV_VARS = frozenset(
    {
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CAFILE",
        "KAFKA_CONSUMER_GROUP",
        "TOPIC_EVALUATIONS",
        "TOPIC_CONFIGS",
        "TOPIC_STATUS",
        "TOPIC_RETRY",
        "TOPIC_DLQ",
        "MAX_ATTEMPTS",
        "RETRY_DEADLINE_S",
        "SECRETS_DIR",
        "CONFIG_FILE",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "HTTP_PORT",
        "SHUTDOWN_TIMEOUT_S",
    }
)

# The contract's defaults; the base ConfigMap spells them out rather than changing them.
CONTRACT_DEFAULTS = {
    "KAFKA_CONSUMER_GROUP": "trailspark-destinations",
    "TOPIC_EVALUATIONS": "trailspark.evaluations.completed",
    "TOPIC_CONFIGS": "trailspark.destinations.config",
    "TOPIC_STATUS": "trailspark.destinations.status",
    "TOPIC_RETRY": "trailspark.destinations.retry",
    "TOPIC_DLQ": "trailspark.destinations.dlq",
    "MAX_ATTEMPTS": "8",
    "RETRY_DEADLINE_S": "86400",
    "SECRETS_DIR": "/var/run/secrets/trailspark",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
    "HTTP_PORT": "8080",
    "SHUTDOWN_TIMEOUT_S": "25",
}


def _contract_env_vars() -> frozenset[str]:
    if not CONTRACT.is_file():
        return CONTRACT_ENV_VARS
    text = CONTRACT.read_text(encoding="utf-8")
    # Every `UPPER_SNAKE` name in backticks (env vars, plus a few enum values such as
    # SASL_SSL, which are harmless here).
    names = frozenset(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", text))
    missing = CONTRACT_ENV_VARS - names
    assert not missing, f"CONTRACT_ENV_VARS names that {CONTRACT} does not define: {missing}"
    return names


def _kubectl() -> str:
    # `make kubectl` (a dependency of `make test`) puts one in the venv when PATH has none.
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    exe = (
        os.environ.get("KUBECTL")
        or shutil.which("kubectl")
        or (str(venv_kubectl) if venv_kubectl.is_file() else None)
    )
    if exe is None:
        pytest.fail(
            "kubectl not found on PATH: test_deploy.py renders deploy/k8s/base with "
            "`kubectl kustomize` (run `make kubectl`, or set KUBECTL=/path/to/kubectl)",
            pytrace=False,
        )
    return exe


def render(path: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [_kubectl(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    docs = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    assert docs, "kubectl kustomize rendered nothing"
    return docs


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(BASE)


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def config(rendered: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = _one(rendered, "ConfigMap")["data"]
    return data


@pytest.fixture(scope="module")
def pod(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = _one(rendered, "Deployment")["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    containers = pod["containers"]
    assert len(containers) == 1
    first: dict[str, Any] = containers[0]
    return first


def test_base_renders_the_expected_objects(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    )
    # No Secret in the base: credentials are provided by the cluster, never the repo.
    assert all(doc["kind"] != "Secret" for doc in rendered)
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == APP


def schema_errors(docs: list[dict[str, Any]], version: str) -> list[str]:
    errors = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            errors.append(f"{name}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{name}: {exc.message}")
    return errors


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_is_valid_against_kubernetes_schemas(
    rendered: list[dict[str, Any]], version: str
) -> None:
    examples = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]
    errors = schema_errors([*rendered, *examples], version)
    assert not errors, f"invalid for Kubernetes {version}:\n" + "\n".join(errors)


def test_container_runs_python_m_service(container: dict[str, Any]) -> None:
    assert [*container["command"], *container.get("args", [])] == ["python", "-m", "service"]
    assert container["image"].split(":")[0] == "trailspark/destinations"


def test_probes_hit_healthz_and_readyz_on_the_named_http_port(
    rendered: list[dict[str, Any]], container: dict[str, Any], config: dict[str, str]
) -> None:
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": int(config["HTTP_PORT"])}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # The startup probe must not be /readyz: catching up on configs, or waiting for a
    # missing input topic, is "not ready", never a reason to restart (contract §2, §7).
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120

    service = _one(rendered, "Service")
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", "http")]
    annotations = _one(rendered, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == config["HTTP_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_credentials_secret_is_mounted_read_only_at_secrets_dir(
    pod: dict[str, Any], container: dict[str, Any], config: dict[str, str]
) -> None:
    volumes = [
        v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == CREDENTIALS_SECRET
    ]
    assert len(volumes) == 1, f"no Secret volume for {CREDENTIALS_SECRET}"
    volume = volumes[0]
    # Whole Secret, no `items`: every key is a {credentials_ref}.json file, new keys included.
    assert "items" not in volume["secret"]
    mounts = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert len(mounts) == 1
    mount = mounts[0]
    assert mount["mountPath"] == config["SECRETS_DIR"]
    assert mount["readOnly"] is True
    # A subPath mount never sees a rotated Secret.
    assert "subPath" not in mount and "subPathExpr" not in mount
    # The non-root user reads the files through its group (fsGroup + group-read mode).
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert volume["secret"]["defaultMode"] & 0o040


def test_state_dir_is_a_writable_emptydir(pod: dict[str, Any], container: dict[str, Any]) -> None:
    env = {e["name"]: e.get("value") for e in container["env"]}
    state_dir = env["STATE_DIR"]
    assert state_dir == "/var/lib/trailspark/state"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == state_dir]
    assert not mount.get("readOnly", False)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume and volume["emptyDir"]["sizeLimit"]


def test_grace_period_outlasts_the_shutdown_timeout(
    pod: dict[str, Any], config: dict[str, str]
) -> None:
    assert pod["terminationGracePeriodSeconds"] > float(config["SHUTDOWN_TIMEOUT_S"])


def test_configmap_holds_only_contract_settings_with_their_defaults(
    rendered: list[dict[str, Any]], container: dict[str, Any], config: dict[str, str]
) -> None:
    names = _contract_env_vars()
    assert not set(config) - names, f"not contract env vars: {sorted(set(config) - names)}"
    for name, default in CONTRACT_DEFAULTS.items():
        assert config.get(name) == default, name
    assert config["KAFKA_BOOTSTRAP_SERVERS"], "needs a placeholder for overlays to replace"
    # The container reads that ConfigMap (by its hashed, generated name).
    config_name = _one(rendered, "ConfigMap")["metadata"]["name"]
    assert container["envFrom"] == [{"configMapRef": {"name": config_name}}]
    # Secret-backed env vars are contract names too, from the optional Kafka Secret.
    from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(from_secrets) == {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}
    assert set(from_secrets) <= names
    for name, ref in from_secrets.items():
        assert ref == {"name": KAFKA_SECRET, "key": name, "optional": True}
    assert not set(config) & set(from_secrets), "a setting is both in the ConfigMap and a Secret"


def test_the_service_accepts_the_configmap(config: dict[str, str], tmp_path: Path) -> None:
    # SECRETS_DIR must exist; stand in for the mounted volume.
    env = {**config, "SECRETS_DIR": str(tmp_path)}
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:  # the service would exit 2 at start
        pytest.fail(f"the service rejects the ConfigMap: {exc}")
    assert settings.http_port == int(config["HTTP_PORT"])
    assert settings.log_format == "json"


def test_rollout_hands_partitions_over(rendered: list[dict[str, Any]]) -> None:
    deployment = _one(rendered, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod_labels = spec["template"]["metadata"]["labels"]
    pdb = _one(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    selectors = {
        "Deployment": spec["selector"]["matchLabels"],
        "PodDisruptionBudget": pdb["spec"]["selector"]["matchLabels"],
        "Service": _one(rendered, "Service")["spec"]["selector"],
    }
    for kind, selector in selectors.items():
        assert selector.items() <= pod_labels.items(), f"{kind} selector misses the pods"
    assert (
        spec["template"]["spec"]["serviceAccountName"]
        == (_one(rendered, "ServiceAccount")["metadata"]["name"])
    )


def test_pod_is_locked_down(pod: dict[str, Any], container: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][bound].keys(), bound
