"""The flow engine: hops, flow specs and verdicts over the collector's read API, and the
Python API built on them (`Client`, `FlowHost`, `Flow`, `Trace`; `tracebaton.Collector`,
which runs a server, is a `FlowHost` over an `EmbeddedBackend` defined in the app layer).

Built on `tracebaton.collector.SpanStore`; it reads spans and never writes them.
"""

from __future__ import annotations

import inspect as _inspect

import tracebaton as _tracebaton

from ._backends import EmbeddedBackend, FlowBackend
from ._checks_budgets import entry_span
from ._client import Client, FlowHost, Traces
from ._engine import FlowEngine
from ._flow import Flow, SnapshotPlace
from ._hops import TEST_SERVICE, hop_matches
from ._quiet import WARN_OF_UNSEEN_AFTER_S, unseen_services_warning
from ._render import render_divergence, render_headline, render_hop_table, render_verdict, serve_command
from ._result import (
    CHECK_IDS,
    CheckResult,
    CheckState,
    Finding,
    FindingKind,
    FlowResult,
    HopKind,
    HopResult,
    HopStatus,
    WaitedReason,
    hop_blame,
)
from ._service_map import MAP_MAX_TRACES, ServiceLink, ServiceMap, ServiceMapper
from ._snapshot import FlowShape, HopNode, flow_shape, read_snapshot, shape_to_json, with_budgets
from ._snapshot_diff import ShapeDiff, diff_shapes, render_shape_diff, render_trace_diff
from ._snapshot_judge import SnapshotOutcome, judge_snapshot, stored_shape
from ._spec import (
    Budgets,
    CountBound,
    ErrorsMode,
    ErrorsPolicy,
    Expectations,
    FindSpec,
    FlowSpec,
    HeaderRule,
    HopPattern,
    Order,
    Propagation,
    Selector,
    SpanExpectation,
    WaitSpec,
    server_wait_problem,
)
from ._spec_dump import flow_spec_to_dict, flow_spec_to_yaml
from ._spec_parse import parse_flow_spec
from ._trace import FlowTrace, build_trace, critical_path, hand_off_parents
from ._trace_view import Trace
from ._tracetest import NotConverted, TracetestSuite, TracetestTest, read_tracetest
from ._wire import span_from_json, span_json

__all__ = [
    "CHECK_IDS",
    "MAP_MAX_TRACES",
    "TEST_SERVICE",
    "WARN_OF_UNSEEN_AFTER_S",
    "Budgets",
    "CheckResult",
    "CheckState",
    "Client",
    "CountBound",
    "EmbeddedBackend",
    "ErrorsMode",
    "ErrorsPolicy",
    "Expectations",
    "FindSpec",
    "Finding",
    "FindingKind",
    "Flow",
    "FlowBackend",
    "FlowEngine",
    "FlowHost",
    "FlowResult",
    "FlowShape",
    "FlowSpec",
    "FlowTrace",
    "HeaderRule",
    "HopKind",
    "HopNode",
    "HopPattern",
    "HopResult",
    "HopStatus",
    "NotConverted",
    "Order",
    "Propagation",
    "Selector",
    "ServiceLink",
    "ServiceMap",
    "ServiceMapper",
    "ShapeDiff",
    "SnapshotOutcome",
    "SnapshotPlace",
    "SpanExpectation",
    "Trace",
    "Traces",
    "TracetestSuite",
    "TracetestTest",
    "WaitSpec",
    "WaitedReason",
    "build_trace",
    "critical_path",
    "diff_shapes",
    "entry_span",
    "flow_shape",
    "flow_spec_to_dict",
    "flow_spec_to_yaml",
    "hand_off_parents",
    "hop_blame",
    "hop_matches",
    "judge_snapshot",
    "parse_flow_spec",
    "read_snapshot",
    "read_tracetest",
    "render_divergence",
    "render_headline",
    "render_hop_table",
    "render_shape_diff",
    "render_trace_diff",
    "render_verdict",
    "serve_command",
    "server_wait_problem",
    "shape_to_json",
    "span_from_json",
    "span_json",
    "stored_shape",
    "unseen_services_warning",
    "with_budgets",
]

for _name in __all__:  # reported where users meet them (reprs, pickles), not in a private module
    _value = globals().get(_name)
    if isinstance(_value, type) or (callable(_value) and _inspect.isfunction(_inspect.unwrap(_value))):
        _value.__module__ = "tracebaton" if _name in _tracebaton.__all__ else __name__
