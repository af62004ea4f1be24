import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { CycleStore } from '../store/cycle-store.js';
import { CYCLE_JOB_OPTIONS, manualDedupId, type CycleJobData } from './queues.js';
import type { CycleReport } from '../plan/report.js';

/**
 * Asks for a cycle now. Presses while one is queued collapse into it; presses while a manual cycle
 * runs collapse into one follow-up (BullMQ deduplication with keepLastIfActive). Global concurrency
 * keeps it behind a running scheduled cycle.
 */
export async function requestCycle(
  cycles: Queue<CycleJobData>,
  sync: string,
  trigger: 'manual' | 'once' | 'change' = 'manual',
): Promise<{ requestedAt: number; jobId?: string }> {
  const requestedAt = Date.now();
  const job = await cycles.add('cycle', { trigger, requestedAt }, { ...CYCLE_JOB_OPTIONS, deduplication: { id: manualDedupId(sync), keepLastIfActive: true } });
  return job.id ? { requestedAt, jobId: job.id } : { requestedAt };
}

/**
 * Waits for the report of a cycle that covers a request made at `sinceMs`: one that started after
 * it, or one whose job carries this (or a later) request.
 */
export async function waitForCycleReport(
  store: CycleStore,
  sinceMs: number,
  opts: { timeoutMs: number; pollMs?: number; signal?: AbortSignal },
): Promise<CycleReport | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline && !opts.signal?.aborted) {
    const reports = await store.reports(10);
    const match = reports.filter((r) => Date.parse(r.startedAt) >= sinceMs || (r.requestedAt ?? 0) >= sinceMs).pop();
    if (match) return match;
    await sleep(opts.pollMs ?? 250);
  }
  return undefined;
}
