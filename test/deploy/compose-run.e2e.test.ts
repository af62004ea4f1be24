import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { exited, spawnDaemon, until } from '../support/daemon-process.js';
import { FAKE_AUTHORITY_CA, startEntraFake, type EntraFake } from '../support/fakes/entra.js';
import { OWNER, TOKEN, startEmulator } from '../support/fixtures.js';
import { RedisServer, freePort, haveRedisServer, NO_REDIS_SERVER } from '../support/redis-server.js';

/*
 * The configuration docker-compose.yml and the Kubernetes example run, run as they run it: every
 * secret read from a mounted file (the files under /run/secrets become files of a temporary
 * directory), Redis with a password, the ids from the environment. Only the outside addresses
 * differ: Entra and TeamViewer are local fakes. The process must come up live and ready, serve its
 * status page, guard /metrics and sync-now with the tokens from their files, provision the
 * directory, never show a secret, and stop cleanly on SIGTERM.
 */

const COMPOSE_CONFIG = new URL('../../config/compose.yaml', import.meta.url);
const REDIS_PASSWORD = 'compose-redis-pass-31337';
const TRIGGER = 'compose-trigger-token-9f2a41c7';
const METRICS = 'compose-metrics-token-77b0e3d5';

describe.skipIf(!haveRedisServer)(`config/compose.yaml run as deployed${NO_REDIS_SERVER}`, () => {
  let redis: RedisServer;
  let entra: EntraFake;
  let tv: Awaited<ReturnType<typeof startEmulator>>;

  beforeAll(async () => {
    redis = await RedisServer.start({ password: REDIS_PASSWORD });
    entra = await startEntraFake();
    tv = await startEmulator();
    await entra.createUser({ email: 'ada@corp.example', givenName: 'Ada', familyName: 'Lovelace' });
    await entra.createUser({ email: 'alan@corp.example', givenName: 'Alan', familyName: 'Turing' });
  });
  afterAll(async () => {
    await tv?.emulator.stop();
    await entra?.close();
    await redis?.kill();
  });

  it('reads its secrets from files, serves the status page, guards its tokens and provisions the directory', { timeout: 120_000 }, async () => {
    const secretsDir = mkdtempSync(join(tmpdir(), 'tvsync-secrets-'));
    const secrets: Record<string, string> = {
      teamviewer_token: TOKEN,
      entra_client_secret: entra.clientSecret,
      redis_url: redis.url,
      trigger_token: TRIGGER,
      metrics_token: METRICS,
    };
    for (const [name, value] of Object.entries(secrets)) writeFileSync(join(secretsDir, name), `${value}\n`, { mode: 0o600 });

    // The deployed file, with the mount point moved and the outside addresses pointed at the fakes.
    const port = await freePort();
    const doc = parseDocument(readFileSync(COMPOSE_CONFIG, 'utf8').replaceAll('/run/secrets/', `${secretsDir}/`));
    doc.setIn(['http', 'host'], '127.0.0.1');
    doc.setIn(['http', 'port'], port);
    const source = { graphBaseUrl: entra.url, authorityHost: entra.authorityHost, disableInstanceDiscovery: true, authorityCaCertificate: FAKE_AUTHORITY_CA };
    for (const [key, value] of Object.entries(source)) doc.setIn(['syncs', 0, 'source', key], value);
    doc.setIn(['syncs', 0, 'target', 'baseUrl'], tv.baseUrl);
    doc.setIn(['syncs', 0, 'target', 'tokenOwner'], OWNER);
    const path = join(mkdtempSync(join(tmpdir(), 'tvsync-compose-')), 'tvsync.yaml');
    writeFileSync(path, doc.toString());

    const daemon = spawnDaemon(['--config', path], {
      ENTRA_TENANT_ID: entra.tenantId,
      ENTRA_CLIENT_ID: entra.clientId,
      ENTRA_SERVICE_PRINCIPAL_ID: entra.servicePrincipalId,
    });
    const base = `http://127.0.0.1:${port}`;
    try {
      await until(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200, 60_000, 'the daemon to be live');
      // The first scheduled cycle runs at start: both people end up in TeamViewer.
      await until(() => tv.emulator.dump().users.filter((u) => u.userName !== OWNER).length === 2, 60_000, 'the first cycle');
      await until(async () => (await fetch(`${base}/readyz`)).status === 200, 30_000, 'the daemon to be ready');

      const page = await fetch(`${base}/status`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('corp');

      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } })).status).toBe(200);
      expect((await fetch(`${base}/syncs/corp/sync-now`, { method: 'POST' })).status).toBe(401);
      expect((await fetch(`${base}/syncs/corp/sync-now`, { method: 'POST', headers: { authorization: `Bearer ${TRIGGER}` } })).status).toBe(202);

      // Nothing shown holds a secret read from the files.
      const shown = [html, await (await fetch(`${base}/readyz`, { headers: { authorization: `Bearer ${TRIGGER}` } })).text(), daemon.output()].join('\n');
      for (const value of [TOKEN, entra.clientSecret, REDIS_PASSWORD, TRIGGER, METRICS]) expect(shown).not.toContain(value);
    } finally {
      daemon.kill('SIGTERM');
      expect(await exited(daemon)).toBe(0);
    }
    expect(daemon.output()).not.toContain(REDIS_PASSWORD);
  });
});
