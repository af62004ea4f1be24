import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { bearerToken, tokenMatches } from './bearer.js';
import type { Logger } from './log.js';
import type { ProvisioningLogEntry } from './provisioning-log.js';
import { renderLoginPage, renderStatusPage, renderMessagePage, type LogSearch, type PageAccess, type PageSync, type StatusPageView } from './status-page.js';

/** What the page reads and does, wired by the daemon to the same functions `tvsync status` and `tvsync approve` use. */
export interface StatusPageSource {
  syncs(): Promise<PageSync[]>;
  /** `tvsync approve --cycle`: releases what a stored cycle held and requests a cycle to run it. */
  approveCycle(sync: string, cycleId: string): Promise<CycleApproval>;
  /** `tvsync approve --fast-lane`. */
  approveFastLane(sync: string): Promise<{ deactivations: number; recycledAddresses: number }>;
  searchLog(sync: string, query: { email?: string; cycleId?: string; limit: number }): Promise<ProvisioningLogEntry[]>;
}

export type CycleApproval =
  | { status: 'no-cycle' }
  | { status: 'nothing-held' }
  | { status: 'approved'; deactivations: number; groupDeletions: number; memberRemovals: number; memberRemovalGroups: number; recycledAddresses: number };

/** `open`: anyone reaching the port reads the page, the token acts; `login`: reading needs the token too. */
export type StatusPageMode = 'open' | 'login';

export interface StatusPageOptions {
  mode: StatusPageMode;
  triggerToken?: string;
  syncNames: string[];
  source: StatusPageSource;
  triggerSyncNow: (sync: string) => Promise<{ requestedAt: number }>;
  log: Logger;
  /** Sessions end this long after the login (default 8 h). */
  sessionTtlMs?: number;
  /** How long a page waits for its reads or action (default 10 s) before it says Redis did not answer. */
  readTimeoutMs?: number;
}

export const SESSION_COOKIE = 'tvsync_session';
const SESSION_TTL_MS = 8 * 3_600_000;
/** A bound on memory: only token holders make sessions, so this is never reached in normal use. */
const MAX_SESSIONS = 1000;
const FORM_BODY_LIMIT = 8 * 1024;
const SEARCH_LIMIT = 100;
/** A page that waits on a Redis that does not answer says so instead of hanging. */
const READ_TIMEOUT_MS = 10_000;

const LOGIN = '/status/login';
const LOGOUT = '/status/logout';
const ACTION = /^\/status\/syncs\/([^/]+)\/(approve|sync-now)$/;

const searchSchema = z.object({
  sync: z.string().min(1).max(200),
  email: z.string().trim().max(320).optional(),
  cycle: z.string().trim().max(200).optional(),
});
const approveForm = z.union([z.object({ fastLane: z.literal('true') }), z.object({ cycle: z.string().min(1).max(200) })]);

interface Session {
  csrf: string;
  expiresAtMs: number;
  /** The outcome of the last action, shown once after the redirect. */
  notice?: { ok: boolean; text: string };
}

/** Logged-in browsers, in this process's memory: the cookie holds a random id, never the token. */
class Sessions {
  private readonly byId = new Map<string, Session>();
  constructor(private readonly ttlMs: number) {}

  create(nowMs: number): [string, Session] {
    for (const [id, s] of this.byId) if (s.expiresAtMs <= nowMs) this.byId.delete(id);
    while (this.byId.size >= MAX_SESSIONS) {
      const oldest = this.byId.keys().next().value;
      if (oldest === undefined) break;
      this.byId.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const session = { csrf: randomBytes(32).toString('base64url'), expiresAtMs: nowMs + this.ttlMs };
    this.byId.set(id, session);
    return [id, session];
  }

  get(id: string | undefined, nowMs: number): Session | undefined {
    if (id === undefined) return undefined;
    const session = this.byId.get(id);
    if (!session) return undefined;
    if (session.expiresAtMs <= nowMs) {
      this.byId.delete(id);
      return undefined;
    }
    return session;
  }

  end(id: string | undefined): void {
    if (id !== undefined) this.byId.delete(id);
  }
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Over TLS, or behind a proxy that says the browser used https. */
function secureRequest(req: IncomingMessage): boolean {
  return (
    (req.socket as TLSSocket).encrypted === true ||
    String(req.headers['x-forwarded-proto'] ?? '')
      .split(',')[0]
      ?.trim() === 'https'
  );
}

function sessionCookie(req: IncomingMessage, id: string, maxAgeS: number): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${secureRequest(req) ? '; Secure' : ''}`;
}

/**
 * A form POST must come from this page: its Origin (or, where a browser sends none, its Referer)
 * names the host the request was sent to. SameSite=Strict and the CSRF field are the other locks.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? '')
    .split(',')[0]
    ?.trim()
    .toLowerCase();
  if (!host) return false;
  const origin = req.headers.origin;
  const from = typeof origin === 'string' && origin !== '' ? origin : req.headers.referer;
  if (typeof from !== 'string' || from === '' || from === 'null') return false;
  try {
    return new URL(from).host.toLowerCase() === host;
  } catch {
    return false;
  }
}

function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > FORM_BODY_LIMIT) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? undefined : new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

/** Headers that keep the page from being framed, sniffed or made to run script. */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

function sendHtml(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0, ...headers });
  res.end();
}

class PageTimeout extends Error {}

function boundedBy(timeoutMs: number): <T>(work: Promise<T>) => Promise<T> {
  return <T>(work: Promise<T>) => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new PageTimeout()), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  };
}

function pathParam(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function approvalText(sync: string, cycleId: string, a: CycleApproval): { ok: boolean; text: string } {
  if (a.status === 'no-cycle') return { ok: false, text: `Sync ${sync} has no stored cycle ${cycleId} (cycles are kept 3 days).` };
  if (a.status === 'nothing-held') return { ok: false, text: `Cycle ${cycleId} held nothing for approval.` };
  const recycled = a.recycledAddresses ? `, ${a.recycledAddresses} recycled addresses` : '';
  return {
    ok: true,
    text: `Approved ${a.deactivations} deactivations, ${a.groupDeletions} group deletions and ${a.memberRemovals} member removals in ${a.memberRemovalGroups} group(s)${recycled} held by cycle ${cycleId}; a cycle was requested to run them (those no longer needed are not done).`,
  };
}

/**
 * The status page's routes: GET /status (and / redirecting to it), POST /status/login and
 * /status/logout, POST /status/syncs/{name}/approve and /status/syncs/{name}/sync-now. Reading
 * needs no token in `open` mode; acting needs the trigger token, as a bearer header (answered
 * with JSON) or a session from the login form (answered with a redirect back to the page).
 */
export function statusPageRoutes(
  opts: StatusPageOptions,
): (req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams) => Promise<void> {
  const token = opts.triggerToken === '' ? undefined : opts.triggerToken;
  const known = new Set(opts.syncNames);
  const ttlMs = opts.sessionTtlMs ?? SESSION_TTL_MS;
  const sessions = new Sessions(ttlMs);
  const readTimeoutMs = opts.readTimeoutMs ?? READ_TIMEOUT_MS;
  const bounded = boundedBy(readTimeoutMs);

  function sessionOf(req: IncomingMessage): [string | undefined, Session | undefined] {
    const id = cookieValue(req, SESSION_COOKIE);
    return [id, sessions.get(id, Date.now())];
  }

  function bearerOk(req: IncomingMessage): boolean {
    const given = bearerToken(req);
    return token !== undefined && given !== undefined && tokenMatches(given, token);
  }

  async function search(query: URLSearchParams): Promise<LogSearch | undefined> {
    const parsed = searchSchema.safeParse({
      sync: query.get('sync') ?? undefined,
      email: query.get('email') || undefined,
      cycle: query.get('cycle') || undefined,
    });
    if (!parsed.success || !known.has(parsed.data.sync)) return undefined;
    const { sync, email, cycle } = parsed.data;
    const entries = await opts.source.searchLog(sync, { ...(email ? { email } : {}), ...(cycle ? { cycleId: cycle } : {}), limit: SEARCH_LIMIT });
    return { sync, ...(email ? { email } : {}), ...(cycle ? { cycleId: cycle } : {}), entries, limit: SEARCH_LIMIT };
  }

  async function showPage(
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    extra: { status?: number; notice?: StatusPageView['notice'] } = {},
  ) {
    const [, session] = sessionOf(req);
    const signedIn = session !== undefined || bearerOk(req);
    if (opts.mode === 'login' && !signedIn)
      return sendHtml(res, extra.status ?? 200, renderLoginPage({ tokenConfigured: token !== undefined, failed: extra.status === 401 }));
    const access: PageAccess = token === undefined ? { kind: 'no-token' } : session ? { kind: 'session', csrf: session.csrf } : { kind: 'anonymous' };
    const notice = extra.notice ?? session?.notice;
    if (session) delete session.notice;
    const [syncs, found] = await bounded(Promise.all([opts.source.syncs(), search(query)]));
    const view: StatusPageView = {
      syncs,
      access,
      syncNames: opts.syncNames,
      nowMs: Date.now(),
      ...(notice ? { notice } : {}),
      ...(found ? { search: found } : {}),
    };
    return sendHtml(res, extra.status ?? 200, renderStatusPage(view));
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    if (token === undefined) return sendHtml(res, 403, renderLoginPage({ tokenConfigured: false }));
    if (!sameOrigin(req)) return sendHtml(res, 403, renderLoginPage({ tokenConfigured: true }));
    const given = form?.get('token') ?? '';
    if (!tokenMatches(given, token)) {
      opts.log.warn('status page: a login with a wrong token was refused');
      return showPage(req, res, new URLSearchParams(), { status: 401, notice: { ok: false, text: 'That token is not the one configured.' } });
    }
    // A fresh id at each login, so an id planted before it is worth nothing.
    sessions.end(cookieValue(req, SESSION_COOKIE));
    const [id] = sessions.create(Date.now());
    return redirect(res, '/status', { 'set-cookie': sessionCookie(req, id, Math.floor(ttlMs / 1000)) });
  }

  /** The session whose CSRF field and origin the form carries; undefined (and the answer sent) when not. */
  function checkedSession(req: IncomingMessage, res: ServerResponse, form: URLSearchParams | undefined): Session | undefined {
    const [, session] = sessionOf(req);
    if (!session) {
      sendHtml(res, 401, renderLoginPage({ tokenConfigured: token !== undefined }));
      return undefined;
    }
    const csrf = form?.get('csrf') ?? '';
    if (!sameOrigin(req) || !tokenMatches(csrf, session.csrf)) {
      opts.log.warn('status page: a form without a valid CSRF token or from another origin was refused');
      sendHtml(
        res,
        403,
        renderMessagePage('This form did not come from the status page (or the page is older than your login): reload the page and try again.'),
      );
      return undefined;
    }
    return session;
  }

  async function act(req: IncomingMessage, res: ServerResponse, syncParam: string, action: 'approve' | 'sync-now'): Promise<void> {
    const form = await readForm(req);
    if (token === undefined) return sendJson(res, 403, { error: 'actions are disabled: set http.triggerToken in the config to enable them' });
    const byBearer = bearerOk(req);
    const session = byBearer ? undefined : checkedSession(req, res, form);
    if (!byBearer && !session) return;
    // A script gets JSON, a browser a page.
    const fail = (status: number, text: string) => (byBearer ? sendJson(res, status, { error: text }) : sendHtml(res, status, renderMessagePage(text)));
    const sync = pathParam(syncParam);
    if (sync === undefined || !known.has(sync)) return fail(404, 'There is no sync of that name.');
    let notice: { ok: boolean; text: string };
    let body: unknown;
    if (action === 'sync-now') {
      const { requestedAt } = await bounded(opts.triggerSyncNow(sync));
      notice = { ok: true, text: `A cycle of sync ${sync} was requested at ${new Date(requestedAt).toISOString()}; it runs as soon as a worker is free.` };
      body = { sync, requested: true, requestedAt };
    } else {
      const fields = approveForm.safeParse(Object.fromEntries(form ?? []));
      if (!fields.success) return fail(400, 'Name the cycle (cycle=ID) or the fast lane (fastLane=true) to approve.');
      if ('fastLane' in fields.data) {
        const released = await bounded(opts.source.approveFastLane(sync));
        const n = released.deactivations + released.recycledAddresses;
        notice = n
          ? {
              ok: true,
              text: `Approved ${released.deactivations} deactivations and ${released.recycledAddresses} recycled addresses the fast lane held; each person is synced again now.`,
            }
          : { ok: false, text: `The fast lane of sync ${sync} holds nothing for approval.` };
        body = { sync, fastLane: true, ...released };
      } else {
        const approved = await bounded(opts.source.approveCycle(sync, fields.data.cycle));
        notice = approvalText(sync, fields.data.cycle, approved);
        body = { sync, cycleId: fields.data.cycle, ...approved };
      }
      opts.log.info({ sync, by: byBearer ? 'bearer' : 'session', ok: notice.ok }, 'status page: approval');
    }
    if (byBearer) return sendJson(res, notice.ok ? 200 : 409, body);
    if (session) session.notice = notice;
    return redirect(res, `/status#sync-${encodeURIComponent(sync)}`);
  }

  return (req, res, pathname, query) =>
    route(req, res, pathname, query).catch((err: unknown) => {
      if (res.headersSent) throw err;
      // Redis slow or gone: a fixed sentence for the visitor, the cause (scrubbed by the logger) in the log.
      const why = err instanceof PageTimeout ? `Redis did not answer within ${readTimeoutMs / 1000} s` : 'reading the state failed';
      opts.log.error({ path: pathname, err: err instanceof Error ? err.message : String(err) }, `status page: ${why}`);
      const next =
        req.method === 'POST' ? 'whether the action took effect shows on the page once Redis answers again' : 'reload in a moment; the log has the cause';
      sendHtml(res, 503, renderMessagePage(`${why}: ${next}.`));
    });

  async function route(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams): Promise<void> {
    if (pathname === '/' || pathname === '/status') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        req.resume();
        res.writeHead(405, { allow: 'GET', 'content-length': 0 });
        return void res.end();
      }
      req.resume();
      if (pathname === '/') return redirect(res, '/status');
      return showPage(req, res, query);
    }
    if (req.method !== 'POST') {
      req.resume();
      res.writeHead(405, { allow: 'POST', 'content-length': 0 });
      return void res.end();
    }
    if (pathname === LOGIN) return login(req, res);
    if (pathname === LOGOUT) {
      const form = await readForm(req);
      const session = checkedSession(req, res, form);
      if (!session) return;
      sessions.end(cookieValue(req, SESSION_COOKIE));
      return redirect(res, '/status', { 'set-cookie': sessionCookie(req, '', 0) });
    }
    const match = ACTION.exec(pathname);
    if (!match?.[1] || !match[2]) {
      req.resume();
      return sendJson(res, 404, { error: 'not found' });
    }
    return act(req, res, match[1], match[2] as 'approve' | 'sync-now');
  }
}
