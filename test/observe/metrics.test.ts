import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TvsyncMetrics } from '../../src/observe/metrics.js';
import { bullmqQueueDepth } from '../../src/runtime/observability.js';
import type { PlanSummary } from '../../src/plan/types.js';
import { closeQueues, openQueues } from '../../src/runtime/queues.js';
import { OPERATION_KINDS, type CycleReport, type OperationResult } from '../../src/plan/report.js';
import { dropPrefix, REDIS_URL, testPrefix } from '../support/redis.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ''] = pair[2] ?? '';
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return samples;
}

function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample with this name and these labels (undefined when absent). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = find(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

function summary(over: Partial<PlanSummary> = {}): PlanSummary {
  return {
    inScope: 10,
    teamviewerUsers: 8,
    managed: 8,
    unchanged: 5,
    operations: { createUser: 2, updateUser: 1, deactivateUser: 0, reactivateUser: 0 },
    held: 0,
    skipped: {},
    ...over,
  };
}

function report(over: Partial<CycleReport> = {}): CycleReport {
  const operations = Object.fromEntries(
    OPERATION_KINDS.map((kind) => [kind, { planned: 0, applied: 0, failed: 0, cancelled: 0 }]),
  ) as CycleReport['operations'];
  return {
    sync: 'corp',
    cycleId: 'c1',
    trigger: 'schedule',
    startedAt: '2026-11-23T21:40:00.000Z',
    finishedAt: '2026-11-23T21:42:00.000Z',
    durationMs: 120_000,
    outcome: 'succeeded',
    notices: [],
    summary: summary(),
    operations,
    adopted: 0,
    failures: [],
    skipped: [],
    held: { count: 0, pendingApproval: false, items: [] },
    ...over,
  };
}

function result(over: Partial<OperationResult> = {}): OperationResult {
  return {
    key: 'createUser.s1',
    kind: 'createUser',
    sourceId: 's1',
    email: 'jane@corp.example',
    after: { displayName: 'Jane', active: true },
    status: 'applied',
    message: 'created',
    attempts: 1,
    ...over,
  };
}

describe('TvsyncMetrics', () => {
  it('counts cycles and keeps the last planned cycle’s gauges, skip reasons reset between cycles', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false });
    metrics.cycleFinished(
      report({ summary: summary({ inScope: 10, skipped: { protected: 2, 'duplicate-email': 1 } }), held: { count: 4, pendingApproval: true, items: [] } }),
    );
    let s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_skipped', { sync: 'corp', reason: 'protected' })).toBe(2);
    expect(value(s, 'tvsync_skipped', { sync: 'corp', reason: 'duplicate-email' })).toBe(1);
    expect(value(s, 'tvsync_held_deactivations', { sync: 'corp' })).toBe(4);

    metrics.cycleFinished(
      report({
        cycleId: 'c2',
        outcome: 'partial',
        durationMs: 3_000,
        finishedAt: '2026-11-23T22:00:03.000Z',
        summary: summary({ inScope: 12, skipped: { protected: 3 } }),
      }),
    );
    s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_cycles_total', { sync: 'corp', outcome: 'succeeded' })).toBe(1);
    expect(value(s, 'tvsync_cycles_total', { sync: 'corp', outcome: 'partial' })).toBe(1);
    expect(value(s, 'tvsync_users_in_scope', { sync: 'corp' })).toBe(12);
    expect(value(s, 'tvsync_skipped', { sync: 'corp', reason: 'protected' })).toBe(3);
    expect(value(s, 'tvsync_skipped', { sync: 'corp', reason: 'duplicate-email' })).toBe(0);
    expect(value(s, 'tvsync_held_deactivations', { sync: 'corp' })).toBe(0);
    expect(value(s, 'tvsync_last_successful_cycle_timestamp_seconds', { sync: 'corp' })).toBe(Date.parse('2026-11-23T22:00:03.000Z') / 1000);
    expect(value(s, 'tvsync_cycle_duration_seconds_count', { sync: 'corp' })).toBe(2);
    expect(value(s, 'tvsync_cycle_duration_seconds_sum', { sync: 'corp' })).toBe(123);
    expect(value(s, 'tvsync_cycle_duration_seconds_bucket', { sync: 'corp', le: '5' })).toBe(1);
    expect(value(s, 'tvsync_cycle_duration_seconds_bucket', { sync: 'corp', le: '3600' })).toBe(2);

    // A cycle that failed before planning: counted, but the plan-derived gauges and the last success stay.
    const { summary: _omit, ...failed } = report({
      cycleId: 'c3',
      outcome: 'failed',
      finishedAt: '2026-11-23T23:00:00.000Z',
      failure: { failureClass: 'unauthorised', message: '401' },
    });
    metrics.cycleFinished(failed);
    s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_cycles_total', { sync: 'corp', outcome: 'failed' })).toBe(1);
    expect(value(s, 'tvsync_users_in_scope', { sync: 'corp' })).toBe(12);
    expect(value(s, 'tvsync_skipped', { sync: 'corp', reason: 'protected' })).toBe(3);
    expect(value(s, 'tvsync_last_successful_cycle_timestamp_seconds', { sync: 'corp' })).toBe(Date.parse('2026-11-23T22:00:03.000Z') / 1000);
  });

  it('keeps syncs apart', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false });
    metrics.cycleFinished(report({ sync: 'a', summary: summary({ skipped: { protected: 1 } }) }));
    metrics.cycleFinished(report({ sync: 'b', summary: summary({ skipped: { 'owned-outside-company': 5 } }) }));
    metrics.cycleFinished(report({ sync: 'a', summary: summary({ skipped: {} }) }));
    const s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_skipped', { sync: 'a', reason: 'protected' })).toBe(0);
    expect(value(s, 'tvsync_skipped', { sync: 'b', reason: 'owned-outside-company' })).toBe(5);
    expect(find(s, 'tvsync_skipped', { sync: 'b' })).toHaveLength(1);
  });

  it('counts operations by outcome and failures by class', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false });
    metrics.operationsRecorded('corp', [result()]);
    metrics.operationsRecorded('corp', [result()]);
    metrics.operationsRecorded('corp', [result({ kind: 'updateUser', status: 'failed', failureClass: 'invalid' })]);
    metrics.operationsRecorded('corp', [result({ kind: 'updateUser', status: 'failed' })]);
    metrics.operationsRecorded('corp', [result({ kind: 'deactivateUser', status: 'cancelled' })]);
    metrics.operationsRecorded('corp', [
      {
        key: 'addGroupMembers.g1.0',
        kind: 'addGroupMembers',
        sourceId: 'g1',
        group: 'Sales',
        after: {},
        status: 'failed',
        failureClass: 'not-found',
        message: 'add to Sales: 404',
        attempts: 1,
      },
    ]);
    const s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_operations_total', { sync: 'corp', kind: 'createUser', outcome: 'applied' })).toBe(2);
    expect(value(s, 'tvsync_operations_total', { sync: 'corp', kind: 'updateUser', outcome: 'failed' })).toBe(2);
    expect(value(s, 'tvsync_operations_total', { sync: 'corp', kind: 'deactivateUser', outcome: 'cancelled' })).toBe(1);
    expect(value(s, 'tvsync_operation_failures_total', { sync: 'corp', kind: 'updateUser', failure_class: 'invalid' })).toBe(1);
    expect(value(s, 'tvsync_operation_failures_total', { sync: 'corp', kind: 'updateUser', failure_class: 'unknown' })).toBe(1);
    expect(find(s, 'tvsync_operation_failures_total', { kind: 'createUser' })).toHaveLength(0);
    expect(value(s, 'tvsync_operations_total', { sync: 'corp', kind: 'addGroupMembers', outcome: 'failed' })).toBe(1);
    expect(value(s, 'tvsync_operation_failures_total', { sync: 'corp', kind: 'addGroupMembers', failure_class: 'not-found' })).toBe(1);
  });

  it('counts outcomes written together as it counts them one by one', async () => {
    const batch = [
      result(),
      result({ kind: 'updateUser', status: 'failed', failureClass: 'invalid' }),
      result(),
      result({ kind: 'updateUser', status: 'failed' }),
      result({ kind: 'updateUser', status: 'failed', failureClass: 'invalid' }),
      result({ kind: 'deactivateUser', status: 'cancelled' }),
    ];
    const together = new TvsyncMetrics({ defaultMetrics: false });
    together.operationsRecorded('corp', batch);
    const oneByOne = new TvsyncMetrics({ defaultMetrics: false });
    for (const r of batch) oneByOne.operationsRecorded('corp', [r]);
    const s = parse(await together.metrics());
    expect(s).toEqual(parse(await oneByOne.metrics()));
    expect(value(s, 'tvsync_operations_total', { sync: 'corp', kind: 'createUser', outcome: 'applied' })).toBe(2);
    expect(value(s, 'tvsync_operations_total', { sync: 'corp', kind: 'updateUser', outcome: 'failed' })).toBe(3);
    expect(value(s, 'tvsync_operation_failures_total', { sync: 'corp', kind: 'updateUser', failure_class: 'invalid' })).toBe(2);
    expect(value(s, 'tvsync_operation_failures_total', { sync: 'corp', kind: 'updateUser', failure_class: 'unknown' })).toBe(1);
  });

  it('counts TeamViewer answers, their time and 429s', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false });
    metrics.teamviewerResponse('corp', { method: 'GET', path: '/Users', status: 200, ms: 120 });
    metrics.teamviewerResponse('corp', { method: 'get', path: '/Users', status: 200, ms: 80 });
    metrics.teamviewerResponse('corp', { method: 'PATCH', path: '/Users/{id}', status: 429, ms: 10 });
    metrics.teamviewerResponse('corp', { method: 'PATCH', path: '/Users/{id}?x=1', status: 429, ms: 10 });
    const s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_teamviewer_requests_total', { sync: 'corp', method: 'GET', route: '/Users', status: '200' })).toBe(2);
    expect(value(s, 'tvsync_teamviewer_requests_total', { sync: 'corp', method: 'PATCH', route: '/Users/{id}', status: '429' })).toBe(2);
    expect(value(s, 'tvsync_teamviewer_rate_limited_total', { sync: 'corp' })).toBe(2);
    expect(value(s, 'tvsync_teamviewer_request_duration_seconds_count', { sync: 'corp', method: 'GET', route: '/Users' })).toBe(2);
    expect(value(s, 'tvsync_teamviewer_request_duration_seconds_sum', { sync: 'corp', method: 'GET', route: '/Users' })).toBeCloseTo(0.2);
    expect(value(s, 'tvsync_teamviewer_request_duration_seconds_bucket', { sync: 'corp', method: 'GET', route: '/Users', le: '0.1' })).toBe(1);
  });

  it('shows the request rate the sync learned', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false });
    metrics.requestRate('corp', 187.46);
    metrics.requestRate('corp', 149.97);
    expect(value(parse(await metrics.metrics()), 'tvsync_request_rate', { sync: 'corp' })).toBe(150);
  });

  it('shows quarantine and starts per-sync series at 0', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false });
    metrics.initSyncs(['a', 'b']);
    metrics.setQuarantined('b', true);
    let s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_sync_quarantined', { sync: 'a' })).toBe(0);
    expect(value(s, 'tvsync_sync_quarantined', { sync: 'b' })).toBe(1);
    expect(value(s, 'tvsync_cycles_total', { sync: 'a', outcome: 'failed' })).toBe(0);
    expect(value(s, 'tvsync_teamviewer_rate_limited_total', { sync: 'b' })).toBe(0);
    metrics.setQuarantined('b', false);
    s = parse(await metrics.metrics());
    expect(value(s, 'tvsync_sync_quarantined', { sync: 'b' })).toBe(0);
  });

  it('reads the queue depth at scrape time and drops series that are gone', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false });
    let s = parse(await metrics.metrics());
    expect(find(s, 'tvsync_queue_jobs')).toHaveLength(0);

    let calls = 0;
    let answer = [
      { sync: 'corp', queue: 'operations', state: 'waiting', count: 7 },
      { sync: 'corp', queue: 'cycles', state: 'active', count: 1 },
    ];
    metrics.registerQueueDepth(async () => {
      calls++;
      return answer;
    });
    s = parse(await metrics.metrics());
    expect(calls).toBe(1);
    expect(value(s, 'tvsync_queue_jobs', { sync: 'corp', queue: 'operations', state: 'waiting' })).toBe(7);
    expect(value(s, 'tvsync_queue_jobs', { sync: 'corp', queue: 'cycles', state: 'active' })).toBe(1);

    answer = [{ sync: 'corp', queue: 'operations', state: 'waiting', count: 2 }];
    s = parse(await metrics.metrics());
    expect(calls).toBe(2);
    expect(value(s, 'tvsync_queue_jobs', { sync: 'corp', queue: 'operations', state: 'waiting' })).toBe(2);
    expect(find(s, 'tvsync_queue_jobs', { queue: 'cycles' })).toHaveLength(0);
  });

  it('still answers a scrape when the queue depth fails or hangs', async () => {
    const metrics = new TvsyncMetrics({ defaultMetrics: false, queueCollectTimeoutMs: 100 });
    metrics.operationsRecorded('corp', [result()]);
    metrics.registerQueueDepth(() => Promise.reject(new Error('redis down')));
    let s = parse(await metrics.metrics());
    expect(find(s, 'tvsync_queue_jobs')).toHaveLength(0);
    expect(value(s, 'tvsync_queue_collect_errors_total')).toBe(1);
    expect(value(s, 'tvsync_operations_total', { sync: 'corp', kind: 'createUser', outcome: 'applied' })).toBe(1);

    metrics.registerQueueDepth(() => new Promise(() => {}));
    const started = Date.now();
    s = parse(await metrics.metrics());
    expect(Date.now() - started).toBeLessThan(2000);
    expect(value(s, 'tvsync_queue_collect_errors_total')).toBe(2);
  });

  it('includes process metrics and names its content type', async () => {
    const metrics = new TvsyncMetrics();
    const s = parse(await metrics.metrics());
    expect(find(s, 'process_cpu_user_seconds_total')).toHaveLength(1);
    expect(find(s, 'nodejs_heap_size_used_bytes')).toHaveLength(1);
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('bullmqQueueDepth', () => {
  const prefix = testPrefix('metrics');
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await redis.quit();
    await dropPrefix(prefix);
  });

  it('reads every state of both queues of every sync from Redis', async () => {
    const queues = openQueues('corp', redis, prefix);
    try {
      await queues.operations.add('op', { n: 1 });
      await queues.operations.add('op', { n: 2 });
      await queues.operations.add('op', { n: 3 }, { delay: 60_000 });
      await queues.cycles.add('cycle', { trigger: 'manual' });
      const metrics = new TvsyncMetrics({ defaultMetrics: false });
      metrics.registerQueueDepth(bullmqQueueDepth(new Map([['corp', { queues }]])));
      const s = parse(await metrics.metrics());
      expect(value(s, 'tvsync_queue_jobs', { sync: 'corp', queue: 'operations', state: 'waiting' })).toBe(2);
      expect(value(s, 'tvsync_queue_jobs', { sync: 'corp', queue: 'operations', state: 'delayed' })).toBe(1);
      expect(value(s, 'tvsync_queue_jobs', { sync: 'corp', queue: 'cycles', state: 'waiting' })).toBe(1);
      expect(value(s, 'tvsync_queue_jobs', { sync: 'corp', queue: 'cycles', state: 'failed' })).toBe(0);
      expect(find(s, 'tvsync_queue_jobs', { sync: 'corp' })).toHaveLength(12);
      expect(value(s, 'tvsync_queue_collect_errors_total')).toBe(0);
    } finally {
      await closeQueues(queues);
    }
  });
});
