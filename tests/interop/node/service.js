'use strict';
// storefront: a Node.js service instrumented with the OpenTelemetry JS SDK, for tracebaton's
// interop tests. POST /buy {"sku": ...} asks catalog for the product, then inventory for a
// reservation (both Python services of the demo shop), and answers with both.
//
// Configured only from the standard environment that `tracebaton.sut_env()` returns:
//   OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL
//   (http/protobuf or http/json), OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY,
//   OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST, OTEL_SEMCONV_STABILITY_OPT_IN;
// and CATALOG_URL, INVENTORY_URL, PORT (0 picks a free one).
//
// Like the shop's services it forwards x-request-id and x-demo-fault, and plays
// `drop-request-id@storefront` (does not forward x-request-id).
// Prints `tracebaton-interop: ready service=NAME url=http://127.0.0.1:PORT otlp=PROTOCOL`.

const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes, defaultResource } = require('@opentelemetry/resources');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} = require('@opentelemetry/core');

const SERVICE = process.env.OTEL_SERVICE_NAME || 'storefront';
const PROTOCOL = (
  process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ||
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL ||
  'http/protobuf'
).trim();

function makeExporter() {
  // each exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (adding /v1/traces) and _HEADERS itself
  if (PROTOCOL === 'http/protobuf') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter();
  }
  if (PROTOCOL === 'http/json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter();
  }
  throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${PROTOCOL}: storefront speaks http/protobuf or http/json`);
}

const captured = (process.env.OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST || '')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);

const provider = new NodeTracerProvider({
  resource: defaultResource().merge(resourceFromAttributes({ 'service.name': SERVICE })),
  spanProcessors: [
    new BatchSpanProcessor(makeExporter(), {
      scheduledDelayMillis: Number(process.env.OTEL_BSP_SCHEDULE_DELAY || 5000),
    }),
  ],
});
provider.register({
  propagator: new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  }),
});
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new HttpInstrumentation({
      headersToSpanAttributes: { server: { requestHeaders: captured } },
      ignoreIncomingRequestHook: (request) => request.url === '/healthz',
    }),
  ],
});

// required after the instrumentation is registered, so that it is the patched module
const http = require('node:http');
const crypto = require('node:crypto');

const CATALOG_URL = process.env.CATALOG_URL;
const INVENTORY_URL = process.env.INVENTORY_URL;

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function call(method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const request = http.request(
      url,
      {
        method,
        headers: {
          ...headers,
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        },
      },
      (response) => {
        readBody(response).then((text) => {
          if (response.statusCode >= 400) {
            reject(Object.assign(new Error(`${url} answered ${response.statusCode}: ${text}`), {
              status: response.statusCode,
            }));
          } else {
            resolve(JSON.parse(text));
          }
        }, reject);
      },
    );
    request.setTimeout(5000, () => request.destroy(new Error(`${url} did not answer within 5 s`)));
    request.on('error', reject);
    request.end(data);
  });
}

function answer(response, status, body, requestId) {
  const data = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    ...(requestId ? { 'x-request-id': requestId } : {}),
  });
  response.end(data);
}

function faultsFor(header) {
  return new Set(
    (header || '')
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.endsWith(`@${SERVICE}`))
      .map((item) => item.slice(0, item.lastIndexOf('@'))),
  );
}

async function buy(request, response) {
  const text = await readBody(request);
  const order = text ? JSON.parse(text) : {};
  const sku = order.sku || 'tea-earl-grey';
  const requestId = request.headers['x-request-id'] || crypto.randomUUID().replace(/-/g, '');
  const faultHeader = request.headers['x-demo-fault'];
  const headers = {};
  if (!faultsFor(faultHeader).has('drop-request-id')) headers['x-request-id'] = requestId;
  if (faultHeader) headers['x-demo-fault'] = faultHeader;
  try {
    const product = await call('GET', `${CATALOG_URL}/products/${encodeURIComponent(sku)}`, headers);
    const reservation = await call('POST', `${INVENTORY_URL}/reserve`, headers, {
      items: [{ sku, quantity: 1 }],
    });
    answer(response, 200, { product, reservation, request_id: requestId, service: SERVICE }, requestId);
  } catch (error) {
    answer(response, 502, { error: String(error.message || error), service: SERVICE }, requestId);
  }
}

const server = http.createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/healthz') {
    answer(response, 200, { service: SERVICE, status: 'ok' });
  } else if (request.method === 'POST' && request.url === '/buy') {
    buy(request, response).catch((error) => answer(response, 500, { error: String(error) }));
  } else {
    answer(response, 404, { error: 'not found' });
  }
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections();
  // the BatchSpanProcessor would lose its last batch at exit: export it first
  provider.shutdown().then(
    () => process.exit(0),
    (error) => {
      console.error(`storefront: span export at shutdown failed: ${error}`);
      process.exit(1);
    },
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`tracebaton-interop: ready service=${SERVICE} url=http://127.0.0.1:${port} otlp=${PROTOCOL}`);
});
