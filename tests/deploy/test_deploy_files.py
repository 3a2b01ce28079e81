"""deploy/ without a Docker engine or a cluster: the Dockerfile through hadolint, the compose
file and the GitHub workflow against their JSON schemas (check-jsonschema's vendored
Compose Specification and GitHub workflow schemas), the Kubernetes manifests through
kubernetes-validate, the OpenTelemetry Collector configurations checked for structure — and
all of them against what tracebaton and its demo shop really accept."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

import tracebaton.demo.__main__ as demo_main
from tracebaton.demo import SERVICES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
COLLECTOR_CONFIGS = ["otel-collector.yaml", "otel-collector-filter.yaml"]
PORTS = {4317, 4318, 7357}


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found is not None, f"{name} is missing: it comes with the dev extra (pip install -e '.[dev]')"
    return found


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def known_variables() -> set[str]:
    """The TRACEBATON_* variables tracebaton reads, as the README's configuration table lists them."""
    return set(re.findall(r"`(TRACEBATON_[A-Z_]+)`", (REPO / "README.md").read_text()))


def check_schema(schema: str, path: Path) -> None:
    done = subprocess.run([tool("check-jsonschema"), "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{path.name} does not match {schema}:\n{done.stdout}{done.stderr}"


# the Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                              if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in logical.splitlines() if line.strip()]


def test_the_dockerfile_passes_hadolint() -> None:
    done = subprocess.run([tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_serve_as_a_numeric_non_root_user_with_a_health_check() -> None:
    instructions = dockerfile_instructions()
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    users = [arg for op, arg in final if op == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), f"USER {users[-1]}: Kubernetes' runAsNonRoot needs a numeric user"
    assert group.isdigit(), users[-1]
    assert int(user) != 0, users[-1]
    assert int(group) != 0, users[-1]
    health = [arg for op, arg in final if op == "HEALTHCHECK"]
    assert len(health) == 1
    assert "/healthz" in health[0]
    assert "TRACEBATON_API_PORT" in health[0], "the check follows a changed API port"
    assert {int(p) for op, arg in final if op == "EXPOSE" for p in arg.split()} == PORTS
    assert [arg for op, arg in final if op == "ENTRYPOINT"] == ['["tracebaton"]']
    assert [arg for op, arg in final if op == "CMD"] == ['["serve"]']
    env = " ".join(arg for op, arg in final if op == "ENV")
    assert "TRACEBATON_HOST=0.0.0.0" in env, "in a container, 127.0.0.1 is unreachable from outside"
    assert set(re.findall(r"TRACEBATON_[A-Z_]+", env)) <= known_variables()


def test_the_image_holds_every_package_folder() -> None:
    folders = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    copied = {arg.split()[0] for op, arg in dockerfile_instructions() if op == "COPY"}
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for folder in folders.values():
        assert folder in copied, f"deploy/Dockerfile does not COPY {folder}/ into the build"
        assert f"!{folder}/" in ignore, f"deploy/Dockerfile.dockerignore keeps {folder}/ out of the context"


# the compose file -----------------------------------------------------------------------------


def test_the_compose_file_matches_the_compose_specification() -> None:
    check_schema("vendor.compose-spec", DEPLOY / "compose.yaml")


def test_compose_runs_tracebaton_and_every_service_of_the_shop_as_the_demo_accepts_them() -> None:
    services: dict[str, Any] = load("compose.yaml")["services"]
    assert set(services) == {"tracebaton", "grafana", *SERVICES}
    tracebaton = services["tracebaton"]
    assert tracebaton["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert {int(p.rsplit(":", 1)[1]) for p in tracebaton["ports"]} == PORTS
    assert any(v.endswith(":/var/lib/tracebaton") for v in tracebaton["volumes"]), "the store is kept"
    assert set(tracebaton["environment"]) <= known_variables()
    parser = demo_main.build_parser()
    for name, spec in SERVICES.items():
        service = services[name]
        assert service["image"] == tracebaton["image"], name
        assert service["entrypoint"] == ["python", "-m", "tracebaton.demo"], name
        args = parser.parse_args(service["command"])  # what the service's process will accept
        assert args.service == name
        urls = dict(args.url)
        assert set(urls) == set(spec.calls), f"{name} must be told where {spec.calls} listen"
        assert all(url == f"http://{callee}:8000" for callee, url in urls.items()), urls
        if spec.listens:
            assert (args.host, args.port) == ("0.0.0.0", 8000), name
        if spec.needs_workdir:
            assert f"outbox:{args.workdir}" in service["volumes"], f"{name} shares the outbox"
        assert service["depends_on"]["tracebaton"]["condition"] == "service_healthy"
        env = service.get("environment", {})
        if name == "payment-gateway":
            assert not env, "the gateway is the uninstrumented peer"
            continue
        assert env["OTEL_SERVICE_NAME"] == name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tracebaton:4318"
        assert env["OTEL_BSP_SCHEDULE_DELAY"] == "50"
        assert "x-request-id" in env["OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"]
    assert services["frontend"]["ports"] == ["127.0.0.1:8080:8000"]


# Grafana --------------------------------------------------------------------------------------

GRAFANA_DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"
# The keys of a data source in Grafana's provisioning format, as its documentation lists them
# (administration/provisioning, "Data sources"); `type` is the plugin id.
GRAFANA_DATASOURCE_KEYS = {
    "name", "type", "uid", "access", "orgId", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version", "editable",
}


def grafana_datasource() -> dict[str, Any]:
    (path,) = sorted(GRAFANA_DATASOURCES.glob("*.yaml"))
    config = yaml.safe_load(path.read_text())
    assert config["apiVersion"] == 1
    assert set(config) <= {"apiVersion", "datasources", "deleteDatasources", "prune"}
    (datasource,) = config["datasources"]
    return dict(datasource)


def test_grafana_is_provisioned_with_a_jaeger_data_source_on_tracebatons_jaeger_api() -> None:
    datasource = grafana_datasource()
    assert set(datasource) <= GRAFANA_DATASOURCE_KEYS, set(datasource) - GRAFANA_DATASOURCE_KEYS
    assert {"name", "type", "access", "url", "uid", "jsonData"} <= set(datasource)
    assert datasource["type"] == "jaeger"
    assert datasource["access"] == "proxy", "Grafana's server calls tracebaton inside the network"
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", datasource["uid"]), "Grafana's uid rule"
    url = urllib.parse.urlsplit(datasource["url"])
    services: dict[str, Any] = load("compose.yaml")["services"]
    assert url.hostname == "tracebaton"
    assert url.hostname in services, "the compose service's name"
    assert url.port in {int(p.rsplit(":", 1)[1]) for p in services["tracebaton"]["ports"]}
    assert url.path == "/jaeger"
    json_data, secure = datasource["jsonData"], datasource.get("secureJsonData", {})
    assert isinstance(json_data["nodeGraph"]["enabled"], bool)
    assert json_data["traceIdTimeParams"] == {"enabled": False}
    # a custom header is a name in jsonData and its value in secureJsonData, numbered alike
    for key, name in json_data.items():
        if key.startswith("httpHeaderName"):
            assert f"httpHeaderValue{key.removeprefix('httpHeaderName')}" in secure, key
            assert name == "Authorization"
    (value,) = (v for k, v in secure.items() if k.startswith("httpHeaderValue"))
    assert value == "Bearer ${TRACEBATON_TOKEN}", "Grafana expands it from its environment"


def test_compose_runs_grafana_after_tracebaton_with_the_provisioning_and_the_token() -> None:
    grafana: dict[str, Any] = load("compose.yaml")["services"]["grafana"]
    image, _, tag = grafana["image"].partition(":")
    assert image == "grafana/grafana"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), "a pinned version, not latest"
    assert grafana["depends_on"]["tracebaton"]["condition"] == "service_healthy"
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    (mount,) = grafana["volumes"]
    source, target, mode = mount.split(":")
    assert (DEPLOY / source).resolve() == GRAFANA_DATASOURCES.parent.resolve()
    assert (target, mode) == ("/etc/grafana/provisioning", "ro")
    assert grafana["environment"]["TRACEBATON_TOKEN"] == "${TRACEBATON_TOKEN:-}"
    assert grafana["environment"]["TRACEBATON_TOKEN"] == load("compose.yaml")["services"]["tracebaton"][
        "environment"]["TRACEBATON_TOKEN"], "the data source sends the token tracebaton checks"
    assert "GF_FEATURE_TOGGLES_ENABLE" not in grafana["environment"], "no jaegerEnableGrpcEndpoint"


def test_the_data_source_url_answers_the_requests_grafana_sends(tmp_path: Path) -> None:
    """A real server, asked as Grafana's Jaeger client asks (`url.JoinPath` of the data source's
    URL, the header with an unset token expanded to "Bearer ", which arrives as "Bearer": HTTP
    drops trailing blanks of a header value): every answer is Jaeger's JSON."""
    from conftest import start_server

    running = start_server(tmp_path / "grafana.duckdb")
    try:
        base = running.api + urllib.parse.urlsplit(grafana_datasource()["url"]).path
        headers = {"Authorization": "Bearer"}
        now_ms = int(time.time() * 1000)
        for path, params in [
            ("/api/services", {}),
            ("/api/services/" + urllib.parse.quote("a/b", safe="") + "/operations", {}),
            ("/api/traces", {"service": "cart", "start": now_ms * 1000 - 3_600_000_000, "end": now_ms * 1000,
                             "limit": 20, "tags": '{"error":"true"}', "minDuration": "1ms"}),
            ("/api/dependencies", {"endTs": now_ms, "lookback": 3_600_000}),
        ]:
            answer = httpx.get(base + path, params=params, headers=headers, timeout=30)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json()["data"] == [], path
        assert httpx.get(base + "/api/traces/" + "ab" * 16, headers=headers).status_code == 404
    finally:
        assert running.stop() == 0


# Kubernetes -----------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
def test_the_kubernetes_manifests_validate(version: str) -> None:
    documents = manifests()
    assert {doc["kind"] for doc in documents} == {"Deployment", "Service", "PersistentVolumeClaim"}
    for doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_deployment_is_one_non_root_writer_probed_on_healthz() -> None:
    by_kind = {doc["kind"]: doc for doc in manifests()}
    deployment, service, claim = by_kind["Deployment"], by_kind["Service"], by_kind["PersistentVolumeClaim"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate", "a rolling update would open the store twice"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001, "the Dockerfile's user"
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "api"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == PORTS
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert spec["template"]["metadata"]["labels"] == spec["selector"]["matchLabels"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [claim["metadata"]["name"]]
    env = {e["name"]: e for e in container["env"]}
    assert set(env) <= known_variables()
    assert env["TRACEBATON_HOST"]["value"] == "0.0.0.0"
    assert "secretKeyRef" in env["TRACEBATON_TOKEN"]["valueFrom"], "listening on 0.0.0.0 needs a token"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(env["TRACEBATON_DB"]["value"]).parent) in mounts


# the OpenTelemetry Collector ------------------------------------------------------------------


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_the_collector_pipelines_reference_defined_components(name: str) -> None:
    config = load(name)
    assert set(config) <= {"receivers", "processors", "exporters", "connectors", "extensions", "service"}
    defined = {section: set(config.get(section) or {})
               for section in ("receivers", "processors", "exporters", "connectors")}
    connectors = defined["connectors"]
    pipelines: dict[str, Any] = config["service"]["pipelines"]
    used: set[str] = set()
    for pipeline_id, pipeline in pipelines.items():
        assert component_type(pipeline_id) in {"traces", "metrics", "logs"}, pipeline_id
        assert set(pipeline) <= {"receivers", "processors", "exporters"}, pipeline_id
        assert pipeline["receivers"], f"{pipeline_id} needs a receiver"
        assert pipeline["exporters"], f"{pipeline_id} needs an exporter"
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                allowed = defined[section] | (connectors if section != "processors" else set())
                assert component in allowed, f"{pipeline_id}: {section} {component!r} is not defined"
                used.add(component)
    unused = set().union(*defined.values()) - used
    assert not unused, f"defined but in no pipeline: {unused}"
    for connector in connectors:  # a connector ends one pipeline and starts another
        assert any(connector in p["exporters"] for p in pipelines.values()), connector
        assert any(connector in p.get("receivers", []) for p in pipelines.values()), connector
    for exporter_id, exporter in config["exporters"].items():
        assert re.fullmatch(r"\$\{env:[A-Z_]+\}", exporter["endpoint"]), f"{exporter_id}: set by the env"
    assert "otlphttp/tracebaton" in defined["exporters"]
    assert "otlp/backend" in defined["exporters"]
    # the backend still gets everything: some pipeline sends it the receiver's spans unfiltered
    to_backend = [p for p in pipelines.values() if "otlp/backend" in p["exporters"]]
    assert to_backend
    assert not any(component_type(x) == "filter" for p in to_backend for x in p.get("processors", []))


def test_the_routing_connector_copies_test_traffic_by_its_tracestate_entry() -> None:
    config = load("otel-collector.yaml")
    routing = config["connectors"]["routing"]
    pipelines = config["service"]["pipelines"]
    (route,) = routing["table"]
    assert route["context"] == "span"
    assert re.fullmatch(r'trace_state\["tracebaton"\] == "1"', route["condition"])
    to_tracebaton = [pid for pid, p in pipelines.items() if "otlphttp/tracebaton" in p["exporters"]]
    to_backend = [pid for pid, p in pipelines.items() if "otlp/backend" in p["exporters"]]
    assert set(route["pipelines"]) == {*to_tracebaton, *to_backend}, "test traffic: a copy, not a detour"
    assert routing["default_pipelines"] == to_backend
    assert all(pid in pipelines for pid in [*route["pipelines"], *routing["default_pipelines"]])


def test_the_filter_processor_keeps_only_test_traffic_for_tracebaton() -> None:
    config = load("otel-collector-filter.yaml")
    conditions = config["processors"]["filter/tracebaton-test-traffic"]["traces"]["span"]
    assert conditions == ['trace_state["tracebaton"] != "1"'], "the filter drops what matches"
    pipeline = config["service"]["pipelines"]["traces/tracebaton"]
    assert "filter/tracebaton-test-traffic" in pipeline["processors"]
    assert pipeline["exporters"] == ["otlphttp/tracebaton"]


# GitHub Actions -------------------------------------------------------------------------------


def test_the_workflow_matches_the_github_workflow_schema() -> None:
    check_schema("vendor.github-workflows", DEPLOY / "github" / "integration-tests.yml")


def test_the_workflow_starts_tracebaton_before_the_tests_and_keeps_the_store() -> None:
    workflow = yaml.safe_load((DEPLOY / "github" / "integration-tests.yml").read_text())
    assert workflow.get("on", workflow.get(True)), "the workflow has triggers"  # YAML 1.1 reads `on` as True
    (job,) = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    runs = [step.get("run", "") for step in steps]

    def index(predicate: Any, what: str) -> int:
        found = [i for i, run in enumerate(runs) if predicate(run)]
        assert found, f"no step {what}"
        return found[0]

    serve = index(lambda run: "tracebaton serve" in run, "runs tracebaton serve")
    assert "--ready-file" in runs[serve], "the workflow waits for the ready file, not a sleep"
    tests = index(lambda run: run.strip().startswith("pytest"), "runs pytest")
    command = shlex.split(runs[tests].replace('"$TRACEBATON_URL"', "URL"))
    assert "--tracebaton-url" in command
    assert job["env"]["TRACEBATON_URL"] == "http://127.0.0.1:7357"
    assert job["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert serve < tests
    stop = index(lambda run: "kill -TERM" in run, "stops tracebaton")
    assert steps[stop]["if"] == "always()"
    upload = next(i for i, step in enumerate(steps) if str(step.get("uses", "")).startswith(
        "actions/upload-artifact"))
    assert steps[upload]["if"] == "always()"
    assert tests < stop < upload, "the store is uploaded after tracebaton committed and checkpointed it"
    assert "build/tracebaton.duckdb" in steps[upload]["with"]["path"]
