import { setTimeout as sleep } from 'node:timers/promises';
import { Job, type Queue } from 'bullmq';
import type { CycleStore } from '../store/cycle-store.js';
import { CYCLE_JOB_OPTIONS, cycleIdOf, manualDedupId, type CycleJobData } from './queues.js';
import type { CycleReport } from '../plan/report.js';

/** A cycle asked for: the cycle that will cover it, or the running one it follows. */
export interface CycleRequest {
  requestedAt: number;
  jobId?: string;
  /** The cycle that runs the request: a new one, or one already waiting that the request joined. */
  cycleId?: string;
  /** A cycle of the sync that runs now: the request runs in a follow-up after it, whose id is known once it starts. */
  after?: string;
}

/**
 * Asks for a cycle now. Presses while one is queued collapse into it; presses while a manual cycle
 * runs collapse into one follow-up (BullMQ deduplication with keepLastIfActive). Global concurrency
 * keeps it behind a running scheduled cycle.
 */
export async function requestCycle(cycles: Queue<CycleJobData>, sync: string, trigger: 'manual' | 'once' | 'change' = 'manual'): Promise<CycleRequest> {
  const requestedAt = Date.now();
  const job = await cycles.add('cycle', { trigger, requestedAt }, { ...CYCLE_JOB_OPTIONS, deduplication: { id: manualDedupId(sync), keepLastIfActive: true } });
  if (!job.id) return { requestedAt };
  // A deduplicated add answers with the job it joined, under this call's own timestamp: read that job back.
  const joined = await Job.fromId<CycleJobData>(cycles, job.id);
  if (!joined) return { requestedAt, jobId: job.id, cycleId: cycleIdOf(job) };
  if (joined.data.requestedAt !== requestedAt && (await joined.getState()) === 'active') return { requestedAt, jobId: job.id, after: cycleIdOf(joined) };
  return { requestedAt, jobId: job.id, cycleId: cycleIdOf(joined) };
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
