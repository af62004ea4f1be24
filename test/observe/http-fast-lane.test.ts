import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServerHandle, type InboundHook } from '../../src/observe/http.js';
import { createLogger } from '../../src/observe/log.js';
import { TvsyncMetrics } from '../../src/observe/metrics.js';
import { registerSecret } from '../../src/net/secrets.js';

const TOKEN = 'trigger-token-fastlane-0123456789';

function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP routes of the fast lane', () => {
  const hooks: { sync: string; name: string; req: InboundHook }[] = [];
  const userSyncs: { sync: string; ref: string; dryRun: boolean }[] = [];
  const lines: string[] = [];
  let server: HttpServerHandle;

  beforeAll(async () => {
    registerSecret('echoed-secret-value-42');
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      log: createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } }),
      metrics: new TvsyncMetrics({ defaultMetrics: false }),
      ready: async () => ({ ready: true, reason: 'ready', checks: [] }),
      syncNames: ['corp'],
      triggerToken: TOKEN,
      triggerSyncNow: async () => ({ requestedAt: 1 }),
      syncUser: async (sync, ref, opts) => {
        userSyncs.push({ sync, ref, ...opts });
        return { status: 200, body: { ref, outcome: 'applied', steps: [{ step: 'idp', detail: 'the IdP said echoed-secret-value-42' }] } };
      },
      receiveHook: async (sync, name, req) => {
        hooks.push({ sync, name, req });
        if (req.method === 'GET')
          return {
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ verification: req.headers['x-okta-verification-challenge'] }),
          };
        return { status: 200 };
      },
    });
  });
  afterAll(() => server.close());

  it('syncs one user on demand with the trigger token only, and scrubs the report', async () => {
    expect((await send(server.port, 'POST', '/syncs/corp/users/ada%40corp.example/sync')).status).toBe(401);
    expect((await send(server.port, 'POST', '/syncs/corp/users/ada%40corp.example/sync', { authorization: 'Bearer wrong-token-xxxxxxxxxxxx' })).status).toBe(
      401,
    );
    expect((await send(server.port, 'GET', '/syncs/corp/users/ada/sync', { authorization: `Bearer ${TOKEN}` })).status).toBe(405);
    expect((await send(server.port, 'POST', '/syncs/other/users/ada/sync', { authorization: `Bearer ${TOKEN}` })).status).toBe(404);
    const answer = await send(server.port, 'POST', '/syncs/corp/users/ada%40corp.example/sync?dryRun=true', { authorization: `Bearer ${TOKEN}` });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ ref: 'ada@corp.example', outcome: 'applied' });
    expect(answer.body).not.toContain('echoed-secret-value-42');
    expect(userSyncs).toEqual([{ sync: 'corp', ref: 'ada@corp.example', dryRun: true }]);
  });

  it('hands hook requests with their headers, query and body to the receiver, and answers as it says', async () => {
    const verify = await send(server.port, 'GET', '/hooks/corp/okta', { 'x-okta-verification-challenge': 'abc123' });
    expect(verify.status).toBe(200);
    expect(JSON.parse(verify.body)).toEqual({ verification: 'abc123' });
    const body = JSON.stringify({ data: { events: [] } });
    const event = await send(
      server.port,
      'POST',
      '/hooks/corp/entra?validationToken=tok',
      { 'content-type': 'application/json', authorization: 'shared' },
      body,
    );
    expect(event.status).toBe(200);
    const last = hooks.at(-1);
    expect(last).toMatchObject({ sync: 'corp', name: 'entra', req: { method: 'POST', query: { validationToken: 'tok' }, body } });
    expect(last?.req.headers.authorization).toBe('shared');
  });

  it('refuses unknown syncs and bodies over the limit without calling a receiver, and never logs the query', async () => {
    const before = hooks.length;
    expect((await send(server.port, 'POST', '/hooks/nope/okta', {}, '{}')).status).toBe(404);
    expect((await send(server.port, 'POST', '/hooks/corp/okta', {}, Buffer.alloc(1024 * 1024 + 10, 32))).status).toBe(413);
    expect(hooks.length).toBe(before);
    expect(lines.join('\n')).not.toContain('validationToken=tok');
  });
});
