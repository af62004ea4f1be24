import { gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { SCIM_ERROR, startLyingTeamViewer, type LyingTeamViewer } from '../support/lying-teamviewer.js';

/**
 * A TeamViewer that echoes the caller's credential in its error bodies, the way misconfigured
 * gateways and debug modes do: raw, URL-encoded, base64 and cut in the middle. Nothing tvsync
 * keeps or shows may hold the token or any fragment of it afterwards.
 */
type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
let liar: LyingTeamViewer;
let redis: Redis;
const prefix = testPrefix('echo');

function echoOf(auth: string): string {
  const token = auth.replace(/^Bearer\s+/i, '');
  // Long enough that a 300-character cut lands inside the token.
  return `${'request rejected; '.repeat(15)}token=${token} header=${encodeURIComponent(auth)} basic=${Buffer.from(`user:${token}`).toString('base64')} b64=${Buffer.from(auth).toString('base64')}`;
}

beforeAll(async () => {
  tv = await startEmulator();
  redis = new Redis(REDIS_URL);
  liar = await startLyingTeamViewer(tv.baseUrl);
  liar.rule = ({ method, body, authorization }) => {
    if (method !== 'POST') return undefined;
    const error = (status: number) => ({ schemas: [SCIM_ERROR], status: String(status), detail: echoOf(authorization) });
    if (body.includes('echo-conflict@')) return { status: 409, body: { ...error(409), scimType: 'uniqueness' } };
    if (body.includes('echo-invalid@')) return { status: 400, body: error(400) };
    if (body.includes('echo-broken@')) return { status: 502, body: `<html>${echoOf(authorization)}</html>` };
    if (body.includes('echo-weird@')) return { status: 200, body: error(500) };
    return undefined;
  };
});

afterAll(async () => {
  await liar.close();
  await tv.emulator.stop();
  await dropPrefix(prefix);
  redis.disconnect();
});

/** Every 8-character window of every form the token can take. */
function fragments(secret: string): string[] {
  const forms = [
    secret,
    encodeURIComponent(secret),
    `Bearer ${secret}`,
    encodeURIComponent(`Bearer ${secret}`),
    Buffer.from(`Bearer ${secret}`).toString('base64'),
    Buffer.from(`user:${secret}`).toString('base64'),
  ];
  const out = new Set<string>();
  for (const form of forms) for (let i = 0; i + 8 <= form.length; i++) out.add(form.slice(i, i + 8));
  return [...out];
}

/** A value as text; large records (a cycle's plan and outcomes) are kept gzipped and are read unpacked. */
function readable(value: Buffer): string {
  return (value[0] === 0x1f && value[1] === 0x8b ? gunzipSync(value) : value).toString('utf8');
}

async function everythingInRedis(under = prefix): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${under}:*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      parts.push(key);
      if (type === 'string') parts.push((await redis.get(key)) ?? '');
      else if (type === 'hash') parts.push(JSON.stringify(Object.entries(await redis.hgetallBuffer(key)).map(([field, value]) => [field, readable(value)])));
      else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, 0, -1)));
      else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

describe('a TeamViewer that echoes the token', () => {
  it('leaves no fragment of it in logs, Redis, reports, status or the provisioning log', async () => {
    const users = [
      ...people(3, 95_000),
      { id: 'e1', email: 'echo-conflict@corp.example', displayName: 'Echo Conflict', active: true },
      { id: 'e2', email: 'echo-invalid@corp.example', displayName: 'Echo Invalid', active: true },
      { id: 'e3', email: 'echo-broken@corp.example', displayName: 'Echo Broken', active: true },
      { id: 'e4', email: 'echo-weird@corp.example', displayName: 'Echo Weird', active: true },
    ];
    const path = writeConfig({
      exportDir: writeExport(users),
      baseUrl: liar.baseUrl,
      prefix,
      extra: 'runtime: { operationAttempts: 2, operationBackoff: 50ms, readBackoff: 50ms }\n',
    });
    const env = { TVSYNC_TEST_TOKEN: TOKEN };
    const runs = [await runCli(['run', '--once', '--config', path], env, 120_000)];
    runs.push(await runCli(['status', '--config', path], env));
    runs.push(await runCli(['status', '--json', '--config', path], env));
    runs.push(await runCli(['log', '--config', path, '--sync', 'corp', '--user', 'echo-invalid@corp.example'], env));
    runs.push(await runCli(['log', '--config', path, '--sync', 'corp', '--user', 'echo-conflict@corp.example', '--json'], env));
    const shown = runs.map((r) => `${r.stdout}\n${r.stderr}`).join('\n');
    // The run did meet the echoing answers and reported them.
    expect(runs[0]?.code, shown).toBe(3);
    expect(shown).toMatch(/echo-invalid@corp\.example/);
    expect(shown).toMatch(/\[REDACTED\]/);
    const kept = await everythingInRedis();
    expect(kept).toMatch(/echo-conflict@corp\.example/);
    for (const fragment of fragments(TOKEN)) {
      expect(shown.includes(fragment), `shown: ${fragment}`).toBe(false);
      expect(kept.includes(fragment), `kept: ${fragment}`).toBe(false);
    }
  }, 180_000);
});

describe('a token refused by TeamViewer in a body that echoes it', () => {
  it('quarantines the sync with a reason that holds no fragment of it, in /readyz (with and without the trigger token), Redis and logs', async () => {
    const { parseConfig } = await import('../../src/config/load.js');
    const { createLogger } = await import('../../src/observe/log.js');
    const { Daemon } = await import('../../src/runtime/daemon.js');
    const { Observability } = await import('../../src/runtime/observability.js');
    const { runCycle } = await import('../support/cycle.js');
    const { FAST } = await import('../support/runtime.js');
    const quarantinePrefix = testPrefix('echo-401');
    const trigger = 'trigger-token-for-readyz-0001';
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${quarantinePrefix} }
http: { host: 127.0.0.1, port: 0, triggerToken: "\${TRIGGER}" }
syncs:
  - name: corp
    source: { type: file, path: ${writeExport(people(2, 96_000))}, settle: 0s }
    target: { baseUrl: ${liar.baseUrl}, token: "\${T}", tokenOwner: owner@corp.example }
`,
      { env: { T: TOKEN, TRIGGER: trigger } },
    );
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
    const previous = liar.rule;
    liar.rule = ({ authorization }) => ({ status: 401, body: { error: 'invalid_token', error_description: echoOf(authorization) } });
    const daemon = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: FAST });
    const observability = new Observability(config, daemon.redis, log);
    const http = await observability.serve(daemon);
    try {
      const report = await runCycle(daemon);
      expect(report.failure?.failureClass).toBe('unauthorised');
      const base = `http://127.0.0.1:${http.port}/readyz`;
      const open = await fetch(base);
      const detailed = await fetch(base, { headers: { authorization: `Bearer ${trigger}` } });
      // The status page shows the quarantine, its reason and the failed cycle: outside text, scrubbed.
      const page = await fetch(`http://127.0.0.1:${http.port}/status`);
      const pageHtml = await page.text();
      expect(page.status).toBe(200);
      expect(pageHtml).toMatch(/Quarantined/);
      const shown = `${await open.text()}\n${await detailed.text()}\n${pageHtml}`;
      expect(open.status).toBe(503);
      expect(shown).toMatch(/quarantined/);
      const status = await runCli(['status', '--json', '--config', writeConfig({ exportDir: '.', baseUrl: liar.baseUrl, prefix: quarantinePrefix })], {
        TVSYNC_TEST_TOKEN: TOKEN,
      });
      expect(status.stdout).toMatch(/"quarantined": true/);
      const everything = `${shown}\n${status.stdout}\n${status.stderr}\n${lines.join('')}\n${await everythingInRedis(quarantinePrefix)}`;
      for (const fragment of fragments(TOKEN)) expect(everything.includes(fragment), fragment).toBe(false);
    } finally {
      liar.rule = previous;
      await observability.close();
      await daemon.stop();
      await dropPrefix(quarantinePrefix);
    }
  }, 60_000);
});
