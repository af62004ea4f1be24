import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { secrets } from '../net/secrets.js';
import { hasToken } from './bearer.js';
import { statusPageRoutes, type StatusPageMode, type StatusPageSource } from './status-page-http.js';
import type { Logger } from './log.js';
import type { TvsyncMetrics } from './metrics.js';

export interface ReadyCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * What /readyz tells anyone: fixed sentences, never outside text (a Redis error, a quarantine
 * reason, a failure message may carry names, addresses or worse). The checks behind it need the token.
 */
export const READY_REASONS = {
  ready: 'ready',
  redisDown: 'Redis does not answer',
  redisLost: 'Redis lost its data; the schedule and queue settings are being restored',
  refused: "TeamViewer refused a sync's token",
  quarantined: 'a sync is quarantined',
  healthUnknown: "a sync's health could not be read",
  timedOut: 'the readiness checks did not finish in time',
  failed: 'the readiness checks failed',
} as const;
export type ReadyReason = (typeof READY_REASONS)[keyof typeof READY_REASONS];

/**
 * Why /healthz fails: fixed sentences, shown to anyone (runtime/liveness.ts decides them). Only a
 * restart-worthy fault is one: Redis that does not answer is readiness's business.
 */
export const LIVENESS_REASONS = {
  overdue: 'a scheduled cycle is overdue: no worker started it',
  stopped: 'a worker of this process has stopped',
  stuck: 'a worker of this process takes no jobs while jobs wait',
} as const;
export type LivenessReason = (typeof LIVENESS_REASONS)[keyof typeof LIVENESS_REASONS];

export interface Liveness {
  live: boolean;
  /** Which sync and queue, and why; the syncs are named to token holders only. */
  problems: { sync: string; queue: string; reason: LivenessReason }[];
}

export interface Readiness {
  ready: boolean;
  reason: ReadyReason;
  checks: ReadyCheck[];
}

export interface HttpServerOptions {
  host: string;
  port: number;
  log: Logger;
  metrics: TvsyncMetrics;
  ready: () => Promise<Readiness>;
  /** Liveness beyond "the process answers"; without it /healthz is always ok. */
  live?: () => Promise<Liveness>;
  syncNames: string[];
  /** Shows /readyz's checks, and allows POST /syncs/{name}/sync-now. */
  triggerToken?: string;
  /** When set, /metrics needs it as a bearer token. */
  metricsToken?: string;
  triggerSyncNow: (sync: string) => Promise<{ requestedAt: number }>;
  /** POST /syncs/{name}/users/{id}/sync (needs the trigger token): one person now, answered with the step report. */
  syncUser?: (sync: string, ref: string, opts: { dryRun: boolean }) => Promise<{ status: number; body: unknown }>;
  /** /hooks/{sync}/{name}: an IdP pushing a change. The receiver authenticates it (its own shared secret), not the trigger token. */
  receiveHook?: (sync: string, name: string, req: InboundHook) => Promise<{ status: number; headers?: Record<string, string>; body?: string }>;
  /** GET /status and its forms (status-page-http.ts); absent: no page. */
  statusPage?: { mode: StatusPageMode; source: StatusPageSource; readTimeoutMs?: number };
}

/** A hook request as the receivers take it: lower-case headers, the query, and the body (at most HOOK_BODY_LIMIT bytes). */
export interface InboundHook {
  method: string;
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: string;
}

/** Okta and Graph deliver batches far below this. */
const HOOK_BODY_LIMIT = 1024 * 1024;

export interface HttpServerHandle {
  port: number;
  close(): Promise<void>;
}

/** How long requests still running at close() get before their sockets are cut. */
const CLOSE_GRACE_MS = 2000;
/** /readyz answers within this, whatever Redis does: a probe that hangs is worse than a "not ready". */
const READY_TIMEOUT_MS = 1500;
/** The liveness checks bound their own reads; this only guards against a judgement that never ends. */
const LIVE_TIMEOUT_MS = 3000;

const SYNC_NOW = /^\/syncs\/([^/]+)\/sync-now$/;
const USER_SYNC = /^\/syncs\/([^/]+)\/users\/([^/]+)\/sync$/;
const HOOK = /^\/hooks\/([^/]+)\/([a-z]+)$/;
/** A sync name from the path: a percent-decoded, bounded string (the known names decide the rest). */
const syncNameParam = z.string().min(1).max(200);

type Route =
  | { name: 'healthz' | 'readyz' | 'metrics'; allow: 'GET' }
  | { name: 'sync-now'; allow: 'POST'; sync: string | undefined }
  | { name: 'user-sync'; allow: 'POST'; sync: string | undefined; user: string | undefined }
  | { name: 'hook'; allow: 'GET, POST'; sync: string | undefined; hook: string };

function pathParam(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let decoded: string | undefined;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    decoded = undefined;
  }
  const parsed = syncNameParam.safeParse(decoded);
  return parsed.success ? parsed.data : undefined;
}

function route(pathname: string): Route | undefined {
  if (pathname === '/healthz') return { name: 'healthz', allow: 'GET' };
  if (pathname === '/readyz') return { name: 'readyz', allow: 'GET' };
  if (pathname === '/metrics') return { name: 'metrics', allow: 'GET' };
  const user = USER_SYNC.exec(pathname);
  if (user) return { name: 'user-sync', allow: 'POST', sync: pathParam(user[1]), user: pathParam(user[2]) };
  const hook = HOOK.exec(pathname);
  if (hook?.[2]) return { name: 'hook', allow: 'GET, POST', sync: pathParam(hook[1]), hook: hook[2] };
  const match = SYNC_NOW.exec(pathname);
  if (!match?.[1]) return undefined;
  return { name: 'sync-now', allow: 'POST', sync: pathParam(match[1]) };
}

/** The body of a hook request, or undefined when it is larger than the limit. */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        resolve(undefined);
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

class ReadyTimeout extends Error {}

/** The readiness, or a not-ready answer when it fails or takes too long. */
async function boundedReadiness(ready: () => Promise<Readiness>): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      ready(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ReadyTimeout()), READY_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    if (err instanceof ReadyTimeout)
      return { ready: false, reason: READY_REASONS.timedOut, checks: [{ name: 'readiness', ok: false, detail: `no answer within ${READY_TIMEOUT_MS} ms` }] };
    return { ready: false, reason: READY_REASONS.failed, checks: [{ name: 'readiness', ok: false, detail: errorMessage(err) }] };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The liveness, or "live" when the judgement fails or takes too long: only positive evidence of a
 * stall restarts the process.
 */
async function boundedLiveness(live: () => Promise<Liveness>, log: Logger): Promise<Liveness> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      live(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no judgement within ${LIVE_TIMEOUT_MS} ms`)), LIVE_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'the liveness checks failed; answering live');
    return { live: true, problems: [] };
  } finally {
    clearTimeout(timer);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The daemon's HTTP side: liveness, readiness, Prometheus metrics, the manual triggers (a cycle,
 * one user) and the IdPs' hooks. Plain node:http, as the surface is a handful of routes.
 */
export function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const { log, metrics } = opts;
  const known = new Set(opts.syncNames);
  const page = opts.statusPage
    ? statusPageRoutes({
        mode: opts.statusPage.mode,
        source: opts.statusPage.source,
        syncNames: opts.syncNames,
        triggerSyncNow: opts.triggerSyncNow,
        log,
        ...(opts.triggerToken ? { triggerToken: opts.triggerToken } : {}),
        ...(opts.statusPage.readTimeoutMs ? { readTimeoutMs: opts.statusPage.readTimeoutMs } : {}),
      })
    : undefined;
  const isPagePath = (pathname: string) => page !== undefined && (pathname === '/' || pathname === '/status' || pathname.startsWith('/status/'));

  async function handle(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams): Promise<void> {
    if (page && isPagePath(pathname)) return page(req, res, pathname, query);
    const found = route(pathname);
    if (!found) return sendJson(res, 404, { error: 'not found' });
    if (!found.allow.split(', ').includes(req.method ?? ''))
      return sendJson(res, 405, { error: `method not allowed; use ${found.allow}` }, { allow: found.allow });

    switch (found.name) {
      case 'healthz': {
        if (!opts.live) return sendJson(res, 200, { status: 'ok' });
        const liveness = await boundedLiveness(opts.live, log);
        if (liveness.live) return sendJson(res, 200, { status: 'ok' });
        const sentences = Object.values(LIVENESS_REASONS) as string[];
        const problems = liveness.problems.filter((p) => sentences.includes(p.reason));
        log.warn({ problems }, 'liveness fails: a restart is due');
        const reasons = [...new Set(problems.map((p) => p.reason))];
        return sendJson(res, 503, hasToken(req, opts.triggerToken) ? { status: 'failing', reasons, problems } : { status: 'failing', reasons });
      }
      case 'readyz': {
        const readiness = await boundedReadiness(opts.ready);
        const reason = Object.values(READY_REASONS).includes(readiness.reason) ? readiness.reason : READY_REASONS.failed;
        // The checks' details are outside text: for token holders only, and scrubbed even then.
        const body = hasToken(req, opts.triggerToken)
          ? { ready: readiness.ready, reason, checks: secrets.scrubDeep(readiness.checks) }
          : { ready: readiness.ready, reason };
        return sendJson(res, readiness.ready ? 200 : 503, body);
      }
      case 'metrics': {
        if (opts.metricsToken !== undefined && opts.metricsToken !== '' && !hasToken(req, opts.metricsToken)) {
          return sendJson(res, 401, { error: 'a valid bearer token is required' }, { 'www-authenticate': 'Bearer realm="tvsync"' });
        }
        const text = await metrics.metrics();
        res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(text);
        return;
      }
      case 'sync-now': {
        if (opts.triggerToken === undefined || opts.triggerToken === '') {
          return sendJson(res, 403, { error: 'manual triggers are disabled: set http.triggerToken in the config to enable POST /syncs/{name}/sync-now' });
        }
        if (!hasToken(req, opts.triggerToken)) {
          return sendJson(res, 401, { error: 'a valid bearer token is required' }, { 'www-authenticate': 'Bearer realm="tvsync"' });
        }
        // Known names only, checked after authentication so strangers cannot probe which syncs exist.
        if (found.sync === undefined || !known.has(found.sync)) return sendJson(res, 404, { error: 'unknown sync' });
        const { requestedAt } = await opts.triggerSyncNow(found.sync);
        return sendJson(res, 202, { sync: found.sync, requested: true, requestedAt });
      }
      case 'user-sync': {
        if (opts.triggerToken === undefined || opts.triggerToken === '' || !opts.syncUser) {
          return sendJson(res, 403, {
            error: 'manual triggers are disabled: set http.triggerToken in the config to enable POST /syncs/{name}/users/{id}/sync',
          });
        }
        if (!hasToken(req, opts.triggerToken)) {
          return sendJson(res, 401, { error: 'a valid bearer token is required' }, { 'www-authenticate': 'Bearer realm="tvsync"' });
        }
        if (found.sync === undefined || !known.has(found.sync)) return sendJson(res, 404, { error: 'unknown sync' });
        if (found.user === undefined) return sendJson(res, 400, { error: 'name the user by e-mail or IdP id' });
        const dryRun = query.get('dryRun') === 'true' || query.get('dry-run') === 'true';
        const answer = await opts.syncUser(found.sync, found.user, { dryRun });
        return sendJson(res, answer.status, secrets.scrubDeep(answer.body));
      }
      case 'hook': {
        if (found.sync === undefined || !known.has(found.sync) || !opts.receiveHook) {
          req.resume();
          return sendJson(res, 404, { error: 'not found' });
        }
        const body = await readBody(req, HOOK_BODY_LIMIT);
        if (body === undefined) return sendJson(res, 413, { error: 'request body too large' });
        const headers: Record<string, string | undefined> = {};
        for (const [name, value] of Object.entries(req.headers)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        const answer = await opts.receiveHook(found.sync, found.hook, { method: req.method ?? 'GET', headers, query: Object.fromEntries(query), body });
        // A sync without that hook answers as an unknown sync does: names cannot be probed.
        if (answer.status === 404) return sendJson(res, 404, { error: 'not found' });
        const text = answer.body ?? '';
        res.writeHead(answer.status, { 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...answer.headers });
        res.end(text);
        return;
      }
    }
  }

  const server = createServer((req, res) => {
    const started = performance.now();
    let pathname = '/';
    let query = new URLSearchParams();
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      pathname = url.pathname;
      query = url.searchParams;
    } catch {
      pathname = '/';
    }
    // Only hooks and the page's forms read a body; draining the others keeps a keep-alive connection usable.
    if (!pathname.startsWith('/hooks/') && !isPagePath(pathname)) req.resume();
    res.on('finish', () => {
      // Path without the query and never the headers: either may carry a credential.
      log.debug({ method: req.method, path: pathname, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'http request');
    });
    handle(req, res, pathname, query).catch((err: unknown) => {
      log.error({ method: req.method, path: pathname, err: errorMessage(err) }, 'http request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      server.on('error', (err) => log.error({ err: err.message }, 'http server error'));
      const { port } = server.address() as AddressInfo;
      let closing: Promise<void> | undefined;
      resolve({
        port,
        close() {
          closing ??= new Promise<void>((done) => {
            const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
            force.unref();
            server.close(() => {
              clearTimeout(force);
              done();
            });
            // Idle keep-alive sockets would otherwise hold close() open until they time out.
            server.closeIdleConnections();
          });
          return closing;
        },
      });
    });
  });
}
