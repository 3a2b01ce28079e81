"""deploy/ without a Docker engine or a cluster: the Dockerfile through hadolint, the compose
file and the GitHub workflow against their JSON schemas (check-jsonschema's vendored
Compose Specification and GitHub workflow schemas), the Kubernetes manifests through
kubernetes-validate, the OpenTelemetry Collector configurations checked for structure (every
component defined, of a type the contrib distribution builds in; the ClickHouse exporter's
options as its README documents them) — and all of them against what tracebaton and its demo
shop really accept. deploy/clickhouse/ (the scale-out data path) is checked the same way."""

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
from tracebaton import parse_duration_ns, server_settings
from tracebaton._cli import build_parser
from tracebaton.collector import parse_store_url
from tracebaton.demo import SERVICES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
COLLECTOR_CONFIGS = ["otel-collector.yaml", "otel-collector-filter.yaml"]
SCALE_OUT = "clickhouse"
SCALE_OUT_CONFIGS = [f"{SCALE_OUT}/otel-collector-lb.yaml", f"{SCALE_OUT}/otel-collector-clickhouse.yaml"]
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


def manifests(name: str = "*.yaml") -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "kubernetes").glob(name))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
def test_the_kubernetes_manifests_validate(version: str) -> None:
    documents = manifests()
    assert {doc["kind"] for doc in documents} == {"Deployment", "Service", "PersistentVolumeClaim"}
    for doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_deployment_is_one_non_root_writer_probed_on_healthz() -> None:
    by_kind = {doc["kind"]: doc for doc in manifests("tracebaton.yaml")}
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


def check_pipelines(config: dict[str, Any]) -> dict[str, set[str]]:
    """Every component a pipeline names is defined, every defined one is used, connectors join
    pipelines; returns the defined ids by section."""
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
    extensions = set(config.get("extensions") or {})
    enabled = config["service"].get("extensions", [])
    assert set(enabled) <= extensions, f"service.extensions names undefined ones: {set(enabled) - extensions}"
    assert extensions <= set(enabled), f"defined but not enabled: {extensions - set(enabled)}"
    defined["extensions"] = extensions
    return defined


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_the_collector_pipelines_reference_defined_components(name: str) -> None:
    config = load(name)
    pipelines: dict[str, Any] = config["service"]["pipelines"]
    defined = check_pipelines(config)
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


# every Collector configuration: component types the contrib distribution builds in -----------

# A component's type (the part of its id before "/") as its metadata.yaml names it, and the Go
# module that provides it. Every module here is listed in the contrib distribution's manifest,
# open-telemetry/opentelemetry-collector-releases distributions/otelcol-contrib/manifest.yaml
# @ 008cde8c (dist 0.135.0, components v0.136.0); the types are from each module's
# metadata.yaml in open-telemetry/opentelemetry-collector(-contrib). Add a row, with its
# module, before a configuration here uses another component.
CORE = "go.opentelemetry.io/collector"
CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib"
CONTRIB_COMPONENTS: dict[str, dict[str, str]] = {
    "receivers": {"otlp": f"{CORE}/receiver/otlpreceiver"},
    "processors": {
        "batch": f"{CORE}/processor/batchprocessor",
        "memory_limiter": f"{CORE}/processor/memorylimiterprocessor",
        "filter": f"{CONTRIB}/processor/filterprocessor",
        "groupbytrace": f"{CONTRIB}/processor/groupbytraceprocessor",
        "tail_sampling": f"{CONTRIB}/processor/tailsamplingprocessor",
    },
    "exporters": {
        "otlp": f"{CORE}/exporter/otlpexporter",
        "otlphttp": f"{CORE}/exporter/otlphttpexporter",
        "clickhouse": f"{CONTRIB}/exporter/clickhouseexporter",
        "loadbalancing": f"{CONTRIB}/exporter/loadbalancingexporter",
    },
    "connectors": {"routing": f"{CONTRIB}/connector/routingconnector"},
    "extensions": {"health_check": f"{CONTRIB}/extension/healthcheckextension"},
}


@pytest.mark.parametrize("name", [*COLLECTOR_CONFIGS, *SCALE_OUT_CONFIGS])
def test_every_collector_component_is_one_the_contrib_distribution_builds_in(name: str) -> None:
    config = load(name)
    for section, known in CONTRIB_COMPONENTS.items():
        for component_id in config.get(section) or {}:
            assert component_type(component_id) in known, (
                f"{name}: {section} {component_id!r} is not a component type of otelcol-contrib "
                f"that this test knows ({sorted(known)}); check the manifest and add it")


# the scale-out data path: deploy/clickhouse/ --------------------------------------------------

CLICKHOUSE_EXPORTER_OPTIONS = {
    # exporter/clickhouseexporter/README.md @ 000d4c7c, "Configuration options"
    "endpoint", "username", "password", "ttl", "database", "connection_params", "create_schema",
    "compress", "async_insert", "tls", "logs_table_name", "traces_table_name",
    "profiles_table_name", "metrics_tables", "cluster_name", "table_engine", "timeout",
    "sending_queue", "retry_on_failure", "json",
}
RETRY_OPTIONS = {"enabled", "initial_interval", "max_interval", "max_elapsed_time"}
QUEUE_OPTIONS = {"enabled", "num_consumers", "queue_size", "sizer", "block_on_overflow", "storage",
                 "batch"}
QUEUE_BATCH_OPTIONS = {"flush_timeout", "min_size", "max_size", "sizer"}
# exporter/loadbalancingexporter/README.md @ 01c4f7c5, "Configuration"
LOADBALANCING_OPTIONS = {"routing_key", "protocol", "resolver"}
# the default wait.settle (README, "How long a verdict waits")
TRACEBATON_SETTLE_NS = parse_duration_ns("250ms")


def scale_out_services() -> dict[str, Any]:
    services: dict[str, Any] = load(f"{SCALE_OUT}/compose.yaml")["services"]
    return services


def collector_config(service: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The configuration file a Collector service mounts over the image's default one."""
    (mount,) = [v for v in service["volumes"] if v.split(":")[1] == "/etc/otelcol-contrib/config.yaml"]
    source = mount.split(":")[0]
    path = (DEPLOY / SCALE_OUT / source).resolve()
    assert path.is_file(), f"{source} is mounted but missing"
    assert mount.endswith(":ro")
    return path.name, yaml.safe_load(path.read_text())


def image_environment() -> dict[str, str]:
    """What the image's ENV instructions set in its final stage."""
    instructions = dockerfile_instructions()
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    return dict(pair.split("=", 1) for op, arg in final if op == "ENV" for pair in shlex.split(arg))


def serve_settings(argv: list[str], environment: dict[str, str]) -> Any:
    """What `tracebaton serve` makes of these arguments in the image with this environment, as
    its own parser and settings see them."""
    args = build_parser().parse_args(argv)
    assert args.command == "serve"
    return server_settings({**image_environment(), **environment}, store=args.store, db=args.db)


def compose_value(text: str) -> str:
    """A ${VAR...} reference as the value it stands for in these checks: its name."""
    match = re.fullmatch(r"\$\{([A-Z_]+)(?::?[-?][^}]*)?\}", text)
    return f"<{match.group(1)}>" if match else text


def test_the_scale_out_compose_file_matches_the_compose_specification() -> None:
    check_schema("vendor.compose-spec", DEPLOY / SCALE_OUT / "compose.yaml")


def test_scale_out_compose_runs_clickhouse_two_backends_a_load_balancer_and_tracebaton() -> None:
    services = scale_out_services()
    assert set(services) == {"clickhouse", "tracebaton", "otelcol-lb", "otelcol-1", "otelcol-2"}
    clickhouse = services["clickhouse"]
    image, _, tag = clickhouse["image"].partition(":")
    assert image == "clickhouse/clickhouse-server", "the official image"
    assert tag, "a pinned version: the exporter's DDL depends on it"
    assert tag != "latest", "a pinned version: the exporter's DDL depends on it"
    assert "/ping" in " ".join(clickhouse["healthcheck"]["test"]), "ClickHouse answers it without a password"
    password = compose_value(clickhouse["environment"]["CLICKHOUSE_PASSWORD"])
    assert password == "<TRACEBATON_CLICKHOUSE_PASSWORD>", (
        "one secret for the server, the exporters and tracebaton; "
        "and without one the image admits `default` from localhost only")
    for name in ("otelcol-lb", "otelcol-1", "otelcol-2"):
        image, _, tag = services[name]["image"].partition(":")
        assert image == "otel/opentelemetry-collector-contrib", f"{name}: contrib has the exporters"
        assert tag, name
        assert tag != "latest", name
    lb = services["otelcol-lb"]
    assert {int(p.rsplit(":", 1)[1]) for p in lb["ports"]} == {4317, 4318}, "services export to it"
    assert set(lb["depends_on"]) == {"otelcol-1", "otelcol-2"}


def test_scale_out_tracebaton_reads_clickhouse_from_the_project_image_with_the_password_from_env() -> None:
    services = scale_out_services()
    tracebaton = services["tracebaton"]
    assert tracebaton["build"] == {"context": "../..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / SCALE_OUT / tracebaton["build"]["context"]).resolve() == REPO
    assert tracebaton["depends_on"] == {"clickhouse": {"condition": "service_healthy"}}
    env = {k: compose_value(v) for k, v in tracebaton["environment"].items()}
    assert set(env) <= known_variables()
    assert env["TRACEBATON_CLICKHOUSE_PASSWORD"] == "<TRACEBATON_CLICKHOUSE_PASSWORD>"
    assert not any(k.startswith("TRACEBATON_RETENTION_") for k in env), "retention is ClickHouse's TTL"
    assert {int(p.rsplit(":", 1)[1]) for p in tracebaton["ports"]} == {7357}, "OTLP goes to the LB"
    command: list[str] = tracebaton["command"]
    assert command[:2] == ["serve", "--store"]
    assert "--create-schema" in command, "tracebaton creates the exporter's tables on the empty database"
    settings = serve_settings(command, env)
    assert settings.store == "clickhouse://default@clickhouse:8123/otel"
    assert parse_store_url(settings.store).backend == "clickhouse"
    assert settings.retention_max_age_ns is None
    assert settings.retention_max_spans is None
    userinfo = settings.store.split("://", 1)[1].split("@", 1)[0]
    assert ":" not in userinfo, "no password in argv: tracebaton reads TRACEBATON_CLICKHOUSE_PASSWORD"
    host_port, database = settings.store.split("@", 1)[1].split("/", 1)
    assert host_port == "clickhouse:8123", "the ClickHouse service's HTTP port"
    assert database == services["clickhouse"]["environment"]["CLICKHOUSE_DB"]


def test_scale_out_tracebaton_command_parses_with_create_schema() -> None:
    args = build_parser().parse_args(scale_out_services()["tracebaton"]["command"])
    assert args.create_schema is True


def test_scale_out_load_balancer_routes_by_trace_id_to_both_backends() -> None:
    services = scale_out_services()
    name, config = collector_config(services["otelcol-lb"])
    assert name == "otel-collector-lb.yaml"
    check_pipelines(config)
    (exporter_id,) = config["exporters"]
    assert component_type(exporter_id) == "loadbalancing"
    lb = config["exporters"][exporter_id]
    assert set(lb) <= LOADBALANCING_OPTIONS
    assert lb["routing_key"] == "traceID", "every span of a trace on one backend"
    assert "endpoint" not in lb["protocol"]["otlp"], "the resolver sets each backend's endpoint"
    backends = {s for s in services if s.startswith("otelcol-") and s != "otelcol-lb"}
    assert sorted(lb["resolver"]["static"]["hostnames"]) == sorted(f"{b}:4317" for b in backends)
    for backend in backends:
        _, backend_config = collector_config(services[backend])
        grpc = backend_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        assert grpc.rsplit(":", 1)[1] == "4317", f"{backend} listens where the resolver sends"
    (pipeline,) = config["service"]["pipelines"].values()
    assert not any(component_type(p) == "batch" for p in pipeline.get("processors", [])), (
        "no batching on the load-balancing tier: it would add its timeout to every span's lag")


def test_scale_out_backends_write_otel_traces_with_documented_options_and_low_lag() -> None:
    services = scale_out_services()
    mounted = {collector_config(services[b])[0] for b in ("otelcol-1", "otelcol-2")}
    assert len(mounted) == 1, "both backends run one configuration"
    name, config = collector_config(services["otelcol-1"])
    assert name == "otel-collector-clickhouse.yaml"
    check_pipelines(config)
    (exporter_id,) = config["exporters"]
    assert component_type(exporter_id) == "clickhouse"
    exporter = config["exporters"][exporter_id]
    assert set(exporter) <= CLICKHOUSE_EXPORTER_OPTIONS, set(exporter) - CLICKHOUSE_EXPORTER_OPTIONS
    assert set(exporter["retry_on_failure"]) <= RETRY_OPTIONS
    assert set(exporter["sending_queue"]) <= QUEUE_OPTIONS
    assert set(exporter["sending_queue"].get("batch") or {}) <= QUEUE_BATCH_OPTIONS
    for option in ("endpoint", "username", "password"):
        assert re.fullmatch(r"\$\{env:[A-Z_]+\}", exporter[option]), f"{option}: from the environment"
    # what tracebaton reads: the default table in the database of its --store URL, Map columns
    assert exporter.get("traces_table_name", "otel_traces") == "otel_traces"
    assert exporter["database"] == services["clickhouse"]["environment"]["CLICKHOUSE_DB"]
    assert exporter.get("json", False) is False, "tracebaton reads the Map-column schema"
    # one schema owner: tracebaton's --create-schema, or the exporters', never both racing
    assert ("--create-schema" in services["tracebaton"]["command"]) != exporter.get("create_schema", True)
    if exporter.get("create_schema", True) is False:
        assert "ttl" not in exporter, "ttl only shapes DDL the exporter runs itself"
        for backend in ("otelcol-1", "otelcol-2"):
            assert services[backend]["depends_on"]["tracebaton"]["condition"] == "service_healthy", (
                f"{backend} starts once tracebaton created the tables")
    # batched once, briefly: in the exporter's queue (its README's advice), not also a processor
    (pipeline,) = config["service"]["pipelines"].values()
    processors = pipeline.get("processors", [])
    assert not any(component_type(p) == "batch" for p in processors), "batching in sending_queue, not twice"
    assert not any(component_type(p) == "tail_sampling" for p in processors), "held for decision_wait"
    batch = exporter["sending_queue"]["batch"]
    flush = parse_duration_ns(batch["flush_timeout"])
    assert flush < TRACEBATON_SETTLE_NS, "a partial batch must leave well inside the default settle"
    assert exporter["async_insert"] in (True, False), "the async_insert trade-off is chosen, not inherited"
    if exporter["async_insert"]:
        busy = int(exporter["connection_params"]["async_insert_busy_timeout_max_ms"]) * 1_000_000
        assert flush + busy <= TRACEBATON_SETTLE_NS, "batching plus the insert buffer stay under settle"
    assert parse_duration_ns(exporter["retry_on_failure"]["initial_interval"]) <= parse_duration_ns("1s")
    # every ${env:VAR} the configuration reads, each backend's compose service provides
    wanted = set(re.findall(r"\$\{env:([A-Z_]+)\}", (DEPLOY / SCALE_OUT / name).read_text()))
    for backend in ("otelcol-1", "otelcol-2"):
        env = {k: compose_value(v) for k, v in services[backend]["environment"].items()}
        assert wanted <= set(env), f"{backend} lacks {wanted - set(env)}"
        assert env["CLICKHOUSE_PASSWORD"] == "<TRACEBATON_CLICKHOUSE_PASSWORD>"
        assert re.match(r"(tcp|clickhouse|https?)://clickhouse:", env["CLICKHOUSE_ENDPOINT"]), backend


# Kubernetes against an existing ClickHouse ----------------------------------------------------


def test_the_clickhouse_deployment_runs_replicas_reading_clickhouse_with_secrets_probed_on_healthz() -> None:
    by_kind = {doc["kind"]: doc for doc in manifests("tracebaton-clickhouse.yaml")}
    assert set(by_kind) == {"Deployment", "Service"}, "no volume claim: ClickHouse holds the data"
    deployment, service = by_kind["Deployment"], by_kind["Service"]
    spec = deployment["spec"]
    assert spec["replicas"] > 1, "ClickHouse is the store: replicas may share it"
    assert spec["strategy"]["type"] == "RollingUpdate"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001, "the Dockerfile's user"
    assert not any("persistentVolumeClaim" in v for v in pod.get("volumes", []))
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "api"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == PORTS
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert spec["template"]["metadata"]["labels"] == spec["selector"]["matchLabels"]
    env = {e["name"]: e for e in container["env"]}
    assert set(env) <= known_variables()
    for variable, secret in (("TRACEBATON_CLICKHOUSE_PASSWORD", "tracebaton-clickhouse"),
                             ("TRACEBATON_TOKEN", "tracebaton"), ("TRACEBATON_INGEST_TOKEN", "tracebaton")):
        assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == secret, variable
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    settings = serve_settings(container["args"], plain)  # the image's TRACEBATON_DB included
    assert parse_store_url(settings.store).backend == "clickhouse"
    assert ":" not in settings.store.split("://", 1)[1].split("@", 1)[0], "no password in argv"
    assert "--create-schema" not in container["args"], "a shared ClickHouse: the schema is its owners'"
    assert settings.host == "0.0.0.0"
    assert settings.retention_max_age_ns is None
    assert settings.retention_max_spans is None


def test_the_two_kubernetes_manifests_neither_replace_nor_select_each_other() -> None:
    duckdb, clickhouse = manifests("tracebaton.yaml"), manifests("tracebaton-clickhouse.yaml")
    assert not {(d["kind"], d["metadata"]["name"]) for d in duckdb} & {
        (d["kind"], d["metadata"]["name"]) for d in clickhouse}
    for services, pods in ((duckdb, clickhouse), (clickhouse, duckdb)):
        labels = [d["spec"]["template"]["metadata"]["labels"] for d in pods if d["kind"] == "Deployment"]
        for service in (d for d in services if d["kind"] == "Service"):
            selector = service["spec"]["selector"].items()
            assert not any(selector <= pod.items() for pod in labels), service["metadata"]["name"]
