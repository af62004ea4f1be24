import { Agent, request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LIVENESS_REASONS, startHttpServer, type HttpServerHandle, type Liveness, type Readiness } from '../../src/observe/http.js';
import { createLogger } from '../../src/observe/log.js';
import { TvsyncMetrics } from '../../src/observe/metrics.js';
import { registerSecret } from '../../src/net/secrets.js';

const TOKEN = 'trigger-token-abcdef-0123456789';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Raw node:http so headers are exactly what the test sends, over a keep-alive agent. */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, agent?: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } }) };
}

describe('HTTP server', () => {
  const { lines, log } = capture();
  const bodies: string[] = [];
  const metrics = new TvsyncMetrics({ defaultMetrics: false });
  const triggered: string[] = [];
  let readiness: Readiness = { ready: true, reason: 'ready', checks: [{ name: 'redis', ok: true, detail: 'PONG' }] };
  let readyFails = false;
  let liveness: Liveness = { live: true, problems: [] };
  let liveFails = false;
  let readyHangs = false;
  let triggerFails = false;
  let server: HttpServerHandle;

  async function call(method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
    const answer = await send(server.port, method, path, headers);
    bodies.push(answer.body, JSON.stringify(answer.headers));
    return answer;
  }

  beforeAll(async () => {
    metrics.operationsRecorded('corp', [
      {
        key: 'k',
        kind: 'createUser',
        sourceId: 's1',
        email: 'a@corp.example',
        after: {},
        status: 'applied',
        message: 'created',
        attempts: 1,
      },
    ]);
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      log,
      metrics,
      ready: async () => {
        if (readyHangs) return new Promise<Readiness>(() => {});
        if (readyFails) throw new Error('redis unreachable at redis://:hunter2-redis-password@10.0.0.9');
        return readiness;
      },
      live: async () => {
        if (liveFails) throw new Error('redis unreachable at redis://:hunter2-redis-password@10.0.0.9');
        return liveness;
      },
      syncNames: ['corp', 'eu west'],
      triggerToken: TOKEN,
      triggerSyncNow: async (sync) => {
        if (triggerFails) throw new Error(`queue for ${sync} is closed`);
        triggered.push(sync);
        return { requestedAt: 1_700_000_000_000 };
      },
    });
  });

  afterAll(async () => {
    await server.close();
    // Whatever happened above, the token went out in no answer and no log line.
    expect(bodies.length).toBeGreaterThan(10);
    for (const text of [...bodies, ...lines]) expect(text).not.toContain(TOKEN);
  });

  beforeEach(() => {
    triggered.length = 0;
    readyFails = false;
    readyHangs = false;
    liveFails = false;
    liveness = { live: true, problems: [] };
    triggerFails = false;
  });

  it('answers /healthz', async () => {
    const answer = await call('GET', '/healthz');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
  });

  it('fails /healthz with 503 and fixed reasons; names the syncs only to the token holder', async () => {
    liveness = {
      live: false,
      problems: [
        { sync: 'corp', queue: 'cycles', reason: LIVENESS_REASONS.overdue },
        { sync: 'eu west', queue: 'operations', reason: LIVENESS_REASONS.stuck },
        { sync: 'corp', queue: 'operations', reason: LIVENESS_REASONS.stuck },
      ],
    };
    const anyone = await call('GET', '/healthz');
    expect(anyone.status).toBe(503);
    expect(JSON.parse(anyone.body)).toEqual({ status: 'failing', reasons: [LIVENESS_REASONS.overdue, LIVENESS_REASONS.stuck] });
    expect(anyone.body).not.toContain('corp');

    const holder = await call('GET', '/healthz', { authorization: `Bearer ${TOKEN}` });
    expect(holder.status).toBe(503);
    expect(JSON.parse(holder.body)).toEqual({ status: 'failing', reasons: [LIVENESS_REASONS.overdue, LIVENESS_REASONS.stuck], problems: liveness.problems });
    // The log says which sync, for whoever runs the deployment.
    expect(lines.some((l) => l.includes('liveness fails') && l.includes('eu west'))).toBe(true);
  });

  it('answers /healthz ok when the liveness checks themselves fail: only evidence of a stall restarts', async () => {
    // As connectRedis does with the password of redis.url.
    registerSecret('hunter2-redis-password');
    liveFails = true;
    const answer = await call('GET', '/healthz');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
    const warned = lines.filter((l) => l.includes('the liveness checks failed'));
    expect(warned.length).toBeGreaterThan(0);
    for (const line of warned) expect(line).not.toContain('hunter2-redis-password');
  });

  it('answers /readyz with 200 or 503 and a fixed reason; the checks only with the token', async () => {
    let answer = await call('GET', '/readyz');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ ready: true, reason: 'ready' });

    readiness = {
      ready: false,
      reason: 'a sync is quarantined',
      checks: [
        { name: 'redis', ok: true, detail: 'PONG' },
        { name: 'sync corp', ok: false, detail: 'quarantined: jane.doe@corp.example was refused' },
      ],
    };
    answer = await call('GET', '/readyz');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({ ready: false, reason: 'a sync is quarantined' });
    expect(answer.body).not.toContain('jane.doe');
    for (const headers of [{ authorization: 'Bearer wrong-token-0000000000000' }, { authorization: `Basic ${TOKEN}` }]) {
      expect(JSON.parse((await call('GET', '/readyz', headers)).body)).toEqual({ ready: false, reason: 'a sync is quarantined' });
    }
    answer = await call('GET', '/readyz', { authorization: `Bearer ${TOKEN}` });
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual(readiness);

    readyFails = true;
    answer = await call('GET', '/readyz');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({ ready: false, reason: 'the readiness checks failed' });
  });

  it('never shows outside text in the reason, and scrubs secrets from the details', async () => {
    registerSecret('hunter2-redis-password');
    readiness = {
      ready: false,
      reason: 'Redis says: hunter2-redis-password' as Readiness['reason'],
      checks: [{ name: 'redis', ok: false, detail: 'AUTH hunter2-redis-password refused' }],
    };
    const plain = await call('GET', '/readyz');
    expect(JSON.parse(plain.body)).toEqual({ ready: false, reason: 'the readiness checks failed' });
    const detailed = await call('GET', '/readyz', { authorization: `Bearer ${TOKEN}` });
    expect(detailed.body).not.toContain('hunter2');
    expect(JSON.parse(detailed.body)).toMatchObject({ checks: [{ name: 'redis', ok: false, detail: 'AUTH [REDACTED] refused' }] });

    readyFails = true;
    const failed = await call('GET', '/readyz', { authorization: `Bearer ${TOKEN}` });
    expect(failed.body).not.toContain('hunter2');
    expect(JSON.parse(failed.body)).toMatchObject({ ready: false, reason: 'the readiness checks failed', checks: [{ name: 'readiness', ok: false }] });
  });

  it('answers /readyz with 503 when the checks hang', async () => {
    readyHangs = true;
    // A hang would leave this request unanswered until the test times out.
    const answer = await call('GET', '/readyz');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({ ready: false, reason: 'the readiness checks did not finish in time' });
  });

  it('serves /metrics in the Prometheus text format', async () => {
    const answer = await call('GET', '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe(metrics.contentType);
    expect(answer.body).toContain('# TYPE tvsync_operations_total counter');
    expect(answer.body).toContain('tvsync_operations_total{sync="corp",kind="createUser",outcome="applied"} 1');
  });

  it('requests a cycle with the right bearer token', async () => {
    const answer = await call('POST', '/syncs/corp/sync-now', { authorization: `Bearer ${TOKEN}` });
    expect(answer.status).toBe(202);
    expect(JSON.parse(answer.body)).toEqual({ sync: 'corp', requested: true, requestedAt: 1_700_000_000_000 });
    expect(triggered).toEqual(['corp']);

    const encoded = await call('POST', '/syncs/eu%20west/sync-now', { authorization: `bearer ${TOKEN}` });
    expect(encoded.status).toBe(202);
    expect(triggered).toEqual(['corp', 'eu west']);
  });

  it('refuses a missing or wrong token with 401 and WWW-Authenticate', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-0000000000000' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}` },
      { authorization: TOKEN },
      { authorization: 'Bearer' },
    ];
    for (const headers of attempts) {
      const answer = await call('POST', '/syncs/corp/sync-now', headers);
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(JSON.parse(answer.body)).toHaveProperty('error');
    }
    // Unknown syncs are not revealed to callers without the token.
    expect((await call('POST', '/syncs/nope/sync-now')).status).toBe(401);
    expect(triggered).toEqual([]);
  });

  it('answers 404 for an unknown sync, 405 for a wrong method, 404 for an unknown path', async () => {
    const unknown = await call('POST', '/syncs/nope/sync-now', { authorization: `Bearer ${TOKEN}` });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toEqual({ error: 'unknown sync' });
    const badEscape = await call('POST', '/syncs/%E0%A4%A/sync-now', { authorization: `Bearer ${TOKEN}` });
    expect(badEscape.status).toBe(404);

    const getTrigger = await call('GET', '/syncs/corp/sync-now', { authorization: `Bearer ${TOKEN}` });
    expect(getTrigger.status).toBe(405);
    expect(getTrigger.headers.allow).toBe('POST');
    const postHealth = await call('POST', '/healthz');
    expect(postHealth.status).toBe(405);
    expect(postHealth.headers.allow).toBe('GET');
    expect((await call('DELETE', '/metrics')).status).toBe(405);

    for (const path of ['/', '/nope', '/syncs/corp', '/syncs/corp/sync-now/extra', '/healthz/']) {
      const answer = await call('GET', path);
      expect(answer.status, path).toBe(404);
      expect(JSON.parse(answer.body)).toEqual({ error: 'not found' });
    }
    expect(triggered).toEqual([]);
  });

  it('answers 500 without details when the trigger fails', async () => {
    triggerFails = true;
    const answer = await call('POST', '/syncs/corp/sync-now', { authorization: `Bearer ${TOKEN}` });
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.body)).toEqual({ error: 'internal error' });
  });

  it('logs one debug line per request with method, path, status and time, never headers or the query', async () => {
    const before = lines.length;
    await call('GET', `/healthz?token=${TOKEN}`, { authorization: `Bearer ${TOKEN}`, 'x-custom': 'header-value-zzz' });
    await call('POST', '/syncs/corp/sync-now', { authorization: `Bearer ${TOKEN}` });
    const logged = lines.slice(before).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ level: 20, method: 'GET', path: '/healthz', status: 200, msg: 'http request' });
    expect(logged[1]).toMatchObject({ level: 20, method: 'POST', path: '/syncs/corp/sync-now', status: 202 });
    expect(typeof logged[0]?.ms).toBe('number');
    const text = lines.slice(before).join('');
    expect(text).not.toContain('header-value-zzz');
    expect(text).not.toMatch(/authorization|headers/i);
  });
});

describe('HTTP server without a trigger token', () => {
  it('refuses sync-now with 403 and tells the operator what to set', async () => {
    const { log } = capture();
    const triggered: string[] = [];
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      log,
      metrics: new TvsyncMetrics({ defaultMetrics: false }),
      ready: async () => ({ ready: true, reason: 'ready', checks: [] }),
      syncNames: ['corp'],
      triggerSyncNow: async (sync) => {
        triggered.push(sync);
        return { requestedAt: 1 };
      },
    });
    try {
      const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer anything-at-all-0000' }];
      for (const headers of attempts) {
        const answer = await send(server.port, 'POST', '/syncs/corp/sync-now', headers);
        expect(answer.status).toBe(403);
        expect((JSON.parse(answer.body) as { error: string }).error).toContain('http.triggerToken');
      }
      expect(triggered).toEqual([]);
    } finally {
      await server.close();
    }
  });
});

describe('HTTP server lifecycle', () => {
  it('closes promptly although clients hold keep-alive connections', async () => {
    const { log } = capture();
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      log,
      metrics: new TvsyncMetrics({ defaultMetrics: false }),
      ready: async () => ({ ready: true, reason: 'ready', checks: [] }),
      syncNames: [],
      triggerSyncNow: async () => ({ requestedAt: 1 }),
    });
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    try {
      for (let i = 0; i < 3; i++) expect((await send(server.port, 'GET', '/healthz', {}, agent)).headers.connection).toBe('keep-alive');
      const started = Date.now();
      await server.close();
      expect(Date.now() - started).toBeLessThan(1000);
      await expect(send(server.port, 'GET', '/healthz')).rejects.toThrow();
    } finally {
      agent.destroy();
    }
  });

  it('rejects when the port is taken', async () => {
    const { log } = capture();
    const opts = {
      host: '127.0.0.1',
      port: 0,
      log,
      metrics: new TvsyncMetrics({ defaultMetrics: false }),
      ready: async (): Promise<Readiness> => ({ ready: true, reason: 'ready', checks: [] }),
      syncNames: [],
      triggerSyncNow: async () => ({ requestedAt: 1 }),
    };
    const first = await startHttpServer(opts);
    try {
      await expect(startHttpServer({ ...opts, port: first.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});

describe('HTTP server with a metrics token', () => {
  it('serves /metrics only with the bearer token', async () => {
    const { log } = capture();
    const metricsToken = 'metrics-token-0123456789abcdef';
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      log,
      metrics: new TvsyncMetrics({ defaultMetrics: false }),
      ready: async () => ({ ready: true, reason: 'ready', checks: [] }),
      syncNames: ['corp'],
      metricsToken,
      triggerSyncNow: async () => ({ requestedAt: 1 }),
    });
    try {
      for (const headers of [
        {} as Record<string, string>,
        { authorization: 'Bearer wrong-token-0000000000000' },
        { authorization: `Bearer ${metricsToken}x` },
      ]) {
        const refused = await send(server.port, 'GET', '/metrics', headers);
        expect(refused.status).toBe(401);
        expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
        expect(refused.body).not.toContain('tvsync_');
      }
      const allowed = await send(server.port, 'GET', '/metrics', { authorization: `Bearer ${metricsToken}` });
      expect(allowed.status).toBe(200);
      expect(allowed.body).toContain('# TYPE tvsync_operations_total counter');
      // The other routes do not take it: it is not the trigger token.
      expect((await send(server.port, 'GET', '/healthz')).status).toBe(200);
      expect((await send(server.port, 'POST', '/syncs/corp/sync-now', { authorization: `Bearer ${metricsToken}` })).status).toBe(403);
    } finally {
      await server.close();
    }
  });
});
