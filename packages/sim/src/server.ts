/**
 * The HTTP server: one port, routed by path prefix (`/hub`, `/router`, `/providers`, `/_sim`).
 * Every request under the first three is recorded when its response closes. The server tracks
 * its sockets so that closing it also ends hung requests and idle keep-alive connections.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import {
  handleEndpointControl,
  handleEndpointInference,
  handleEndpointManagement,
  type SimEndpoints,
} from './endpoints/endpoint-routes.js';
import { errorReply, sendReply } from './http/reply.js';
import type { RequestRecord, RouteKind } from './recorder.js';
import { type ControlActions, handleControl } from './routes/control.js';
import type { Exchange } from './routes/exchange.js';
import { handleHub } from './routes/hub.js';
import { handleProvider } from './routes/providers.js';
import { handleRouter } from './routes/router.js';
import type { SimState } from './state.js';

const PREFIXES: ReadonlyArray<[string, RouteKind]> = [
  ['/hub/', 'hub'],
  ['/router/', 'router'],
  ['/providers/', 'provider'],
];

export interface SimServer {
  server: Server;
  /** Stop accepting, and destroy every open socket (hung requests included). */
  close(): Promise<void>;
}

export function createSimServer(
  state: SimState,
  control: ControlActions,
  endpoints: SimEndpoints,
): SimServer {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    dispatch(state, control, endpoints, req, res).catch((error: unknown) => {
      process.stderr.write(`${JSON.stringify({ event: 'sim.handler_error', error: String(error) })}\n`);
      if (!res.headersSent) sendReply(res, errorReply(500, 'simulator error'));
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }),
  };
}

async function dispatch(
  state: SimState,
  control: ControlActions,
  endpoints: SimEndpoints,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sim.invalid');
  const path = url.pathname;
  // Inference Endpoints keep their own counters (endpoints/sim-endpoint.ts), not the request log.
  if (path.startsWith('/endpoints/')) {
    await handleEndpointInference(state, endpoints, req, res, path.slice('/endpoints/'.length));
    return;
  }
  if (path.startsWith('/endpoints-api/')) {
    handleEndpointManagement(endpoints, req, res, path.slice('/endpoints-api/'.length), state.url);
    return;
  }
  if (path === '/_sim/endpoints' || path.startsWith('/_sim/endpoints/')) {
    await handleEndpointControl(endpoints, req, res, path.slice('/_sim/endpoints/'.length));
    return;
  }
  if (path.startsWith('/_sim/')) {
    await handleControl(state, { req, res, url }, path.slice('/_sim/'.length), control);
    return;
  }
  const prefix = PREFIXES.find(([start]) => path.startsWith(start));
  if (!prefix) {
    sendReply(res, errorReply(404, 'Not Found'));
    return;
  }
  const [start, route] = prefix;
  const exchange = open(state, req, res, url, route);
  const rest = path.slice(start.length);
  if (route === 'hub') handleHub(state, exchange, rest);
  else if (route === 'router') await handleRouter(state, exchange, rest);
  else await handleProvider(state, exchange, rest);
}

// Start the record of a request; it is logged when the response closes, however it ends.
function open(
  state: SimState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  route: RouteKind,
): Exchange {
  const t = state.now();
  const requestId = randomUUID();
  const billTo = req.headers['x-hf-bill-to'];
  const record: RequestRecord = {
    seq: state.recorder.begin(t),
    t,
    durationMs: 0,
    route,
    provider: null,
    path: url.pathname,
    model: null,
    status: 0,
    tokenLabel: 'anonymous',
    authorizationKind: 'none',
    billTo: (Array.isArray(billTo) ? billTo[0] : billTo) ?? null,
    items: 1,
    fault: null,
    scripted: false,
    requestId,
  };
  res.once('close', () => {
    record.status = res.headersSent ? res.statusCode : 0;
    record.durationMs = state.now() - t;
    state.recorder.end(record);
  });
  return { req, res, url, record, headers: { 'x-request-id': requestId } };
}
