import { DelayedError, type Job, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { ChangeFeed, ChangeHint, HookRequest, HookAnswer } from '../connectors/changes.js';
import { SourceReadError } from '../connectors/source.js';
import { SyncError } from '../model/failure.js';
import { scrubSecrets } from '../net/secrets.js';
import type { UserSyncReport, UserSyncTrigger } from '../plan/user-sync.js';
import type { FastLaneStore, FeedStatus } from '../store/fast-lane.js';
import type { CycleJobData } from './queues.js';
import { requestCycle } from './trigger.js';
import { CycleRunning, failedReport, PersonBusy, syncOneUser, type UserSyncDeps, type UserSyncJobData } from './user-sync.js';

/** The name of a user-sync job on a sync's operation queue: it shares the operation workers and their rate limit. */
export const USER_SYNC_JOB = 'syncUser';

/** How long a user sync waits before looking again whether the cycle it waits for is over. */
const CYCLE_WAIT_MS = 2000;
/** …and whether the other user sync of the same person is done. */
const PERSON_WAIT_MS = 300;
const USER_SYNC_ATTEMPTS = 6;

export function userSyncRunId(job: { id?: string | undefined; timestamp: number }): string {
  const stamp = new Date(job.timestamp).toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `u${stamp}-${(job.id ?? 'x').replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

/** Events for one person collapse into one job; one that arrives while that job runs gives one follow-up (it re-reads). */
function dedupId(ref: string): string {
  return `user-${encodeURIComponent(ref.toLowerCase())}`;
}

export interface FastLaneHooks {
  onUserSync?: (report: UserSyncReport) => void | Promise<void>;
  onHints?: (feed: string, hints: readonly ChangeHint[], detectedAtMs: number) => void;
  onPoll?: (status: FeedStatus) => void;
}

/** Queues a user sync for each person the hints name, and one cycle for the hints that concern more than one person. */
export async function queueHints(
  hints: readonly ChangeHint[],
  ctx: { feed: string; trigger: UserSyncTrigger; operations: Queue; cycles: Queue<CycleJobData>; sync: string; log?: Logger; detectedAtMs: number },
): Promise<{ users: number; cycle: boolean }> {
  // The earliest change of a person is the one the latency is measured from.
  const byUser = new Map<string, ChangeHint>();
  let fullCycle: ChangeHint | undefined;
  for (const hint of hints) {
    if (hint.userId === undefined) {
      fullCycle ??= hint;
      continue;
    }
    const seen = byUser.get(hint.userId);
    if (!seen || hint.atMs < seen.atMs) byUser.set(hint.userId, hint);
  }
  for (const [userId, hint] of byUser) {
    const data: UserSyncJobData = {
      ref: userId,
      trigger: ctx.trigger,
      feed: ctx.feed,
      what: hint.what,
      changedAtMs: hint.atMs,
      detectedAtMs: ctx.detectedAtMs,
    };
    await ctx.operations.add(USER_SYNC_JOB, data, {
      deduplication: { id: dedupId(userId), keepLastIfActive: true },
      attempts: USER_SYNC_ATTEMPTS,
      backoff: { type: 'exponential', delay: 2000, jitter: 0.5 },
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 86_400, count: 1000 },
    });
  }
  if (fullCycle) {
    ctx.log?.info({ feed: ctx.feed, what: fullCycle.what, reason: fullCycle.fullCycle }, 'a change concerns more than one person: a cycle is queued');
    await requestCycle(ctx.cycles, ctx.sync, 'change');
  }
  return { users: byUser.size, cycle: fullCycle !== undefined };
}

/**
 * A `syncUser` job: one person, re-read and synced. It waits (delayed, not failed) while a cycle
 * of the sync runs; an IdP or TeamViewer that cannot answer is retried with back-off, and after
 * the last attempt the report says nothing was done and why (the next cycle catches up).
 */
export async function processUserSyncJob(
  job: Job<UserSyncJobData>,
  token: string | undefined,
  deps: Omit<UserSyncDeps, 'lookupFirst'> & { hooks?: FastLaneHooks; fastLane: FastLaneStore },
): Promise<UserSyncReport | undefined> {
  const runId = userSyncRunId(job);
  const startedAtMs = Date.now();
  const log = deps.log.child({ userSync: runId });
  let report: UserSyncReport;
  try {
    report = await syncOneUser(job.data, runId, { ...deps, lookupFirst: job.attemptsMade > 0 || job.stalledCounter > 0 });
  } catch (err) {
    if (err instanceof CycleRunning || err instanceof PersonBusy) {
      await job.moveToDelayed(Date.now() + (err instanceof CycleRunning ? CYCLE_WAIT_MS : PERSON_WAIT_MS), token);
      throw new DelayedError();
    }
    const retryable = err instanceof SourceReadError || (err instanceof SyncError && (err.failureClass === 'transient' || err.failureClass === 'rate-limited'));
    const attempts = job.opts.attempts ?? 1;
    if (retryable && job.attemptsMade + 1 < attempts) {
      log.warn(
        { ref: job.data.ref, attempt: job.attemptsMade + 1, err: scrubSecrets(err instanceof Error ? err.message : String(err)) },
        'user sync failed; retrying',
      );
      throw err instanceof SyncError || err instanceof SourceReadError ? err : new Error(scrubSecrets(String(err)));
    }
    report = failedReport(job.data, runId, deps.sides.sync.name, startedAtMs, err);
    await deps.fastLane.saveReport(report);
  }
  log[report.outcome === 'failed' ? 'warn' : 'info'](
    {
      ref: report.ref,
      email: report.email,
      trigger: report.trigger,
      feed: report.feed,
      outcome: report.outcome,
      latencyMs: report.latencyMs,
      failure: report.failure,
    },
    `user sync ${report.outcome}: ${report.steps.at(-1)?.detail ?? ''}`,
  );
  await deps.hooks?.onUserSync?.(report);
  return report;
}

/**
 * One poll of a change feed: the hints become user syncs (and cycles), then the feed's position
 * moves on. A poll that fails leaves the position where it was, so the next one reads the same
 * changes; it is recorded, logged, and never fails a cycle.
 */
export async function pollFeed(
  feed: ChangeFeed,
  ctx: { operations: Queue; cycles: Queue<CycleJobData>; sync: string; log: Logger; fastLane: FastLaneStore; hooks?: FastLaneHooks; signal?: AbortSignal },
): Promise<FeedStatus> {
  const previous = (await ctx.fastLane.feeds()).find((f) => f.feed === feed.name);
  const status: FeedStatus = { feed: feed.name, lastPollAtMs: Date.now(), ok: true, hints: 0, requests: 0 };
  if (previous?.lastHintAtMs !== undefined) status.lastHintAtMs = previous.lastHintAtMs;
  try {
    const batch = await feed.poll(ctx.signal ? { signal: ctx.signal } : {});
    status.requests = batch.requests;
    status.hints = batch.hints.length;
    const detectedAtMs = Date.now();
    if (batch.hints.length > 0) {
      ctx.hooks?.onHints?.(feed.name, batch.hints, detectedAtMs);
      status.lastHintAtMs = detectedAtMs;
      const queued = await queueHints(batch.hints, { ...ctx, feed: feed.name, trigger: 'event', detectedAtMs });
      ctx.log.info({ feed: feed.name, hints: batch.hints.length, users: queued.users, cycle: queued.cycle }, 'changes noticed');
    }
    await batch.commit();
  } catch (err) {
    status.ok = false;
    status.error = scrubSecrets(err instanceof Error ? err.message : String(err));
    if (previous?.ok !== false)
      ctx.log.warn({ feed: feed.name, err: status.error }, 'change feed poll failed; the cycle still runs, and the next poll reads the same changes');
  }
  if (status.ok && previous?.ok === false) ctx.log.info({ feed: feed.name }, 'change feed answers again');
  await ctx.fastLane.recordFeed(status);
  ctx.hooks?.onPoll?.(status);
  return status;
}

/** A pushed change (hook): answered as the IdP expects, its hints queued like a poll's. */
export async function receiveHook(
  receiver: { name: string; receive(req: HookRequest): Promise<{ answer: HookAnswer; hints: ChangeHint[] }> },
  req: HookRequest,
  ctx: { operations: Queue; cycles: Queue<CycleJobData>; sync: string; log: Logger; hooks?: FastLaneHooks },
): Promise<HookAnswer> {
  const { answer, hints } = await receiver.receive(req);
  if (hints.length > 0) {
    const detectedAtMs = Date.now();
    ctx.hooks?.onHints?.(`${receiver.name}-hook`, hints, detectedAtMs);
    await queueHints(hints, { ...ctx, feed: `${receiver.name}-hook`, trigger: 'hook', detectedAtMs });
  }
  return answer;
}

/**
 * `POST /syncs/{name}/users/{id}/sync`: queues a user sync on the operation queue (it runs on the
 * daemon's workers, behind any cycle) and waits up to `waitMs` for its report.
 */
export async function requestUserSync(
  operations: Queue,
  ref: string,
  opts: { dryRun?: boolean; waitMs: number },
): Promise<{ jobId: string; report?: UserSyncReport }> {
  const data: UserSyncJobData = { ref, trigger: 'manual', ...(opts.dryRun ? { dryRun: true } : {}) };
  const job = await operations.add(USER_SYNC_JOB, data, {
    attempts: 3,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 3600 },
    removeOnFail: { age: 86_400 },
  });
  const jobId = job.id ?? '';
  const deadline = Date.now() + opts.waitMs;
  while (Date.now() < deadline) {
    const current = await operations.getJob(jobId);
    if (current && (await current.isCompleted())) return { jobId, report: current.returnvalue as UserSyncReport };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { jobId };
}
