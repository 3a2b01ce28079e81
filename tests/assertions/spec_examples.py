"""Flow specs shared by the spec tests."""

from __future__ import annotations

DESIGN_EXAMPLE = """\
name: checkout
find:                       # how to find the trace when no trace id is given
  root_service: frontend
  root_name: "POST /checkout"      # glob
  attributes: {order.id: "A-17"}   # on any span of the trace
  since: 60s                       # look-back window
wait:
  timeout: 10s              # give up after this
  settle: 250ms             # quiet window before universal checks pass
  parent_grace: 1s          # how long a missing parent may hold up settling
peers: {stripe: "127.0.0.1:9001"}  # names for uninstrumented peers
expect:
  hops:                     # expected hand-offs, in order
    - frontend -> auth
    - [frontend -> cart, frontend -> recommendations]   # a group: any order among them
    - cart -> inventory
    - frontend -> payment
    - payment -> stripe                               # uninstrumented peer
    - orders ~> email                                 # asynchronous, through a queue
  order: subsequence        # subsequence (default) | exact | any
  times: {cart -> inventory: 1, "* -> payment": 1}    # multiplicity; a retry makes it 2
  chains:                   # causal nesting: each hop happens inside the previous callee
    - [frontend, cart, inventory]
  budgets:
    trace: 2s               # the entry span (§6) from start to end
    hops: {cart -> inventory: 200ms, "* -> payment": 1s}   # the caller span, per attempt
    deadlines: true         # no callee works on after its caller gave up
    deadline_slack: 10ms
  propagation:
    connected: true         # default true: no missing parent, no broken hop
    headers:                # checked on every synchronous hop's callee span
      traceparent: valid    # W3C-valid, same trace id, parent-id = the caller's span id
      x-request-id: same    # present on every hop, one value across the flow
      authorization: present
    baggage: {tenant: acme} # on every synchronous hop's callee span
    async: false            # true: check headers and baggage on async hops too
  errors: none              # none (default) | any | {allow: [hop or selector, ...]}
  spans:                    # free-form span assertions
    - select: {service: payment, kind: server, name: "POST /charge*"}
      count: 1              # 1 | ">=1" | "0" | "<=2"
      attributes: {http.response.status_code: 200}
      max_duration: 500ms
"""
