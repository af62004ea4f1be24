import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { outsideText } from '../../src/net/secrets.js';
import { TeamViewerScimClient } from '../../src/teamviewer/scim-client.js';
import { OWNER, TOKEN, startEmulator } from '../support/fixtures.js';

/** A forward proxy for plain HTTP: takes absolute-URI requests and passes them on. */
async function startProxy() {
  const seen: { url: string; authorization: string | undefined }[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers['proxy-authorization'] });
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = request(
      { host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: req.method, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { seen, port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())), server };
}

describe('the SCIM client behind a proxy', () => {
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy, NO_PROXY: process.env.NO_PROXY, no_proxy: process.env.no_proxy };
  let tv: Awaited<ReturnType<typeof startEmulator>>;
  let proxy: Awaited<ReturnType<typeof startProxy>>;

  beforeAll(async () => {
    tv = await startEmulator();
    proxy = await startProxy();
  });
  afterEach(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    proxy.seen.length = 0;
  });
  afterAll(async () => {
    proxy.server.closeAllConnections();
    await proxy.close();
    await tv.emulator.stop();
  });

  it('sends its requests through HTTP_PROXY, with the proxy credentials, which are then secrets', async () => {
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    delete process.env.http_proxy;
    process.env.HTTP_PROXY = `http://relay:proxy-pass-8472@127.0.0.1:${proxy.port}`;
    const client = new TeamViewerScimClient({ baseUrl: tv.baseUrl, token: TOKEN });
    const users = await client.listUsers();
    expect(users.map((u) => u.email)).toContain(OWNER);
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(proxy.seen[0]?.url).toMatch(new RegExp(`^${tv.baseUrl}/Users`));
    expect(proxy.seen[0]?.authorization).toBe(`Basic ${Buffer.from('relay:proxy-pass-8472').toString('base64')}`);
    expect(outsideText('the proxy said proxy-pass-8472')).not.toContain('proxy-pass-8472');
  });

  it("goes direct when NO_PROXY names TeamViewer's host", async () => {
    process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.port}`;
    process.env.NO_PROXY = '127.0.0.1';
    const client = new TeamViewerScimClient({ baseUrl: tv.baseUrl, token: TOKEN });
    expect((await client.listUsers()).length).toBeGreaterThan(0);
    expect(proxy.seen).toEqual([]);
  });
});
