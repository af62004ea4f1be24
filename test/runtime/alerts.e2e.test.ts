import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { TvsyncConfig } from '../../src/config/schema.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { FAST } from '../support/runtime.js';
import { runCycle } from '../support/cycle.js';
import { TOKEN, people, silentLog, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/fakes/webhook-receiver.js';
import { capturedLogger, expectNoLeak } from '../support/leaks.js';
import { waitFor } from '../support/wait.js';
import { runCli } from '../support/cli.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const stops: (() => Promise<void>)[] = [];
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  tv = await startEmulator();
});
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

const HOOK_TOKEN = 'T0HOOKS/B0HOOKS/hookSecretToken0123456789';

/** A replica as `tvsync run` makes one: a daemon with its observability hooks, watching its syncs. */
async function replica(config: TvsyncConfig, log = silentLog) {
  const redis = new Redis(REDIS_URL);
  const observability = new Observability(config, redis, log);
  const daemon = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: FAST, ...observability.hooks() });
  observability.watch(daemon);
  stops.push(async () => {
    await observability.close();
    await daemon.stop();
    redis.disconnect();
  });
  return { daemon, observability };
}

function setUp(name: string, extra = '', checkEvery = '1s', baseUrl = tv.baseUrl) {
  const prefix = testPrefix(name);
  prefixes.push(prefix);
  const users = people(10, 80_000);
  const dir = writeExport(users);
  const path = writeConfig({ exportDir: dir, baseUrl, prefix, extra });
  return { prefix, users, dir, path, checkEvery };
}

function configWith(path: string, receiver: WebhookReceiver, checkEvery: string, format = 'generic', extra = ''): TvsyncConfig {
  const text = `${readFileSync(path, 'utf8')}
alerts:
  webhooks:
    - name: ops
      url: \${HOOK_URL}
      format: ${format}
  checkEvery: ${checkEvery}
${extra}`;
  return parseConfig(text, { env: { TVSYNC_TEST_TOKEN: TOKEN, HOOK_URL: `${receiver.origin}/services/${HOOK_TOKEN}` } });
}

/** Breaks the export so that its read fails (the manifest no longer matches users.json). */
function breakExport(dir: string): void {
  const file = join(dir, 'users.json');
  writeFileSync(file, `${readFileSync(file, 'utf8')} `);
}

describe('alerts', () => {
  it('two replicas alert a failed cycle once, and its end once, however often they look', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const { users, dir, path, checkEvery } = setUp('alerts-failed');
    const config = configWith(path, receiver, checkEvery);
    const { lines, log } = capturedLogger();
    const a = await replica(config, log);
    const b = await replica(config, log);

    expect((await runCycle(a.daemon)).outcome).toBe('succeeded');
    breakExport(dir);
    const failed = await runCycle(a.daemon);
    expect(failed.outcome).toBe('failed');
    await waitFor('the failed cycle to be alerted', () => receiver.of('cycle-failed:corp', 'firing').length === 1);
    // Another failed cycle, on the other replica, and a few looks by both: still the one alert.
    expect((await runCycle(b.daemon)).outcome).toBe('failed');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(receiver.of('cycle-failed:corp')).toHaveLength(1);

    writeExport(users, [], dir);
    expect((await runCycle(b.daemon)).outcome).toBe('succeeded');
    await waitFor('the end of the failure to be alerted', () => receiver.of('cycle-failed:corp', 'resolved').length === 1);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(receiver.calls.map((c) => [c.body.condition, c.body.status])).toEqual([
      ['cycle-failed:corp', 'firing'],
      ['cycle-failed:corp', 'resolved'],
    ]);
    const fired = receiver.of('cycle-failed:corp', 'firing')[0]?.body;
    expect(fired).toMatchObject({ version: 1, kind: 'cycle-failed', sync: 'corp', details: { cycleId: failed.cycleId, failureClass: 'source-read' } });
    expect(String(fired?.summary)).toContain('The last cycle of sync corp failed: the IdP read failed');
    // Metrics: between them the replicas sent two messages.
    const sent = async (r: typeof a) =>
      Number(/tvsync_alerts_total\{webhook="ops",outcome="sent"\} (\d+)/.exec(await r.observability.metrics.metrics())?.[1] ?? 0);
    expect((await sent(a)) + (await sent(b))).toBe(2);
    // The webhook URL carries a token: neither the bodies nor the log lines hold it.
    expectNoLeak('hookSecretToken0123456789', receiver.calls.map((c) => c.text).join('\n'), lines.join('\n'));
  });

  it('alerts deactivations held for approval once per condition, in Slack form, until a person approves them', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const { users, dir, path, checkEvery } = setUp(
      'alerts-held',
      '    policy: { deactivationThreshold: { maxCount: 3, maxPercent: 100, minCountForPercent: 0 } }\n',
      '1m',
    );
    const config = configWith(path, receiver, checkEvery, 'slack');
    const a = await replica(config);
    const b = await replica(config);
    await runCycle(a.daemon);
    writeExport(users.slice(0, 5), [], dir);
    expect((await runCycle(a.daemon)).held.count).toBe(5);
    await waitFor('the held deactivations to be alerted', () => receiver.calls.length === 1);
    expect((await runCycle(b.daemon)).held.count).toBe(5);
    await a.observability.alerter?.check(a.daemon.runtime('corp'));
    await b.observability.alerter?.check(b.daemon.runtime('corp'));
    await a.observability.alerter?.dispatcher.idle();
    await b.observability.alerter?.dispatcher.idle();
    expect(receiver.calls).toHaveLength(1);
    const body = receiver.calls[0]?.body as { text: string; blocks: { type: string }[] };
    expect(body.text).toBe('tvsync FIRING: held (corp): Sync corp holds 5 deactivations for approval (tvsync approve)');
    expect(body.blocks.map((blk) => blk.type)).toEqual(['header', 'section', 'section']);

    await a.daemon.runtime('corp').approvals.approve(
      (await runCycle(a.daemon)).held.items.map((i) => i.tvUserId),
      [],
    );
    const released = await runCycle(b.daemon);
    expect(released.operations.deactivateUser.applied).toBe(5);
    await waitFor('the release to be alerted', () => receiver.calls.length === 2);
    expect(String(receiver.calls[1]?.body.text)).toMatch(/^tvsync RESOLVED: held \(corp\)/);
  });

  it('alerts an address owned outside the company, a backlog and a quarantine, each once, and a backlog that cleared once', async () => {
    const outside = await startEmulator({ outsideEmails: ['person80003@corp.example'] });
    stops.push(() => outside.emulator.stop());
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const { dir, path } = setUp('alerts-more', '', '1m', outside.baseUrl);
    const config = configWith(path, receiver, '1m', 'generic', '  backlog: { waiting: 3, age: 1h }\n');
    const a = await replica(config);
    const b = await replica(config);
    const alerter = (r: typeof a) => {
      if (!r.observability.alerter) throw new Error('alerts are configured');
      return r.observability.alerter;
    };
    const lookBoth = async () => {
      for (const r of [a, b, a]) await alerter(r).check(r.daemon.runtime('corp'));
      await Promise.all([alerter(a).dispatcher.idle(), alerter(b).dispatcher.idle()]);
    };

    await runCycle(a.daemon);
    await lookBoth();
    expect(receiver.calls.map((c) => c.body.condition)).toEqual(['outside-company:corp:person80003@corp.example']);
    expect(receiver.calls[0]?.body.details).toMatchObject({ email: 'person80003@corp.example' });

    // A backlog: the queue paused with jobs waiting, then emptied.
    const operations = a.daemon.runtime('corp').queues.operations;
    await operations.pause();
    for (const ref of ['x1', 'x2', 'x3']) await operations.add('syncUser', { ref, trigger: 'manual' });
    await lookBoth();
    expect(receiver.of('fast-lane-backlog:corp', 'firing')).toHaveLength(1);
    expect(receiver.of('fast-lane-backlog:corp', 'firing')[0]?.body.details).toMatchObject({ waiting: 3 });
    await operations.drain();
    await operations.resume();
    await lookBoth();
    expect(receiver.of('fast-lane-backlog:corp', 'resolved')).toHaveLength(1);

    // Three failing cycles in a row quarantine the sync.
    breakExport(dir);
    for (const r of [a, b, a]) expect((await runCycle(r.daemon)).outcome).toBe('failed');
    await lookBoth();
    expect(receiver.of('cycle-failed:corp', 'firing')).toHaveLength(1);
    expect(receiver.of('quarantined:corp', 'firing')).toHaveLength(1);
    expect(String(receiver.of('quarantined:corp')[0]?.body.summary)).toContain('3 failing cycles in a row');
    expect(receiver.calls).toHaveLength(5);
  });

  it('tvsync run --once sends the alert of its failed cycle before it exits', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const { dir, path } = setUp('alerts-once');
    breakExport(dir);
    writeFileSync(
      path,
      `${readFileSync(path, 'utf8')}
alerts:
  webhooks:
    - { name: ops, url: '\${HOOK_URL}', format: teams }
`,
    );
    const run = await runCli(['run', '--once', '--config', path], { TVSYNC_TEST_TOKEN: TOKEN, HOOK_URL: `${receiver.origin}/services/${HOOK_TOKEN}` });
    expect(run.code, run.stderr).toBe(1);
    expect(receiver.calls).toHaveLength(1);
    const card = JSON.stringify(receiver.calls[0]?.body);
    expect(card).toContain('application/vnd.microsoft.card.adaptive');
    expect(card).toContain('cycle-failed:corp');
    expectNoLeak('hookSecretToken0123456789', run.stdout, run.stderr, card);
  });

  it('a webhook that hangs or fails never holds up a cycle', async () => {
    const hanging = await startWebhookReceiver(() => 'hang');
    const failing = await startWebhookReceiver(() => 500);
    receivers.push(hanging, failing);
    const { dir, path } = setUp('alerts-hang');
    const text = `${readFileSync(path, 'utf8')}
alerts:
  webhooks:
    - { name: hangs, url: '\${HANG_URL}' }
    - { name: fails, url: '\${FAIL_URL}' }
  attempts: 20
`;
    const config = parseConfig(text, { env: { TVSYNC_TEST_TOKEN: TOKEN, HANG_URL: `${hanging.origin}/h`, FAIL_URL: `${failing.origin}/f` } });
    const a = await replica(config);
    breakExport(dir);
    expect((await runCycle(a.daemon)).outcome).toBe('failed');
    await waitFor('both webhooks to be tried', () => hanging.attempts.length >= 1 && failing.attempts.length >= 2);
    // One webhook holds a request open, the other keeps failing and retrying: cycles run on regardless.
    for (let i = 0; i < 3; i++) expect((await runCycle(a.daemon)).outcome).toBe('failed');
    expect(hanging.calls).toHaveLength(0);
    expect(failing.calls).toHaveLength(0);
    expect(a.observability.alerter?.dispatcher.stats()).toMatchObject({ hangs: { sent: 0 }, fails: { sent: 0 } });
  });
});
