import { describe, expect, it } from 'vitest';
import { LIVENESS_REASONS } from '../../src/observe/http.js';
import { judgeSchedule, judgeWorker, livenessMargin, WorkerPulse, workerMargin, type WatchedWorker } from '../../src/runtime/liveness.js';

const MIN = 60_000;
const T0 = 1_800_000_000_000;

describe('livenessMargin', () => {
  it('is 2 min or a tenth of the interval, whichever is longer, unless configured', () => {
    expect(livenessMargin(10 * MIN)).toBe(2 * MIN);
    expect(livenessMargin(40 * MIN)).toBe(4 * MIN);
    expect(livenessMargin(24 * 60 * MIN)).toBe(144 * MIN);
    expect(livenessMargin(24 * 60 * MIN, 30_000)).toBe(30_000);
  });

  it('for a waiting job is 2 min whatever the schedule, unless configured', () => {
    expect(workerMargin()).toBe(2 * MIN);
    expect(workerMargin(30_000)).toBe(30_000);
  });
});

describe('judgeSchedule', () => {
  it('fails only when the due cycle is later than the margin and no cycle of the sync runs', () => {
    expect(judgeSchedule({ nextMs: T0, activeCycles: 0 }, T0 + 2 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeSchedule({ nextMs: T0, activeCycles: 0 }, T0 + 2 * MIN + 1, 2 * MIN)).toBe(LIVENESS_REASONS.overdue);
    expect(judgeSchedule({ nextMs: T0, activeCycles: 1 }, T0 + 600 * MIN, 2 * MIN)).toBeUndefined();
    // Paused by hand: a restart would not start it either.
    expect(judgeSchedule({ nextMs: T0, activeCycles: 0, paused: true }, T0 + 600 * MIN, 2 * MIN)).toBeUndefined();
    // No scheduler at all: Redis lost it, and the state guard puts it back (readiness says so).
    expect(judgeSchedule({ nextMs: undefined, activeCycles: 0 }, T0 + 600 * MIN, 2 * MIN)).toBeUndefined();
  });
});

function watched(running = true): WatchedWorker & { running: boolean } {
  const watch = {
    sync: 'corp',
    queue: 'operations' as const,
    pulse: new WorkerPulse(),
    expected: true,
    running,
    worker: { isRunning: () => watch.running, closing: undefined as Promise<void> | undefined },
  };
  return watch;
}

describe('judgeWorker', () => {
  it('fails a started worker that no longer runs or closes, without reading Redis', () => {
    const stopped = watched(false);
    expect(judgeWorker(stopped, undefined, T0, 2 * MIN)).toBe(LIVENESS_REASONS.stopped);
    const closing = watched();
    closing.worker.closing = Promise.resolve();
    expect(judgeWorker(closing, undefined, T0, 2 * MIN)).toBe(LIVENESS_REASONS.stopped);
    // A change-feed worker not started yet (it waits for the HTTP endpoint) is not stopped.
    const deferred = { ...watched(false), expected: false };
    expect(judgeWorker(deferred, undefined, T0, 2 * MIN)).toBeUndefined();
  });

  it('fails an idle worker when the same job has waited at the head for longer than the margin', () => {
    const watch = watched();
    expect(judgeWorker(watch, { headJobId: 'j1', held: false }, T0, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: 'j1', held: false }, T0 + 2 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: 'j1', held: false }, T0 + 2 * MIN + 1, 2 * MIN)).toBe(LIVENESS_REASONS.stuck);
  });

  it('starts over when the head changes, the queue is held or empty, and gives no verdict without a read', () => {
    const watch = watched();
    judgeWorker(watch, { headJobId: 'j1', held: false }, T0, 2 * MIN);
    // Another replica took j1: the clock starts again at j2.
    expect(judgeWorker(watch, { headJobId: 'j2', held: false }, T0 + 3 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: 'j2', held: false }, T0 + 4 * MIN, 2 * MIN)).toBeUndefined();
    // Redis did not answer: no verdict, and what was seen is kept.
    expect(judgeWorker(watch, undefined, T0 + 6 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: 'j2', held: false }, T0 + 6 * MIN, 2 * MIN)).toBe(LIVENESS_REASONS.stuck);
    // Rate-limited (a 429 pause): waiting is expected, and the wait counts afresh afterwards.
    expect(judgeWorker(watch, { headJobId: 'j2', held: true }, T0 + 7 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: 'j2', held: false }, T0 + 8 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: undefined, held: false }, T0 + 20 * MIN, 2 * MIN)).toBeUndefined();
  });

  it('does not fail a worker that is busy or took a job since the head was first seen', async () => {
    const watch = watched();
    let finish: () => void = () => {};
    const processor = watch.pulse.wrap((_job: string) => new Promise<void>((resolve) => (finish = resolve)));
    const now = Date.now();
    judgeWorker(watch, { headJobId: 'j1', held: false }, now - 5 * MIN, 2 * MIN);
    const running = processor('job');
    expect(watch.pulse.inFlight).toBe(1);
    // A long job of its own: busy, not stuck, whatever waits behind it.
    expect(judgeWorker(watch, { headJobId: 'j1', held: false }, now + 60 * MIN, 2 * MIN)).toBeUndefined();
    finish();
    await running;
    expect(watch.pulse.inFlight).toBe(0);
    // It took a job after j1 was seen at the head: alive then, so the wait counts from the next look.
    judgeWorker(watch, { headJobId: 'j1', held: false }, now - 1, 2 * MIN);
    expect(judgeWorker(watch, { headJobId: 'j1', held: false }, now + 3 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: 'j1', held: false }, now + 5 * MIN, 2 * MIN)).toBeUndefined();
    expect(judgeWorker(watch, { headJobId: 'j1', held: false }, now + 5 * MIN + 1, 2 * MIN)).toBe(LIVENESS_REASONS.stuck);
  });

  it('keeps the abort signal: the wrapped processor takes three parameters as BullMQ looks for', () => {
    expect(new WorkerPulse().wrap(async (_job: unknown, _token?: string, _signal?: AbortSignal) => undefined)).toHaveLength(3);
  });
});
