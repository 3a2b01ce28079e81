"""A Tracetest trigger as the shell commands that start the same flow.

`import-tracetest` writes a test's trigger as a comment at the top of its spec: the command
that sends the request with the header `traceparent: $TRACEPARENT`, for `tracebaton run`,
which opens the flow's root span, gives the command TRACEPARENT and judges the flow. HTTP
becomes curl and gRPC becomes grpcurl; an existing trace id (`traceid`) is judged with
`tracebaton check --trace-id`; every other trigger type is named and listed as not converted.

Leading `# ` lines are advice (variables to replace, what to send by hand); a traceid
trigger's last line sets TRACE_ID; otherwise the lines are the request's shell script.
"""

from __future__ import annotations

import base64
import re
import shlex
import urllib.parse

import yaml

from tracebaton.collector import trace_id_bytes

from ._tracetest_yaml import Document, NotConverted, is_null, line_of

__all__ = ["trigger_commands"]

_TRACEPARENT = '"traceparent: $TRACEPARENT"'
_VARIABLE = re.compile(r"\$\{(?:var|env):[^}]*\}")
_HTTP_KEYS = ("url", "method", "headers", "body", "auth", "authentication", "sslVerification")
_GRPC_KEYS = ("protobufFile", "address", "service", "method", "request", "metadata", "auth")
_BODY_EXAMPLES = {
    "http": "{url: http://frontend:8080/checkout, method: POST}",
    "grpc": "{address: cart:50051, method: cart.Cart/AddItem}",
    "traceid": "{id: 4bf92f3577b34da6a3ce929d0e0e4736}",
}
_OTHER_TRIGGERS = {
    "kafka": "send the message with your Kafka client, putting the traceparent in its headers",
    "graphql": "POST the query with curl, as for an http trigger",
}


def trigger_commands(doc: Document, node: yaml.Node) -> tuple[list[str], list[NotConverted]]:
    """The commands (one string a line, to be written as comments), and what did not convert."""
    trigger = doc.mapping(node, "trigger", "write `trigger: {type: http, httpRequest: {...}}`")
    if "type" not in trigger:
        doc.fail(node, "trigger has no `type`; write e.g. `type: http` with an `httpRequest:`")
    kind = doc.text(trigger["type"][1], "trigger.type", "write http, grpc, traceid, …")
    body_key = {"http": "httpRequest"}.get(kind, kind)
    written = kind in ("http", "grpc", "traceid")
    skipped = [NotConverted(line_of(key_node), f"trigger.{key}",
                            f"is not part of a {kind} trigger, so the command leaves it out; check "
                            "the Tracetest test")
               for key, (key_node, _) in trigger.items() if written and key not in ("type", body_key)]
    body = trigger.get(body_key)
    if written and body is None:
        doc.fail(node, f"trigger (type: {kind}) has no `{body_key}`: Tracetest needs one too; write "
                       f"trigger.{body_key}: {_BODY_EXAMPLES[kind]}")
    if kind == "http" and body is not None:
        lines, more = _http(doc, body[1])
    elif kind == "grpc" and body is not None:
        lines, more = _grpc(doc, body[1])
    elif kind == "traceid" and body is not None:
        lines, more = _trace_id(doc, body[1])
    else:
        advice = _OTHER_TRIGGERS.get(kind, "start the flow yourself")
        lines = [f"# Tracetest started this test with a {kind} trigger, not written as a command here:",
                 f"# {advice}, with the header traceparent: $TRACEPARENT"]
        more = [NotConverted(line_of(node), f"trigger ({kind})",
                             f"only http, grpc and traceid triggers are written as commands; {advice}, "
                             "with the traceparent `tracebaton run` gives the command")]
    return lines, skipped + more


def _unknown_keys(doc: Document, fields: dict[str, tuple[yaml.Node, yaml.Node]], known: tuple[str, ...],
                  where: str) -> list[NotConverted]:
    return [NotConverted(line_of(key_node), f"{where}.{key}",
                         f"is not a field this converter knows ({', '.join(known)}), so the command "
                         "leaves it out; add it by hand if the request needs it")
            for key, (key_node, _) in fields.items() if key not in known]


def _pairs(doc: Document, node: yaml.Node | None, where: str) -> list[tuple[str, str]]:
    """Tracetest's header lists: `[{key: ..., value: ...}]`."""
    if node is None:
        return []
    pairs = []
    for item in doc.sequence(node, where, "write a list of {key: ..., value: ...}"):
        entry = doc.mapping(item, f"an item of {where}", "write {key: Content-Type, value: application/json}")
        if "key" not in entry:
            doc.fail(item, f"an item of {where} has no `key`; write {{key: <name>, value: <value>}}")
        key = doc.text(entry["key"][1], f"{where} key", "write the header name")
        value = doc.optional_text(entry["value"][1] if "value" in entry else None, f"{where} value",
                                  "write the header value as text") or ""
        pairs.append((key, value))
    return pairs


def _auth_headers(doc: Document, node: yaml.Node | None, where: str) -> tuple[list[tuple[str, str]],
                                                                          list[tuple[str, str]],
                                                                          list[NotConverted]]:
    """(headers, query parameters, not converted) for Tracetest's basic, apiKey and bearer auth."""
    if node is None or is_null(node):
        return [], [], []
    auth = doc.mapping(node, where, "write {type: basic|apiKey|bearer, ...}")
    kind = doc.optional_text(auth["type"][1] if "type" in auth else None, f"{where}.type", "write basic, "
                             "apiKey or bearer")

    def field(section: str, name: str) -> str:
        fields = doc.mapping(auth[section][1], f"{where}.{section}", f"write {section}: {{...}}") \
            if section in auth else {}
        return doc.optional_text(fields[name][1] if name in fields else None, f"{where}.{section}.{name}",
                                 "write it as text") or ""

    if kind == "basic":
        token = base64.b64encode(f"{field('basic', 'user')}:{field('basic', 'password')}".encode()).decode()
        return [("Authorization", f"Basic {token}")], [], []
    if kind == "bearer":
        return [("Authorization", f"Bearer {field('bearer', 'token')}")], [], []
    if kind == "apiKey":
        pair = (field("apiKey", "key"), field("apiKey", "value"))
        return ([], [pair], []) if field("apiKey", "in") == "query" else ([pair], [], [])
    return [], [], [NotConverted(line_of(node), f"{where} ({kind})", "is not basic, apiKey or bearer; add "
                                 "the credentials to the command by hand")]


def _quoted_header(key: str, value: str) -> str:
    return f"-H {shlex.quote(f'{key}: {value}')}"


def _data(flag: str, stdin: str, data: str) -> tuple[str, str, list[str]]:
    """(the data argument, what ends the command line, the here-document lines after it): a
    body of several lines is sent from a here-document, so that it reads as it was written."""
    if "\n" not in data.rstrip("\n"):
        return f"{flag} {shlex.quote(data.rstrip(chr(10)))}", "", []
    end = "EOF"
    while end in data.splitlines():
        end += "_"
    return f"{flag} {stdin}", f" <<'{end}'", [*data.rstrip("\n").split("\n"), end]


def _variables(*texts: str) -> list[str]:
    found = sorted({match.group() for text in texts for match in _VARIABLE.finditer(text)})
    if not found:
        return []
    return [f"# Replace {', '.join(found)} with {'its value' if len(found) == 1 else 'their values'} "
            "from your Tracetest variable set first."]


def _http(doc: Document, node: yaml.Node) -> tuple[list[str], list[NotConverted]]:
    request = doc.mapping(node, "trigger.httpRequest", "write {url: ..., method: ..., headers: [...]}")
    skipped = _unknown_keys(doc, request, _HTTP_KEYS, "trigger.httpRequest")
    if "url" not in request:
        doc.fail(node, "trigger.httpRequest has no `url`; Tracetest needs one too")
    url = doc.text(request["url"][1], "trigger.httpRequest.url", "write the URL as text")
    if not _VARIABLE.search(url) and not url.lower().startswith(("http://", "https://")):
        doc.fail(request["url"][1], f"trigger.httpRequest.url {url!r} is not an http(s) URL; write e.g. "
                                    "http://frontend:8080/checkout")
    method = doc.optional_text(request["method"][1] if "method" in request else None,
                               "trigger.httpRequest.method", "write GET, POST, …") or "GET"
    headers = _pairs(doc, request["headers"][1] if "headers" in request else None,
                     "trigger.httpRequest.headers")
    auth_node = request.get("auth", request.get("authentication", (None, None)))[1]
    auth_headers, query, more = _auth_headers(doc, auth_node, "trigger.httpRequest.auth")
    if query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
    body = doc.optional_text(request["body"][1] if "body" in request else None, "trigger.httpRequest.body",
                             "write the body as text (a JSON body in quotes or a `|` block)")
    verify = "sslVerification" in request and request["sslVerification"][1].value == "true"
    parts = [f"curl -X {shlex.quote(method.upper())} {shlex.quote(url)}"]
    if url.lower().startswith("https:") and not verify:
        parts.append("--insecure")  # Tracetest skips certificate checks unless sslVerification: true
    parts += [_quoted_header(key, value) for key, value in [*headers, *auth_headers]]
    parts.append(f"-H {_TRACEPARENT}")
    redirect, after = "", list[str]()
    if body:
        flag, redirect, after = _data("--data-binary", "@-", body)
        parts.append(flag)
    parts[-1] += redirect
    lines = [*_variables(url, body or "", *(value for _, value in headers)), *_continued(parts), *after]
    return lines, skipped + more


def _grpc(doc: Document, node: yaml.Node) -> tuple[list[str], list[NotConverted]]:
    request = doc.mapping(node, "trigger.grpc", "write {protobufFile: ..., address: ..., method: ...}")
    skipped = _unknown_keys(doc, request, _GRPC_KEYS, "trigger.grpc")

    def text(key: str) -> str:
        return doc.optional_text(request[key][1] if key in request else None, f"trigger.grpc.{key}",
                                 "write it as text") or ""

    metadata = _pairs(doc, request["metadata"][1] if "metadata" in request else None, "trigger.grpc.metadata")
    auth_headers, query, more = _auth_headers(doc, request["auth"][1] if "auth" in request else None,
                                              "trigger.grpc.auth")
    method = text("method")
    if text("service") and "." not in method and "/" not in method:
        method = f"{text('service')}/{method}"
    parts = ["grpcurl -plaintext"]  # drop -plaintext for a server with TLS
    if text("protobufFile"):
        parts.append(f"-proto {shlex.quote(text('protobufFile'))}")
    parts += [_quoted_header(key, value) for key, value in [*metadata, *auth_headers, *query]]
    parts.append(f"-H {_TRACEPARENT}")
    redirect, after = "", list[str]()
    if text("request"):
        flag, redirect, after = _data("-d", "@", text("request"))  # grpcurl reads stdin from `-d @`
        parts.append(flag)
    parts.append(f"{shlex.quote(text('address') or '<host:port>')} {shlex.quote(method or '<method>')}"
                 + redirect)
    lines = [*_variables(text("address"), text("request")), *_continued(parts), *after]
    return lines, skipped + more


def _trace_id(doc: Document, node: yaml.Node) -> tuple[list[str], list[NotConverted]]:
    request = doc.mapping(node, "trigger.traceid", "write {id: <trace id>}")
    skipped = _unknown_keys(doc, request, ("id",), "trigger.traceid")
    trace_id = doc.optional_text(request["id"][1] if "id" in request else None, "trigger.traceid.id",
                                 "write the trace id") or "<trace id>"
    if "id" in request and not _VARIABLE.search(trace_id) and not _is_trace_id(trace_id):
        doc.fail(request["id"][1], f"trigger.traceid.id {trace_id!r} is not a trace id; write its 32 hex "
                                   "digits, or a variable (${var:TRACE_ID})")
    lines = [*_variables(trace_id), "# Tracetest judged an existing trace; so does this spec:",
             f"TRACE_ID={shlex.quote(trace_id)}"]
    return lines, skipped


def _is_trace_id(text: str) -> bool:
    try:
        trace_id_bytes(text)
    except ValueError:
        return False
    return True


def _continued(parts: list[str]) -> list[str]:
    """One argument group a line, joined by backslashes, as a person would type it."""
    return [part + (" \\" if index < len(parts) - 1 else "") if index == 0 else
            "  " + part + (" \\" if index < len(parts) - 1 else "")
            for index, part in enumerate(parts)]
