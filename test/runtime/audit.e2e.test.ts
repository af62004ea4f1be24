import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { StdoutAuditSink, type AuditRecord, type AuditSink } from '../../src/observe/audit.js';
import { FAST } from '../support/runtime.js';
import { runCycle } from '../support/cycle.js';
import { TOKEN, people, silentLog, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  tv = await startEmulator();
});
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

describe('the audit stream', () => {
  it('writes one JSON line per operation and per skip of a cycle, as the provisioning log records them', async () => {
    const prefix = testPrefix('audit');
    prefixes.push(prefix);
    const users = [...people(6, 90_000), { id: 'emp-bad', email: 'not-an-address', givenName: 'No', familyName: 'Address', active: true }];
    const dir = writeExport(users);
    const path = writeConfig({ exportDir: dir, baseUrl: tv.baseUrl, prefix });
    const config = parseConfig(`${readFileSync(path, 'utf8')}\naudit: { to: stdout }\n`, { env: { TVSYNC_TEST_TOKEN: TOKEN } });
    expect(config.audit.to).toBe('stdout');
    // The stdout sink, on a stream the test reads.
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    const sink: AuditSink = new StdoutAuditSink(out);
    const redis = new Redis(REDIS_URL);
    const observability = new Observability(config, redis, silentLog, { auditSink: sink });
    const daemon = await Daemon.start(config, silentLog, { scheduler: false, worker: true, runtime: FAST, ...observability.hooks() });
    stops.push(async () => {
      await daemon.stop();
      await observability.close();
      redis.disconnect();
    });

    const first = await runCycle(daemon);
    expect(first.operations.createUser.applied).toBe(6);
    writeExport(users.slice(1), [], dir);
    const second = await runCycle(daemon);
    expect(second.operations.deactivateUser.applied).toBe(1);

    // The log records an outcome alongside the cycle's own record of it: the last may come a moment after the report.
    const logged = await waitFor('the deactivation logged', async () => {
      const entries = await observability.provisioningLog('corp').query({ limit: 1000 });
      return entries.some((e) => e.cycleId === second.cycleId && e.kind === 'deactivateUser') && entries;
    });
    observability.audit?.flush();
    const records = text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AuditRecord);
    // One line per entry the provisioning log holds: the same cycles, kinds and people.
    expect(records).toHaveLength(logged.length);
    const key = (cycleId: string, kind: string, who: string | undefined) => `${cycleId} ${kind} ${who}`;
    expect(records.map((r) => key(r.cycleId, String(r.tvsync.kind), r.sourceIdentity.id)).sort()).toEqual(
      logged.map((e) => key(e.cycleId, e.kind, e.sourceId ?? '')).sort(),
    );
    expect(records.filter((r) => r.provisioningAction === 'create' && r.provisioningStatusInfo.status === 'success')).toHaveLength(6);
    const disabled = records.filter((r) => r.provisioningAction === 'disable');
    expect(disabled).toHaveLength(1);
    expect(disabled[0]).toMatchObject({
      stream: 'audit',
      jobId: 'corp',
      cycleId: second.cycleId,
      sourceIdentity: { id: users[0]?.id, identityType: 'User' },
      targetSystem: { displayName: 'TeamViewer' },
      sourceSystem: { displayName: 'File export' },
      modifiedProperties: [{ displayName: 'active', oldValue: 'true', newValue: 'false' }],
    });
    const skips = records.filter((r) => r.provisioningStatusInfo.status === 'skipped');
    expect(skips.length).toBeGreaterThan(0);
    expect(skips.every((r) => r.provisioningStatusInfo.errorInformation?.errorCode && r.sourceIdentity.id)).toBe(true);
    for (const r of records) expect(r.activityDateTime).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('writes to a file that SIGHUP reopens after logrotate moved it', async () => {
    const prefix = testPrefix('audit-file');
    prefixes.push(prefix);
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-audit-'));
    const file = join(dir, 'audit.jsonl');
    const path = writeConfig({ exportDir: writeExport(people(1)), baseUrl: tv.baseUrl, prefix });
    const config = parseConfig(`${readFileSync(path, 'utf8')}\naudit: { to: file, path: ${file} }\n`, { env: { TVSYNC_TEST_TOKEN: TOKEN } });
    const redis = new Redis(REDIS_URL);
    const observability = new Observability(config, redis, silentLog);
    observability.watch({ syncs: new Map() });
    stops.push(async () => {
      await observability.close();
      redis.disconnect();
    });
    const skip = (sourceId: string) => ({ reason: 'no-email' as const, sourceId, message: 'no address' });
    const log = observability.provisioningLog('corp');
    await log.recordSkipped('c1', [skip('a'), skip('b')]);
    renameSync(file, `${file}.1`);
    process.emit('SIGHUP', 'SIGHUP');
    await log.recordSkipped('c2', [skip('c')]);
    observability.audit?.flush();
    const ids = (f: string) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as AuditRecord).sourceIdentity.id);
    expect(ids(`${file}.1`)).toEqual(['a', 'b']);
    expect(ids(file)).toEqual(['c']);
    await observability.close();
    // Closed: SIGHUP is the process's own again.
    expect(process.listenerCount('SIGHUP')).toBe(0);
  });
});
