import { scrubSecrets } from '../net/secrets.js';
import { DelayedError, RateLimitError, Worker, type Job, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import { SyncError } from '../model/failure.js';
import type { UserOperation } from '../plan/types.js';
import type { GroupOperation } from '../plan/group-types.js';
import { applyGroupOperation, type GroupOperationOutcome } from './apply-group.js';
import { applyUserOperation, type OperationOutcome } from './apply.js';
import type { CycleStore } from '../store/cycle-store.js';
import type { SyncSides } from './prepare.js';
import type { RuntimeOptions } from './queues.js';
import type { FastLaneStore } from '../store/fast-lane.js';
import type { OperationResult } from '../plan/report.js';
import { withRequestSlots, type RequestSlots } from './request-slots.js';
import { describePause, type RateLimitPause, type RateLimitPauseStore } from '../store/rate-limit-pause.js';
import type { OutcomeLedger } from './outcome-ledger.js';

export interface OperationJobData {
  cycleId: string;
  key: string;
  op: UserOperation | GroupOperation;
  /** Set when an attempt ended in an answer that may hide a write (5xx or timeout on a create). */
  maybeApplied?: boolean;
  /** Added by a resumed cycle: an earlier job of this operation may have recorded its outcome and been removed. */
  resumed?: boolean;
}

/** A job of several operations of one cycle (see processOperationBatch). */
export interface OperationBatchJobData {
  cycleId: string;
  batch: { key: string; op: UserOperation | GroupOperation }[];
  /** Keys of the operations whose attempt ended in an answer that may hide a write. */
  maybeApplied?: string[];
  resumed?: boolean;
}

export const OPERATION_BATCH_JOB = 'operations';

export function isBatchJob(data: OperationJobData | OperationBatchJobData): data is OperationBatchJobData {
  return 'batch' in data;
}

function isGroupOperation(op: UserOperation | GroupOperation): op is GroupOperation {
  return 'sourceGroupId' in op;
}

/** Who an operation is about, for logs and reports. */
function subjectOf(op: UserOperation | GroupOperation): { object: string; label: string } {
  if (isGroupOperation(op)) return { object: op.sourceGroupId, label: 'displayName' in op ? op.displayName : `group ${op.tvGroupId}` };
  return { object: op.kind === 'createUser' ? op.sourceId : op.tvUserId, label: op.email };
}

/**
 * The cycle's stop flag, read at most every `maxAgeMs` per cycle: one Redis round trip saved per
 * operation, at the price of a stop taking effect that much later.
 */
export class StopFlagCache {
  private readonly cache = new Map<string, { at: number; value: Promise<string | undefined> }>();
  constructor(
    private readonly store: CycleStore,
    private readonly maxAgeMs = 250,
  ) {}

  get(cycleId: string): Promise<string | undefined> {
    const now = Date.now();
    const hit = this.cache.get(cycleId);
    if (hit && now - hit.at < this.maxAgeMs) return hit.value;
    if (this.cache.size > 100) this.cache.clear();
    const value = this.store.stopped(cycleId);
    this.cache.set(cycleId, { at: now, value });
    return value;
  }
}

export interface OperationDeps {
  sides: SyncSides;
  store: CycleStore;
  stopFlags: StopFlagCache;
  queue: Queue;
  options: RuntimeOptions;
  log: Logger;
  /** Where outcomes (and the links creates made) are written, several operations' at a time. */
  outcomes: OutcomeLedger;
  /** Where a pause TeamViewer asked for is recorded, for status and metrics. */
  pauses?: RateLimitPauseStore;
  onPause?: (pause: RateLimitPause) => void;
  /** Where a cycle's deactivations are counted into the sliding window the fast lane's threshold reads. */
  fastLane?: FastLaneStore;
  /** The rate limit's budget, which a batch job's requests after its first take a slot of. */
  requestSlots?: RequestSlots;
  /** The process is shutting down: a batch hands back the operations it has not begun. */
  closing?: () => boolean;
}

type Outcome = OperationOutcome | GroupOperationOutcome | { status: 'cancelled'; message: string };

export function toResult(data: Pick<OperationJobData, 'key' | 'op'>, attempts: number, outcome: Outcome): OperationResult {
  const { op } = data;
  let result: OperationResult;
  if (isGroupOperation(op)) {
    const after = op.kind === 'createGroup' || op.kind === 'renameGroup' ? { displayName: op.displayName } : {};
    result = {
      key: data.key,
      kind: op.kind,
      status: outcome.status,
      message: outcome.message,
      attempts,
      sourceId: op.sourceGroupId,
      group: 'displayName' in op ? op.displayName : op.tvGroupId,
      sourceGroupId: op.sourceGroupId,
      after,
    };
    if (op.kind === 'renameGroup') result.before = { displayName: op.before };
    const tvGroupId = 'tvGroupId' in outcome && outcome.tvGroupId !== undefined ? outcome.tvGroupId : 'tvGroupId' in op ? op.tvGroupId : undefined;
    if (tvGroupId !== undefined) result.tvGroupId = tvGroupId;
    if ('members' in op && op.members) {
      // A create that adopted an existing group added only the members it lacked.
      const added = 'members' in outcome && outcome.members ? new Set(outcome.members) : undefined;
      result.members = added ? op.members.filter((m) => added.has(m.tvUserId)) : op.members;
    }
  } else {
    const after = op.kind === 'createUser' ? { displayName: op.user.displayName, active: op.user.active } : { ...op.changes };
    result = { key: data.key, kind: op.kind, status: outcome.status, message: outcome.message, attempts, sourceId: op.sourceId, email: op.email, after };
    if (op.kind !== 'createUser') result.before = op.before;
    if ('tvUserId' in outcome && outcome.tvUserId !== undefined) result.tvUserId = outcome.tvUserId;
  }
  if ('adopted' in outcome && outcome.adopted) result.adopted = true;
  if ('failureClass' in outcome) result.failureClass = outcome.failureClass;
  return result;
}

/** One operation's attempt, from a job of its own or from a batch job. */
interface OperationAttempt {
  cycleId: string;
  key: string;
  op: UserOperation | GroupOperation;
  attempts: number;
  /** An earlier attempt's answer may hide a write: look the user up before creating. */
  lookupFirst: boolean;
  /** Its outcome may be recorded already (a re-delivery, a resumed cycle). */
  mayBeDone: boolean;
  /** Already marked as one whose write may have happened. */
  maybeApplied: boolean;
  markMaybeApplied: () => Promise<unknown>;
  client: SyncSides['client'];
  /** Where the writes of recorded outcomes go: the job waits for them all before it completes. */
  written: OutcomeWrite[];
}

/** The write of one operation's outcome, under way in the OutcomeLedger. */
interface OutcomeWrite {
  key: string;
  write: Promise<void>;
}

/**
 * Writes the job's outcomes now, without waiting for others to join them, and waits for every one.
 * An outcome whose write failed leaves its operation to run again, and its create may have gone
 * through: those operations are marked maybe-applied first, so the retry looks before it creates.
 * (Where the mark cannot be written either, Redis is gone: the job stalls, and a stalled job looks
 * up every create.) Returns the write's error, if any.
 */
async function settle(deps: OperationDeps, written: readonly OutcomeWrite[], markMaybeApplied: (keys: string[]) => Promise<unknown>): Promise<unknown> {
  if (written.length === 0) return undefined;
  deps.outcomes.flush();
  const settled = await Promise.allSettled(written.map((w) => w.write));
  const failed = written.filter((_, i) => settled[i]?.status === 'rejected').map((w) => w.key);
  if (failed.length === 0) return undefined;
  await markMaybeApplied(failed).catch(() => undefined);
  return settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')?.reason;
}

/**
 * What a job throws once its outcomes are settled: a 429 or a hand-back keeps its meaning (the
 * job goes back unspent, its failed writes marked); otherwise a failed write fails the job.
 */
function afterSettle(failure: { err: unknown } | undefined, writeError: unknown): unknown {
  if (failure && (failure.err instanceof RateLimitError || failure.err instanceof DelayedError || writeError === undefined)) return failure.err;
  return writeError;
}

/**
 * One planned operation. Re-delivery is safe: a recorded outcome is never redone, and an attempt
 * after one whose answer may hide a write (a 5xx or a timeout on a create, a worker that died
 * mid-request) looks the user up before creating. A 429 proves nothing was written: the write is
 * simply sent again, so a rate-limited sync does not spend its budget on look-ups.
 */
export async function processOperation(job: Job<OperationJobData>, deps: OperationDeps): Promise<OperationResult | undefined> {
  const { cycleId, key, op } = job.data;
  const redelivered = job.attemptsMade > 0 || job.attemptsStarted > 1;
  const markMaybeApplied = () => job.updateData({ ...job.data, maybeApplied: true });
  const written: OutcomeWrite[] = [];
  let result: OperationResult | undefined;
  let failure: { err: unknown } | undefined;
  try {
    result = await runOperation(
      {
        cycleId,
        key,
        op,
        attempts: job.attemptsMade + 1,
        // A stalled job's worker died (or was cut off) during an attempt whose answer nobody saw.
        lookupFirst: job.data.maybeApplied === true || job.stalledCounter > 0,
        // Finished jobs are removed, so only a re-delivery or a resumed cycle's job can find its
        // outcome recorded; a fresh plan's first delivery saves the round trip.
        mayBeDone: redelivered || job.data.resumed === true,
        maybeApplied: job.data.maybeApplied === true,
        markMaybeApplied,
        client: deps.sides.client,
        written,
      },
      deps,
    );
  } catch (err) {
    failure = { err };
  }
  const thrown = afterSettle(failure, await settle(deps, written, markMaybeApplied));
  if (thrown !== undefined) throw thrown;
  return result;
}

/**
 * Several planned operations in one job: the queue's own bookkeeping (a job added, moved to
 * active, moved to finished, each a script of tens of Redis commands) is paid once per batch.
 * Each operation keeps what a job of its own has: its outcome recorded before the job completes
 * and looked up on any re-delivery (so nothing is done twice), its attempts (a failed one makes
 * the batch retry, which skips the operations that have an outcome), its maybe-applied mark, and
 * a slot of the rate limit for every request after the batch's first.
 */
export async function processOperationBatch(job: Job<OperationBatchJobData>, deps: OperationDeps, token?: string, signal?: AbortSignal): Promise<void> {
  const { cycleId } = job.data;
  const redelivered = job.attemptsMade > 0 || job.attemptsStarted > 1;
  const stalled = job.stalledCounter > 0;
  const maybeApplied = new Set(job.data.maybeApplied ?? []);
  let left = job.data.batch.length;
  // One request per operation as a rule; look-ups and adoptions take slots of their own when they come.
  const client = deps.requestSlots ? withRequestSlots(deps.sides.client, deps.requestSlots, () => left) : deps.sides.client;
  let retry: unknown;
  let started = false;
  const markMaybeApplied = (keys: string[]) => {
    for (const key of keys) maybeApplied.add(key);
    return job.updateData({ ...job.data, maybeApplied: [...maybeApplied] });
  };
  // Outcomes are written a few operations at a time (see OutcomeLedger); the job ends only once they are in Redis.
  const written: OutcomeWrite[] = [];
  let failure: { err: unknown } | undefined;
  try {
    for (const { key, op } of job.data.batch) {
      if (started && (signal?.aborted || deps.closing?.())) {
        // Shutting down: the operations not begun go back to the queue, the recorded ones are skipped when it returns.
        const writeError = await settle(deps, written.splice(0), markMaybeApplied);
        if (writeError !== undefined) throw writeError;
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      started = true;
      try {
        await runOperation(
          {
            cycleId,
            key,
            op,
            attempts: job.attemptsMade + 1,
            // A stalled batch may have died during any of its operations: each without an outcome looks first.
            lookupFirst: maybeApplied.has(key) || stalled,
            mayBeDone: redelivered || stalled || job.data.resumed === true,
            maybeApplied: maybeApplied.has(key),
            markMaybeApplied: () => markMaybeApplied([key]),
            client,
            written,
          },
          deps,
        );
      } catch (err) {
        // A 429 pauses the whole queue: the batch goes back as it is, its attempts unspent.
        if (err instanceof RateLimitError) throw err;
        // The others still run; the batch is retried (with backoff) for this one afterwards.
        retry ??= err;
      } finally {
        left--;
      }
    }
  } catch (err) {
    failure = { err };
  }
  const thrown = afterSettle(failure, await settle(deps, written, markMaybeApplied));
  if (thrown !== undefined) throw thrown;
  if (retry !== undefined) throw retry;
}

async function runOperation(attempt: OperationAttempt, deps: OperationDeps): Promise<OperationResult | undefined> {
  const { cycleId, key, op, attempts, lookupFirst } = attempt;
  // A create's link, written with the outcome.
  const deferredLinks: [string, string][] = [];
  let marked = attempt.maybeApplied;
  const markOnce = async () => {
    if (marked) return;
    marked = true;
    await attempt.markMaybeApplied();
  };
  const record = (outcome: Outcome) => {
    const result = toResult(attempt, attempts, outcome);
    // The outcome, the link it follows and its observers (provisioning log, metrics) are written with other operations' outcomes.
    const written = deps.outcomes.add({ cycleId, result, links: deferredLinks });
    // Waited for when the job ends; a failure seen before then is not an unhandled one.
    written.catch(() => undefined);
    attempt.written.push({ key, write: written });
    deps.log[result.status === 'failed' ? 'warn' : 'info'](
      {
        cycle: cycleId,
        object: subjectOf(op).object,
        subject: subjectOf(op).label,
        action: op.kind,
        outcome: result.status,
        reason: result.failureClass ?? ('reason' in op ? op.reason : undefined),
        attempts,
      },
      result.message,
    );
    return result;
  };

  const [stopped, done] = attempt.mayBeDone ? await deps.store.stoppedOrDone(cycleId, key) : [await deps.stopFlags.get(cycleId), false];
  if (done) return undefined;
  if (stopped) return record({ status: 'cancelled', message: `${op.kind} ${subjectOf(op).label}: not run, the cycle stopped (${stopped})` });

  try {
    const outcome = isGroupOperation(op)
      ? await applyGroupOperation(op, { client: attempt.client, state: deps.sides.state, batchSize: deps.sides.sync.groups.batchSize })
      : await applyUserOperation(op, { client: attempt.client, state: deps.sides.state, nowMs: deps.sides.now, lookupFirst, deferredLinks });
    const result = record(outcome);
    if (op.kind === 'deactivateUser' && outcome.status === 'applied')
      await deps.fastLane?.reserve('deactivations', `${cycleId}:${op.tvUserId}`, Date.now(), deps.sides.sync.fastLane.window);
    return result;
  } catch (err) {
    // A create went through before this failure (its link is waiting to be written): a retry must find the user, not create another.
    if (deferredLinks.length > 0) await markOnce();
    if (err instanceof SyncError && err.failureClass === 'rate-limited') {
      // The whole queue waits, on every replica, and the job keeps its attempts. The wait is
      // capped: the limiter lives in Redis, so an absurd Retry-After would freeze the sync for days.
      const askedMs = err.retryAfterMs ?? deps.options.rateLimitFallbackMs;
      const appliedMs = Math.min(askedMs, deps.options.maxRetryAfterMs);
      await deps.queue.rateLimit(appliedMs);
      const now = Date.now();
      const pause: RateLimitPause = { untilMs: now + appliedMs, askedMs, appliedMs, atMs: now };
      deps.log[askedMs > appliedMs ? 'warn' : 'info'](
        { cycle: cycleId, action: op.kind, subject: subjectOf(op).label, askedMs, appliedMs },
        describePause(pause),
      );
      deps.onPause?.(pause);
      await deps.pauses?.record(pause);
      throw Worker.RateLimitError();
    }
    if (err instanceof SyncError && err.failureClass === 'unauthorised') {
      await deps.store.stop(cycleId, `TeamViewer refused the token: ${err.message}`);
      return record({ status: 'failed', failureClass: 'unauthorised', message: `${op.kind} ${subjectOf(op).label}: ${err.message}` });
    }
    // BullMQ keeps a failed attempt's message and stack in Redis: only scrubbed text goes there.
    const message = scrubSecrets(err instanceof Error ? err.message : String(err));
    if (err instanceof SyncError && err.maybeApplied) await markOnce();
    if (attempts < deps.options.opAttempts) throw err instanceof SyncError ? err : new Error(message);
    return record({
      status: 'failed',
      failureClass: err instanceof SyncError ? err.failureClass : 'transient',
      message: `${op.kind} ${subjectOf(op).label}: gave up after ${attempts} attempts: ${message}`,
    });
  }
}
