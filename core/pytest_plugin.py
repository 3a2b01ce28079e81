"""The pytest plugin: the `tracebaton` fixture, options, failure sections and the summary.

Loaded in every pytest run of an environment that has tracebaton installed, so importing
it pulls in nothing heavy: the collector, the engine and the OpenTelemetry SDK are loaded
by the first test that asks for the fixture.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._config import ENV_INGEST_TOKEN, ENV_TOKEN, ENV_URL
from ._pytest_snapshots import WORKER_KEY, Snapshots, snapshot_dir, test_stem, update_command
from ._services import ServiceProcess, start_service

if TYPE_CHECKING:
    from tracebaton.assertions import Client, Flow, FlowResult, SnapshotPlace, Trace, Traces

    from ._embedded import Collector

DEFAULT_STORE_DIR = ".tracebaton"
_FLOWS_KEY = pytest.StashKey["list[Flow]"]()
_PLACE_KEY: pytest.StashKey[SnapshotPlace] = pytest.StashKey()
_SERVICES_KEY = pytest.StashKey["list[ServiceProcess]"]()
_PROPERTY = "tracebaton_trace_id"
_SNAPSHOTS_KEY = pytest.StashKey[Snapshots]()
_NOT_CI = ("", "0", "false", "no")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracebaton", "trace-based flow assertions")
    group.addoption("--tracebaton-url", default=None,
                    help=f"judge flows on a remote `tracebaton serve` at this API URL (env {ENV_URL}); "
                         "default: an embedded collector per session")
    group.addoption("--tracebaton-token", default=None,
                    help=f"API token of the remote server (env {ENV_TOKEN})")
    group.addoption("--tracebaton-ingest-token", default=None,
                    help=f"OTLP ingest token of the remote server (env {ENV_INGEST_TOKEN}); services "
                         "started with the fixture's sut_env() send it")
    group.addoption("--tracebaton-store", default=None,
                    help=f"DuckDB file of the embedded collector (default {DEFAULT_STORE_DIR}/last.duckdb; "
                         "kept after the run for the dashboard)")
    group.addoption("--tracebaton-update", action="store_true", default=False,
                    help="write missing and changed flow snapshots "
                         "(__snapshots__/<test file>/<test>.flow.yaml) from this run's flows, and delete "
                         "unused ones; refused when CI is set")


def pytest_configure(config: pytest.Config) -> None:
    update = bool(config.getoption("tracebaton_update"))
    ci = os.environ.get("CI", "")
    if update and ci.strip().lower() not in _NOT_CI:
        raise pytest.UsageError(
            f"--tracebaton-update is refused when CI is set (CI={ci!r}): a snapshot is what a person "
            "reviewed and committed, and a CI run compares with it, never rewrites it. Run "
            "`pytest --tracebaton-update` where you work, review the change to __snapshots__/, commit it"
        )
    config.stash[_SNAPSHOTS_KEY] = Snapshots(update=update)


@dataclasses.dataclass
class _Session:
    host: Collector | Client
    session_id: str
    store_path: str | None
    remote_url: str | None


def _workerinput(config: pytest.Config) -> Mapping[str, Any]:
    """What pytest-xdist gave this worker; empty when this run is not a worker. Never
    $PYTEST_XDIST_WORKER: a pytest run started from inside a worker (pytester, a
    subprocess) inherits the variable without being a worker itself."""
    workerinput: Mapping[str, Any] = getattr(config, "workerinput", {})
    return workerinput


def _worker_suffix(config: pytest.Config) -> str:
    worker = _workerinput(config).get("workerid")
    return f"-{worker}" if worker else ""


def _store_path(config: pytest.Config) -> Path:
    given = config.getoption("tracebaton_store")
    if given:
        return Path(given)
    return Path(config.rootpath) / DEFAULT_STORE_DIR / f"last{_worker_suffix(config)}.duckdb"


def _session_id(config: pytest.Config) -> str:
    return str(_workerinput(config).get("testrunuid") or uuid.uuid4().hex)


@pytest.fixture(scope="session")
def _tracebaton_session(pytestconfig: pytest.Config) -> Iterator[_Session]:
    from tracebaton.assertions import Client

    from ._embedded import Collector

    verbosity = pytestconfig.get_verbosity()
    url = pytestconfig.getoption("tracebaton_url") or os.environ.get(ENV_URL)
    session_id = _session_id(pytestconfig)
    if url:
        token = pytestconfig.getoption("tracebaton_token") or os.environ.get(ENV_TOKEN)
        ingest = pytestconfig.getoption("tracebaton_ingest_token") or os.environ.get(ENV_INGEST_TOKEN)
        client = Client(url, token=token, ingest_token=ingest)
        client.render_options = {"verbosity": verbosity}
        try:
            yield _Session(client, session_id, None, url)
        finally:
            client.close()
        return
    path = _store_path(pytestconfig)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)  # one run per store: the dashboard shows this run only
    collector = Collector(str(path)).start()
    # the live API is gone once the run ends; the failure points at the kept store instead
    collector.render_options = {"verbosity": verbosity, "dashboard_url": None, "db_path": str(_shown(path))}
    try:
        yield _Session(collector, session_id, str(path), None)
    finally:
        collector.shutdown()


@pytest.fixture(scope="session")
def tracebaton_host(_tracebaton_session: _Session) -> Collector | Client:
    """The session's collector (or remote client), for session-scoped set-up such as
    starting services once: `tracebaton_host.sut_env(service_name=...)`."""
    return _tracebaton_session.host


def _shown(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class TracebatonFixture:
    """What a test gets as `tracebaton`: flows recorded under its node id, services it
    starts with the collector's environment (stopped at its end), and the client calls."""

    def __init__(self, session: _Session, node: pytest.Item) -> None:
        self._session = session
        self._node = node
        self.flows: list[Flow] = node.stash.setdefault(_FLOWS_KEY, [])
        self.services: list[ServiceProcess] = node.stash.setdefault(_SERVICES_KEY, [])

    @property
    def host(self) -> Collector | Client:
        return self._session.host

    def flow(self, name: str, *, baggage: Mapping[str, str] | None = None) -> Flow:
        from tracebaton.assertions import SnapshotPlace

        flow = self.host.flow(name, baggage=baggage, test_id=self._node.nodeid,
                              session_id=self._session.session_id)
        snapshots = self._node.config.stash[_SNAPSHOTS_KEY]
        # one place per test, shared by its flows: two unnamed assert_snapshot() calls collide
        flow.snapshots = self._node.stash.setdefault(_PLACE_KEY, SnapshotPlace(
            directory=snapshot_dir(self._node.path), test_name=test_stem(self._node),
            update=snapshots.update, command=update_command(self._node), on_use=snapshots.note))
        self.flows.append(flow)
        flow.on_start.append(lambda started: self._node.user_properties.append((_PROPERTY, started.trace_id)))
        return flow

    def sut_env(self, *, service_name: str | None = None, headers: Iterable[str] = (),
                host: str | None = None) -> dict[str, str]:
        return self.host.sut_env(service_name=service_name, headers=headers, host=host)

    def start_service(self, command: Sequence[str], *, name: str, env: Mapping[str, str] | None = None,
                      headers: Iterable[str] = (), ready_line: str | None = None,
                      ready_url: str | None = None, timeout_s: float = 30.0,
                      cwd: str | None = None) -> ServiceProcess:
        """Start a service under test exporting here; it is stopped when the test ends and
        its log tail is added to the test's failure report.

        Its environment is `sut_env(service_name=name, headers=headers)` (so `name` is its
        OTEL_SERVICE_NAME, and `headers` are captured beside the W3C ones) overlaid with
        `env`. `{port}`, `ready_line`, `ready_url`, `timeout_s` and `cwd` are those of
        `tracebaton.start_service`: `{port}` in the command becomes a free port, `.url` its URL."""
        service = start_service(command, name=name, env={**self.sut_env(service_name=name, headers=headers),
                                                         **(env or {})},
                                ready_line=ready_line, ready_url=ready_url, timeout_s=timeout_s, cwd=cwd)
        self.services.append(service)
        return service

    def check(self, spec: Any, trace_id: str | None = None) -> FlowResult:
        return self.host.check(spec, trace_id)

    def trace(self, trace_id: str) -> Trace:
        return self.host.trace(trace_id)

    def find(self, **query: Any) -> Traces:
        return self.host.find(**query)


@pytest.fixture
def tracebaton(_tracebaton_session: _Session, request: pytest.FixtureRequest) -> Iterator[TracebatonFixture]:
    fixture = TracebatonFixture(_tracebaton_session, request.node)
    yield fixture
    for service in reversed(fixture.services):
        service.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call" and report.passed and _SNAPSHOTS_KEY in item.config.stash:
        # a test that failed may not have got to its snapshot: only a pass says it needs none
        item.config.stash[_SNAPSHOTS_KEY].passed.add((str(item.path), test_stem(item)))
    if report.when == "call":
        flows = item.stash.get(_FLOWS_KEY, [])
        failed = [r for f in flows for r in f.results if not r.passed]
        for result in failed:
            report.user_properties.append(("tracebaton_failed", f"{result.name}\t{result.trace_id}\t"
                                                                 f"{result.first_divergence or ''}"))
        if report.failed:
            for service in item.stash.get(_SERVICES_KEY, []):
                report.sections.append((f"tracebaton: {service.name} log (last lines)", service.log_tail(30)))
    return report


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    """`assert trace == spec`: show the verdict instead of two object reprs."""
    if op != "==" or "tracebaton.assertions" not in sys.modules:  # no Trace exists without it
        return None
    from tracebaton.assertions import Trace, render_verdict

    if not isinstance(left, Trace):
        return None
    result = left.check(right)  # type: ignore[arg-type]
    verdict = render_verdict(result, left.tree, verbosity=config.get_verbosity())
    return ["trace does not satisfy the spec", *verdict.splitlines()]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # before -k, -m, --deselect and --lf drop any: a deselected test's snapshot is not unused
    if _SNAPSHOTS_KEY in config.stash:
        config.stash[_SNAPSHOTS_KEY].collected(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist, in the controller: what a worker's tests did with their snapshots."""
    data = getattr(node, "workeroutput", {}).get(WORKER_KEY)
    if data and _SNAPSHOTS_KEY in node.config.stash:
        node.config.stash[_SNAPSHOTS_KEY].merge(data)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    snapshots = config.stash.get(_SNAPSHOTS_KEY, None)
    if snapshots is None:
        return
    if _workerinput(config):
        config.workeroutput[WORKER_KEY] = snapshots.to_json()  # type: ignore[attr-defined]
        return
    if exitstatus not in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR):
        snapshots.finish()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    snapshots = config.stash.get(_SNAPSHOTS_KEY, None)
    for line in snapshots.summary() if snapshots is not None else ():
        terminalreporter.write_line(line)
    checked: list[str] = []
    failed: list[tuple[str, str, str, str]] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == _PROPERTY:
                    checked.append(value)
                elif key == "tracebaton_failed":
                    name, trace_id, divergence = [*value.split("\t"), "", ""][:3]
                    failed.append((report.nodeid, name, trace_id, divergence))
    if not checked:
        return
    write = terminalreporter.write_line
    if failed:
        terminalreporter.section("tracebaton: failed flows", sep="-")
        for nodeid, name, trace_id, divergence in failed:
            write(f"{nodeid}: flow {name!r} trace {trace_id}")
            if divergence:
                write(f"    {divergence}")
    counted = f"tracebaton: {len(checked)} flow{'' if len(checked) == 1 else 's'}, {len(failed)} failed"
    url = config.getoption("tracebaton_url") or os.environ.get(ENV_URL)
    if url:
        write(f"{counted}; dashboard: {url.rstrip('/')}/flows")
    else:
        from tracebaton.assertions import serve_command  # here: importing the plugin loads no store

        store = _store_path(config)
        stores = sorted(store.parent.glob("last*.duckdb")) if not store.exists() else [store]
        note = ""
        if len(stores) > 1:
            note = f" (one store per xdist worker: {len(stores)} in {_shown(store.parent)})"
        command = serve_command(str(_shown(stores[0] if stores else store)))
        write(f"{counted}; open the dashboard: {command}{note}")
