import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { waitForCycleReport } from '../../src/runtime/trigger.js';
import { tracingSettings, tracingStarted } from '../../src/observe/traces.js';
import { OtlpReceiver, type ReceivedSpan } from '../support/fakes/otlp-receiver.js';
import { OWNER, TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { freePort } from '../support/redis-server.js';
import { FAST } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { runCli } from '../support/cli.js';

const TRIGGER = 'trigger-token-traces-0123456789';
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

function post(port: number, path: string, token: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every span of the trace has its parent in the trace, but the one root. */
function roots(spans: ReceivedSpan[]): ReceivedSpan[] {
  const ids = new Set(spans.map((s) => s.spanId));
  return spans.filter((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId));
}

describe('the trace of a cycle', () => {
  const receiver = new OtlpReceiver();
  const prefixes: string[] = [];
  let stop: (() => Promise<void>) | undefined;

  beforeAll(() => receiver.start());
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });
  afterAll(async () => {
    await receiver.stop();
    await Promise.all(prefixes.map(dropPrefix));
  });

  async function start(users: number, opts: { scheduler: boolean }) {
    const tv = await startEmulator();
    const prefix = testPrefix('traces');
    prefixes.push(prefix);
    const port = await freePort();
    const yaml = `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
http: { host: 127.0.0.1, port: ${port}, triggerToken: "\${TT}" }
telemetry: { traces: { endpoint: "${receiver.url}", serviceName: tvsync-test } }
syncs:
  - name: corp
    source: { type: file, path: ${writeExport(people(users))}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", tokenOwner: ${OWNER}, requestsPerSecond: 5000, concurrency: 4 }
`;
    const config = parseConfig(yaml, { env: { T: TOKEN, TT: TRIGGER } });
    const path = join(mkdtempSync(join(tmpdir(), 'tvsync-traces-')), 'tvsync.yaml');
    writeFileSync(path, yaml);
    const daemon = await Daemon.start(config, silentLog, { scheduler: opts.scheduler, worker: true, runtime: FAST });
    const observability = new Observability(config, daemon.redis, silentLog);
    await observability.serve(daemon);
    stop = async () => {
      await observability.close();
      await daemon.stop();
      await tv.emulator.stop();
    };
    return { daemon, port, path, stop };
  }

  it('follows a "sync now" press through the cycle, each operation job and each SCIM request', async () => {
    const { daemon, port, stop: end } = await start(3, { scheduler: false });
    expect(tracingStarted()).toBe(true);
    const pressed = await post(port, '/syncs/corp/sync-now', TRIGGER);
    expect(pressed.status).toBe(202);
    const { requestedAt } = JSON.parse(pressed.body) as { requestedAt: number };
    const report = await waitForCycleReport(daemon.runtime('corp').store, requestedAt, { timeoutMs: 60_000, pollMs: 50 });
    expect(report?.operations.createUser.applied).toBe(3);
    // Stopping flushes what the exporter holds.
    await end();
    stop = undefined;
    expect(tracingStarted()).toBe(false);

    const press = receiver.spans.filter((s) => s.name === 'sync now');
    expect(press).toHaveLength(1);
    expect(press[0]).toMatchObject({ service: 'tvsync-test', parentSpanId: undefined, attributes: { 'tvsync.sync': 'corp', 'tvsync.via': 'http' } });
    const spans = receiver.trace(press[0]!.traceId);
    // One connected trace: the press is its only root.
    expect(roots(spans).map((s) => s.name)).toEqual(['sync now']);

    const cycle = spans.filter((s) => s.kind === CONSUMER && s.name === 'process cycles-corp');
    expect(cycle).toHaveLength(1);
    expect(cycle[0]!.attributes).toMatchObject({ 'tvsync.sync': 'corp', 'tvsync.cycle': report!.cycleId });
    const operations = spans.filter((s) => s.kind === CONSUMER && s.name === 'process operations-corp');
    expect(operations.length).toBeGreaterThanOrEqual(3);
    const creates = spans.filter((s) => s.kind === CLIENT && s.name === 'POST /Users');
    expect(creates).toHaveLength(3);
    for (const create of creates) {
      expect(create.attributes).toMatchObject({ 'http.request.method': 'POST', 'url.template': '/Users', 'http.response.status_code': 201 });
      // Each create is a child of an operation job's span.
      expect(operations.map((o) => o.spanId)).toContain(create.parentSpanId);
    }
    // The read at the cycle's start is in the trace too, under the cycle.
    expect(spans.some((s) => s.kind === CLIENT && s.name === 'GET /Users')).toBe(true);
    // Every SCIM request of the process belongs to this trace.
    expect(receiver.spans.filter((s) => s.name === 'POST /Users').every((s) => s.traceId === press[0]!.traceId)).toBe(true);
    // Paths carry addresses; the spans name the route only, and never a credential.
    const raw = receiver.bodies.join('\n');
    // Neither do the jobs' results (reports and outcomes name people).
    expect(raw).not.toContain('bullmq.job.result');
    expect(raw).not.toContain('@corp.example');
    expect(raw).not.toContain(TOKEN);
    expect(raw).not.toContain(TRIGGER);
  });

  it('follows a press of tvsync sync-now, made in a process of its own, into the worker that runs the cycle', async () => {
    receiver.spans.length = 0;
    const { path, stop: end } = await start(2, { scheduler: false });
    const run = await runCli(['sync-now', '--config', path, '--wait', '--json'], { T: TOKEN, TT: TRIGGER });
    expect(run.code, run.stderr).toBe(0);
    const cycleId = (JSON.parse(run.stdout) as { syncs: { cycleId: string }[] }).syncs[0]?.cycleId;
    await end();
    stop = undefined;

    const press = receiver.spans.find((s) => s.name === 'sync now' && s.attributes['tvsync.via'] === 'cli');
    expect(press).toBeDefined();
    const spans = receiver.trace(press!.traceId);
    expect(roots(spans).map((s) => s.name)).toEqual(['sync now']);
    const cycle = spans.find((s) => s.kind === CONSUMER && s.name === 'process cycles-corp');
    expect(cycle?.attributes['tvsync.cycle']).toBe(cycleId);
    expect(spans.filter((s) => s.kind === CLIENT && s.name === 'POST /Users')).toHaveLength(2);
  });

  it('starts a trace at a schedule tick', async () => {
    receiver.spans.length = 0;
    const { daemon, stop: end } = await start(2, { scheduler: true });
    const store = daemon.runtime('corp').store;
    await waitFor('the first scheduled cycle', async () => (await store.reports(1)).length > 0, 60_000);
    await end();
    stop = undefined;

    const cycle = receiver.spans.find((s) => s.kind === CONSUMER && s.name === 'process cycles-corp');
    expect(cycle?.attributes['tvsync.trigger']).toBe('schedule');
    const spans = receiver.trace(cycle!.traceId);
    // The tick is the scheduler adding the cycle's job: the root, with the cycle under it.
    const [tick] = roots(spans);
    expect(roots(spans)).toHaveLength(1);
    expect(tick).toMatchObject({ kind: PRODUCER, name: 'add cycles-corp.cycle' });
    expect(cycle!.parentSpanId).toBe(tick!.spanId);
    expect(spans.filter((s) => s.kind === CONSUMER && s.name === 'process cycles-corp')).toHaveLength(1);
    expect(spans.filter((s) => s.kind === CLIENT && s.name === 'POST /Users')).toHaveLength(2);
  });
});

describe('whether traces are exported', () => {
  const none = { serviceName: 'tvsync', sampleRatio: 1 };

  it('is off unless an endpoint is named', () => {
    expect(tracingSettings(none, {})).toBeUndefined();
    expect(tracingSettings({ ...none, enabled: true }, {})?.url).toBe('http://localhost:4318/v1/traces');
  });

  it('takes the standard OTEL_ variables, the traces endpoint as it is and the generic one as a base', () => {
    expect(tracingSettings(none, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })?.url).toBe('http://collector:4318/v1/traces');
    expect(tracingSettings(none, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9/t' })?.url).toBe(
      'http://b:9/t',
    );
    expect(tracingSettings(none, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SERVICE_NAME: 'tvsync-eu' })?.serviceName).toBe('tvsync-eu');
  });

  it('stays off when the config or the SDK variables say so', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318' };
    expect(tracingSettings({ ...none, enabled: false }, env)).toBeUndefined();
    expect(tracingSettings(none, { ...env, OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingSettings(none, { ...env, OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
  });
});
