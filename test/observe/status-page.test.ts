import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServerHandle } from '../../src/observe/http.js';
import { createLogger } from '../../src/observe/log.js';
import { TvsyncMetrics } from '../../src/observe/metrics.js';
import type { ProvisioningLogEntry } from '../../src/observe/provisioning-log.js';
import { renderStatusPage, type PageSync } from '../../src/observe/status-page.js';
import type { CycleApproval, StatusPageMode, StatusPageSource } from '../../src/observe/status-page-http.js';
import { registerSecret } from '../../src/net/secrets.js';
import { buildReport, type CycleReport } from '../../src/plan/report.js';

const TOKEN = 'status-page-token-0123456789';
const SECRET = 'idp-client-secret-Zq81xWv0';

function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A report as a cycle that held two deactivations and failed one write leaves it; its outside texts carry markup and a secret. */
function heldReport(): CycleReport {
  const report = buildReport({
    sync: 'corp',
    cycleId: 'c-41',
    trigger: 'schedule',
    startedAtMs: Date.parse('2026-01-02T03:04:05Z'),
    finishedAtMs: Date.parse('2026-01-02T03:04:35Z'),
    results: [
      {
        key: 'updateUser.tv-9',
        kind: 'updateUser',
        sourceId: 'emp-9',
        email: 'nine@corp.example',
        after: { displayName: 'Nine' },
        status: 'failed',
        failureClass: 'invalid',
        message: `TeamViewer answered 400: <script>alert(1)</script> token=${SECRET}`,
        attempts: 1,
      },
    ],
  });
  report.held = {
    count: 2,
    pendingApproval: true,
    items: [
      { tvUserId: 'tv-1', email: 'ada@corp.example', reason: 'removed-from-scope', message: 'no longer in the directory' },
      { tvUserId: 'tv-2', email: '"><img src=x onerror=alert(2)>@corp.example', reason: 'removed-from-scope', message: `the IdP said ${SECRET}` },
    ],
  };
  report.notices = [`Okta answered 401 for Bearer ${SECRET}`];
  report.summary = { inScope: 10, teamviewerUsers: 12, managed: 10, unchanged: 5, operations: {} as never, held: 2, skipped: {} };
  return report;
}

function pageSync(overrides: Partial<PageSync> = {}): PageSync {
  return {
    sync: 'corp',
    nextCycleAt: '2026-01-02T04:00:00.000Z',
    every: 3_600_000,
    quarantined: true,
    health: { consecutiveFailures: 3, quarantinedUntil: Date.parse('2026-01-02T05:00:00Z'), reason: `the IdP refused the client secret ${SECRET} <b>` },
    pause: null,
    cycles: { active: 0, waiting: 0, delayed: 0 },
    operations: { active: 0, waiting: 0, delayed: 0, failed: 0 },
    reports: [heldReport()],
    fastLane: { enabled: true, held: [{ email: 'grace@corp.example', tvUserId: 'tv-3', message: `held: ${SECRET}`, atMs: 1, kind: 'deactivation' }] },
    ...overrides,
  };
}

const ENTRY: ProvisioningLogEntry = {
  at: '2026-01-02T03:04:06.000Z',
  cycleId: 'c-41',
  kind: 'deactivateUser',
  outcome: 'failed',
  email: 'ada@corp.example',
  failureClass: 'permanent',
  message: `TeamViewer said <i>no</i> ${SECRET}`,
};

/** The daemon's side of the page, recording what was asked of it. */
class FakeSource implements StatusPageSource {
  approvals: { sync: string; cycleId?: string; fastLane?: boolean }[] = [];
  searches: { sync: string; email?: string; cycleId?: string; limit: number }[] = [];
  syncsRead = 0;

  async syncs(): Promise<PageSync[]> {
    this.syncsRead++;
    return [pageSync()];
  }
  async approveCycle(sync: string, cycleId: string): Promise<CycleApproval> {
    this.approvals.push({ sync, cycleId });
    if (cycleId !== 'c-41') return { status: 'no-cycle' };
    return { status: 'approved', deactivations: 2, groupDeletions: 0, memberRemovals: 0, memberRemovalGroups: 0, recycledAddresses: 0 };
  }
  async approveFastLane(sync: string) {
    this.approvals.push({ sync, fastLane: true });
    return { deactivations: 1, recycledAddresses: 0 };
  }
  async searchLog(sync: string, query: { email?: string; cycleId?: string; limit: number }) {
    this.searches.push({ sync, ...query });
    return [ENTRY];
  }
}

async function startPage(opts: { token?: string; mode?: StatusPageMode; source?: FakeSource } = {}) {
  const source = opts.source ?? new FakeSource();
  const triggered: string[] = [];
  const lines: string[] = [];
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    log: createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } }),
    metrics: new TvsyncMetrics({ defaultMetrics: false }),
    ready: async () => ({ ready: true, reason: 'ready', checks: [] }),
    syncNames: ['corp'],
    ...(opts.token ? { triggerToken: opts.token } : {}),
    triggerSyncNow: async (sync) => {
      triggered.push(sync);
      return { requestedAt: Date.parse('2026-01-02T03:10:00Z') };
    },
    statusPage: { mode: opts.mode ?? 'open', source, readTimeoutMs: 300 },
  });
  return { server, source, triggered, lines };
}

const servers: HttpServerHandle[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function cookieOf(res: { headers: Record<string, string | string[] | undefined> }): string {
  const set = res.headers['set-cookie'];
  const first = Array.isArray(set) ? set[0] : set;
  if (!first) throw new Error('no cookie was set');
  return first;
}

async function login(port: number, host = `127.0.0.1:${port}`) {
  const res = await send(
    port,
    'POST',
    '/status/login',
    { 'content-type': 'application/x-www-form-urlencoded', origin: `http://${host}`, host },
    `token=${encodeURIComponent(TOKEN)}`,
  );
  expect(res.status).toBe(303);
  const cookie = cookieOf(res).split(';')[0] ?? '';
  const page = await send(port, 'GET', '/status', { cookie, host });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!csrf) throw new Error('the logged-in page has no CSRF field');
  return { cookie, csrf, page };
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

describe('status page HTML', () => {
  beforeAll(() => registerSecret(SECRET));

  it('escapes every value and never shows a registered secret', () => {
    const search = { sync: 'corp', email: '<ada>@corp.example', entries: [ENTRY], limit: 100 };
    const html = renderStatusPage({
      syncs: [pageSync()],
      access: { kind: 'session', csrf: 'csrf"><x' },
      syncNames: ['corp', '<evil>'],
      nowMs: 0,
      search,
    });
    expect(html).not.toContain(SECRET);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('<i>no');
    expect(html).not.toContain('<evil>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;@corp.example');
    expect(html).toContain('value="csrf&quot;&gt;&lt;x"');
    expect(html).toContain('[REDACTED]');
    // What a person needs to act: the quarantine and why, the held users, the failure, the log entry.
    expect(html).toContain('Quarantined');
    expect(html).toContain('the IdP refused the client secret [REDACTED] &lt;b&gt;');
    expect(html).toContain('ada@corp.example');
    expect(html).toContain('Approve what cycle c-41 held');
    expect(html).toContain('Approve what the fast lane held');
    expect(html).toContain('Sync now');
    expect(html).toContain('updated 0/0 (1 failed)');
    expect(html).toContain('in scope 10 · TeamViewer 12 · managed 10 · unchanged 5');
    expect(html).toContain('TeamViewer said &lt;i&gt;no&lt;/i&gt; [REDACTED]');
  });

  it('offers no action without a session and says how to enable them without a token', () => {
    const anonymous = renderStatusPage({ syncs: [pageSync()], access: { kind: 'anonymous' }, syncNames: ['corp'], nowMs: 0 });
    expect(anonymous).not.toContain('/status/syncs/');
    expect(anonymous).toContain('action="/status/login"');
    expect(anonymous).toContain('ada@corp.example');
    const noToken = renderStatusPage({ syncs: [pageSync()], access: { kind: 'no-token' }, syncNames: ['corp'], nowMs: 0 });
    expect(noToken).not.toContain('method="post"');
    expect(noToken).toContain('no <code>http.triggerToken</code> is configured');
  });
});

describe('status page HTML, held for approval', () => {
  it('shows group deletions, member removals and recycled addresses held by the newest cycle that planned, and a rate-limit pause', () => {
    const held = heldReport();
    held.groups = {
      status: 'synced',
      skipped: [],
      held: { count: 1, items: [{ tvGroupId: 'g-1', displayName: 'Sales <EU>', message: 'no longer in the directory' }] },
      heldMemberRemovals: { count: 7, groups: 1, items: [{ tvGroupId: 'g-2', displayName: 'Support', members: 7, message: '7 members left' }] },
    };
    held.recycled = { count: 1, items: [{ sourceId: 'emp-77', email: 'reused@corp.example', tvUserId: 'tv-77', message: 'address of a deactivated user' }] };
    // A later cycle failed reading the IdP: it planned nothing, so the holds before it stay on offer.
    const failed = buildReport({
      sync: 'corp',
      cycleId: 'c-42',
      trigger: 'schedule',
      startedAtMs: 0,
      finishedAtMs: 1000,
      results: [],
      failure: { failureClass: 'source-read', message: 'the IdP answered 503' },
    });
    const html = renderStatusPage({
      syncs: [pageSync({ reports: [failed, held], quarantined: false, pause: { untilMs: 5_000_000, askedMs: 120_000, appliedMs: 120_000 } })],
      access: { kind: 'session', csrf: 'c' },
      syncNames: ['corp'],
      nowMs: 1_000_000,
    });
    expect(html).toContain('1 group deletion(s)');
    expect(html).toContain('Sales &lt;EU&gt;');
    expect(html).toContain('7 member removal(s) in 1 group(s)');
    expect(html).toContain('1 recycled address(es)');
    expect(html).toContain('reused@corp.example');
    expect(html).toContain('Approve what cycle c-41 held');
    expect(html).not.toContain('Approve what cycle c-42 held');
    expect(html).toContain('source-read: the IdP answered 503');
    expect(html).toContain('operations resume at 1970-01-01T01:23:20Z');
    expect(html).not.toContain('Quarantined');
  });
});

describe('status page over HTTP', () => {
  beforeAll(() => registerSecret(SECRET));
  afterAll(() => undefined);

  it('is read-only without a configured token: the page reads, every action is refused', async () => {
    const { server, source, triggered } = await startPage();
    servers.push(server);
    const root = await send(server.port, 'GET', '/');
    expect(root.status).toBe(303);
    expect(root.headers.location).toBe('/status');
    const page = await send(server.port, 'GET', '/status');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).toContain('Read-only');
    expect(page.body).not.toContain('method="post"');
    expect(page.body).not.toContain(SECRET);
    const host = `127.0.0.1:${server.port}`;
    const origin = { origin: `http://${host}`, 'content-type': 'application/x-www-form-urlencoded' };
    expect((await send(server.port, 'POST', '/status/login', origin, form({ token: TOKEN }))).status).toBe(403);
    expect((await send(server.port, 'POST', '/status/syncs/corp/sync-now', { ...origin, authorization: `Bearer ${TOKEN}` })).status).toBe(403);
    expect((await send(server.port, 'POST', '/status/syncs/corp/approve', origin, form({ cycle: 'c-41' }))).status).toBe(403);
    expect(triggered).toEqual([]);
    expect(source.approvals).toEqual([]);
  });

  it('logs in with the token through the form: a session cookie with a random id, HttpOnly, SameSite=Strict', async () => {
    const { server, lines } = await startPage({ token: TOKEN });
    servers.push(server);
    const host = `127.0.0.1:${server.port}`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded', origin: `http://${host}` };
    const wrong = await send(server.port, 'POST', '/status/login', headers, form({ token: 'not-the-token-0000000000' }));
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect(wrong.body).toContain('That token is not the one configured');
    // A login posted from another site is refused even with the right token.
    const foreign = await send(server.port, 'POST', '/status/login', { ...headers, origin: 'https://evil.example' }, form({ token: TOKEN }));
    expect(foreign.status).toBe(403);
    expect(foreign.headers['set-cookie']).toBeUndefined();

    const ok = await send(server.port, 'POST', '/status/login', headers, form({ token: TOKEN }));
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/status');
    const cookie = cookieOf(ok);
    expect(cookie).toMatch(/^tvsync_session=[A-Za-z0-9_-]{43}; /);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/');
    expect(cookie).not.toContain('Secure');
    expect(cookie).not.toContain(TOKEN);
    expect(decodeURIComponent(cookie)).not.toContain(TOKEN);
    // Behind a TLS-terminating proxy the cookie is Secure.
    const tls = await send(server.port, 'POST', '/status/login', { ...headers, 'x-forwarded-proto': 'https' }, form({ token: TOKEN }));
    expect(cookieOf(tls)).toContain('; Secure');
    expect(lines.join('\n')).not.toContain(TOKEN);

    const { page } = await login(server.port);
    expect(page.body).toContain('Logged in');
    expect(page.body).toContain('Approve what cycle c-41 held');
    expect(page.body).toContain('action="/status/syncs/corp/sync-now"');
    expect(page.body).not.toContain(TOKEN);
  });

  it('refuses a form without the session, without its CSRF field, or from another origin', async () => {
    const { server, source, triggered } = await startPage({ token: TOKEN });
    servers.push(server);
    const host = `127.0.0.1:${server.port}`;
    const { cookie, csrf } = await login(server.port);
    const base = { 'content-type': 'application/x-www-form-urlencoded', host };
    const post = (headers: Record<string, string>, fields: Record<string, string>) =>
      send(server.port, 'POST', '/status/syncs/corp/approve', { ...base, ...headers }, form(fields));

    expect((await post({ origin: `http://${host}` }, { cycle: 'c-41', csrf })).status).toBe(401);
    const noCsrf = await post({ cookie, origin: `http://${host}` }, { cycle: 'c-41' });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body).toContain('This form did not come from the status page');
    expect((await post({ cookie, origin: `http://${host}` }, { cycle: 'c-41', csrf: `${csrf}x` })).status).toBe(403);
    expect((await post({ cookie, origin: 'https://evil.example' }, { cycle: 'c-41', csrf })).status).toBe(403);
    expect((await post({ cookie, origin: 'null' }, { cycle: 'c-41', csrf })).status).toBe(403);
    expect((await post({ cookie }, { cycle: 'c-41', csrf })).status).toBe(403);
    expect((await post({ cookie, referer: 'https://evil.example/status' }, { cycle: 'c-41', csrf })).status).toBe(403);
    expect((await send(server.port, 'POST', '/status/syncs/corp/sync-now', { ...base, cookie, origin: 'https://evil.example' }, form({ csrf }))).status).toBe(
      403,
    );
    expect(source.approvals).toEqual([]);
    expect(triggered).toEqual([]);
    // A GET never acts.
    expect((await send(server.port, 'GET', '/status/syncs/corp/approve?cycle=c-41', { cookie })).status).toBe(405);
    expect(source.approvals).toEqual([]);

    // The same form from the page itself (Referer when a browser sends no Origin) acts, and redirects back.
    const approved = await post({ cookie, referer: `http://${host}/status` }, { cycle: 'c-41', csrf });
    expect(approved.status).toBe(303);
    expect(approved.headers.location).toBe('/status#sync-corp');
    expect(source.approvals).toEqual([{ sync: 'corp', cycleId: 'c-41' }]);
    const after = await send(server.port, 'GET', '/status', { cookie });
    expect(after.body).toContain('Approved 2 deactivations, 0 group deletions and 0 member removals in 0 group(s) held by cycle c-41');
    // The notice is shown once.
    expect((await send(server.port, 'GET', '/status', { cookie })).body).not.toContain('Approved 2 deactivations');

    const now = await send(server.port, 'POST', '/status/syncs/corp/sync-now', { ...base, cookie, origin: `http://${host}` }, form({ csrf }));
    expect(now.status).toBe(303);
    expect(triggered).toEqual(['corp']);
    expect((await send(server.port, 'GET', '/status', { cookie })).body).toContain('A cycle of sync corp was requested at 2026-01-02T03:10:00.000Z');

    const fast = await post({ cookie, origin: `http://${host}` }, { fastLane: 'true', csrf });
    expect(fast.status).toBe(303);
    expect(source.approvals.at(-1)).toEqual({ sync: 'corp', fastLane: true });
    const unknown = await send(server.port, 'POST', '/status/syncs/other/sync-now', { ...base, cookie, origin: `http://${host}` }, form({ csrf }));
    expect(unknown.status).toBe(404);

    // Logged out, the cookie is worth nothing.
    const out = await send(server.port, 'POST', '/status/logout', { ...base, cookie, origin: `http://${host}` }, form({ csrf }));
    expect(out.status).toBe(303);
    expect(cookieOf(out)).toContain('Max-Age=0');
    expect((await post({ cookie, origin: `http://${host}` }, { cycle: 'c-41', csrf })).status).toBe(401);
    expect((await send(server.port, 'GET', '/status', { cookie })).body).not.toContain('Logged in');
  });

  it('takes the token as a bearer header from a script and answers with JSON', async () => {
    const { server, source, triggered } = await startPage({ token: TOKEN });
    servers.push(server);
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' };
    const approved = await send(server.port, 'POST', '/status/syncs/corp/approve', headers, form({ cycle: 'c-41' }));
    expect(approved.status).toBe(200);
    expect(JSON.parse(approved.body)).toMatchObject({ sync: 'corp', cycleId: 'c-41', status: 'approved', deactivations: 2 });
    const missing = await send(server.port, 'POST', '/status/syncs/corp/approve', headers, form({ cycle: 'gone' }));
    expect(missing.status).toBe(409);
    expect(JSON.parse(missing.body)).toMatchObject({ status: 'no-cycle' });
    expect((await send(server.port, 'POST', '/status/syncs/corp/approve', headers, '')).status).toBe(400);
    expect((await send(server.port, 'POST', '/status/syncs/corp/sync-now', headers)).status).toBe(200);
    expect(triggered).toEqual(['corp']);
    expect((await send(server.port, 'POST', '/status/syncs/corp/sync-now', { ...headers, authorization: 'Bearer wrong-token-000000000000' })).status).toBe(401);
    expect(source.approvals).toHaveLength(2);
  });

  it('searches the provisioning log by e-mail or cycle, known syncs only', async () => {
    const { server, source } = await startPage({ token: TOKEN });
    servers.push(server);
    const byEmail = await send(server.port, 'GET', '/status?sync=corp&email=Ada%40corp.example');
    expect(byEmail.status).toBe(200);
    expect(source.searches).toEqual([{ sync: 'corp', email: 'Ada@corp.example', limit: 100 }]);
    expect(byEmail.body).toContain('e-mail Ada@corp.example');
    expect(byEmail.body).toContain('deactivateUser');
    expect(byEmail.body).toContain('TeamViewer said &lt;i&gt;no&lt;/i&gt; [REDACTED]');
    expect(byEmail.body).not.toContain(SECRET);
    await send(server.port, 'GET', '/status?sync=corp&cycle=c-41');
    expect(source.searches.at(-1)).toEqual({ sync: 'corp', cycleId: 'c-41', limit: 100 });
    await send(server.port, 'GET', '/status?sync=nope&email=ada%40corp.example');
    expect(source.searches).toHaveLength(2);
  });

  it('shows nothing but the login form when the page needs a login to be read', async () => {
    const { server, source } = await startPage({ token: TOKEN, mode: 'login' });
    servers.push(server);
    const page = await send(server.port, 'GET', '/status?sync=corp&email=ada%40corp.example');
    expect(page.status).toBe(200);
    expect(page.body).toContain('action="/status/login"');
    expect(page.body).not.toContain('ada@corp.example');
    expect(source.syncsRead).toBe(0);
    expect(source.searches).toEqual([]);
    const { page: signedIn } = await login(server.port);
    expect(signedIn.body).toContain('ada@corp.example');
    const bearer = await send(server.port, 'GET', '/status', { authorization: `Bearer ${TOKEN}` });
    expect(bearer.body).toContain('ada@corp.example');
  });

  it('says Redis did not answer, with a fixed sentence, when the state cannot be read', async () => {
    const hanging = new (class extends FakeSource {
      override syncs(): Promise<PageSync[]> {
        return new Promise(() => undefined);
      }
    })();
    const failing = new (class extends FakeSource {
      override async syncs(): Promise<PageSync[]> {
        throw new Error(`connect ECONNREFUSED, password ${SECRET}`);
      }
    })();
    const slow = await startPage({ token: TOKEN, source: hanging });
    servers.push(slow.server);
    const timedOut = await send(slow.server.port, 'GET', '/status');
    expect(timedOut.status).toBe(503);
    expect(timedOut.body).toContain('Redis did not answer within 0.3 s');
    const broken = await startPage({ token: TOKEN, source: failing });
    servers.push(broken.server);
    const failed = await send(broken.server.port, 'GET', '/status');
    expect(failed.status).toBe(503);
    expect(failed.body).toContain('reading the state failed');
    expect(failed.body).not.toContain('ECONNREFUSED');
    expect(broken.lines.join('\n')).toContain('ECONNREFUSED');
    expect(broken.lines.join('\n')).not.toContain(SECRET);
  });
});
