import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, type Job, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import { SyncError } from '../model/failure.js';
import type { Plan } from '../plan/types.js';
import { emailKey } from '../plan/mapping.js';
import type { SyncState } from '../store/sync-state.js';
import { SourceReadError } from '../connectors/source.js';
import type { CycleStore } from '../store/cycle-store.js';
import { OPERATION_BATCH_JOB, type OperationBatchJobData, type OperationJobData } from './operation-worker.js';
import { groupPhaseInput } from '../plan/group-input.js';
import { applyGroupLinkChanges, planGroups, readAndPlan, type PreparedPlan, type SyncSides } from './prepare.js';
import type { GroupPhaseRead } from '../plan/group-input.js';
import type { GroupPhase, GroupPlan } from '../plan/group-types.js';
import { isQuarantined, recordHealth } from './health.js';
import type { HealthStore } from '../store/health.js';
import type { ApprovalStore } from '../store/approvals.js';
import type { FastLaneStore } from '../store/fast-lane.js';
import { isConnectionError } from './redis.js';
import { cycleIdOf, operationBatchSize, operationJobId, type CycleJobData, type RuntimeOptions } from './queues.js';
import { buildReport, operationKey, type CycleReport, type OperationResult } from '../plan/report.js';
import type { RolePhase } from '../plan/roles.js';
import { applyRoles, planRoles } from './roles.js';
import { recordsFromResults } from '../plan/drift.js';
import { checkSso } from './company.js';
import { ssoNotices } from '../plan/sso.js';

export interface CycleDeps {
  sides: SyncSides;
  store: CycleStore;
  operations: Queue;
  options: RuntimeOptions;
  log: Logger;
  /** Deactivations a person approved, by TeamViewer user id. */
  approved?: () => Promise<ReadonlySet<string>>;
  onReport?: (report: CycleReport) => void | Promise<void>;
  onPlanned?: (cycleId: string, plan: Plan) => void | Promise<void>;
  /** Called once per cycle with its group plan, after it is persisted (the provisioning log records the group skips). */
  onGroupsPlanned?: (cycleId: string, plan: GroupPlan) => void | Promise<void>;
  /** Group deletions a person approved, by TeamViewer group id. */
  approvedGroupDeletions?: () => Promise<ReadonlySet<string>>;
  health?: HealthStore;
  approvals?: ApprovalStore;
  /** The fast lane's interlock: user syncs wait while a cycle runs, and the cycle waits for those already applying. */
  fastLane?: FastLaneStore;
  /** Each outcome the cycle applies itself (role assignments), for the provisioning log and metrics. */
  onResult?: (result: OperationResult, cycleId: string) => void | Promise<void>;
}

const ENQUEUE_CHUNK = 500;

/** The cycle's own record vanished: Redis restarted empty or was flushed. */
class RedisDataLost extends Error {}

function failureOf(err: unknown): NonNullable<CycleReport['failure']> {
  if (err instanceof RedisDataLost) return { failureClass: 'transient', message: err.message };
  if (err instanceof SourceReadError) return { failureClass: 'source-read', message: `the IdP read failed, so nothing was deactivated: ${err.message}` };
  if (err instanceof SyncError) return { failureClass: err.failureClass, message: `TeamViewer: ${err.message}` };
  return { failureClass: 'internal', message: err instanceof Error ? err.message : String(err) };
}

/**
 * One sync cycle: read both sides, plan, persist the plan, hand every operation to the operation
 * workers and wait for all of them, then report. A re-delivered cycle (its worker died) resumes
 * from the persisted plan and re-enqueues only the operations with no recorded outcome.
 */
export async function processCycle(job: Job<CycleJobData>, deps: CycleDeps, token?: string, signal?: AbortSignal): Promise<CycleReport | undefined> {
  const interlock = deps.fastLane ? await holdFastLane(deps.fastLane, deps.log, signal) : undefined;
  try {
    return await runCycle(job, deps, token, signal);
  } finally {
    await interlock?.release();
  }
}

/** How long the cycle's mark lives unless renewed: a dead worker's mark lapses this soon. */
const INTERLOCK_TTL_MS = 30_000;
/** How long a cycle waits for user syncs already applying; a claim of a dead worker lapses before. */
const INTERLOCK_WAIT_MS = 10 * 60_000;

async function holdFastLane(fastLane: FastLaneStore, log: Logger, signal: AbortSignal | undefined): Promise<{ release(): Promise<void> }> {
  await fastLane.markCycleRunning(INTERLOCK_TTL_MS);
  const renew = setInterval(() => {
    fastLane.markCycleRunning(INTERLOCK_TTL_MS).catch(() => {
      // Redis away: the mark lapses, and the outage is logged elsewhere.
    });
  }, INTERLOCK_TTL_MS / 3);
  renew.unref();
  const release = async () => {
    clearInterval(renew);
    await fastLane.clearCycleRunning().catch(() => undefined);
  };
  try {
    // Live user syncs renew their claims; a dead worker's claim lapses within CLAIM_TTL.
    const deadline = Date.now() + INTERLOCK_WAIT_MS;
    let logged = false;
    while (Date.now() < deadline && !signal?.aborted && (await fastLane.applying(Date.now())) > 0) {
      if (!logged) log.info('waiting for user syncs that are applying before the cycle reads');
      logged = true;
      await sleep(200, undefined, signal ? { signal } : {}).catch(() => undefined);
    }
  } catch (err) {
    // The mark must not outlive a cycle that never ran: user syncs would wait for ever.
    await release();
    throw err;
  }
  return { release };
}

/** What the fast lane holds, and the deactivations made within its window: the cycle's plan respects both. */
async function fastLaneFacts(fastLane: FastLaneStore, windowMs: number): Promise<{ held: ReadonlySet<string>; recentDeactivations: number }> {
  const [held, recentDeactivations] = await Promise.all([fastLane.held(), fastLane.removalsWithin('deactivations', Date.now(), windowMs)]);
  return { held: new Set(held.filter((h) => h.kind !== 'recycled-address').map((h) => h.tvUserId)), recentDeactivations };
}

/** A fast-lane hold whose person the cycle no longer deactivates (back in scope, enabled again) is void. */
async function releaseVoidHolds(fastLane: FastLaneStore, held: ReadonlySet<string>, plan: Plan): Promise<void> {
  const wanted = new Set<string>();
  for (const op of [...plan.held, ...plan.operations]) if (op.kind === 'deactivateUser') wanted.add(op.tvUserId);
  for (const item of plan.skipped) if (item.tvUserId !== undefined) wanted.add(item.tvUserId);
  const void_ = [...held].filter((id) => !wanted.has(id));
  if (void_.length) await fastLane.releaseHeldDeactivations(void_);
}

async function runCycle(job: Job<CycleJobData>, deps: CycleDeps, token?: string, signal?: AbortSignal): Promise<CycleReport | undefined> {
  const cycleId = cycleIdOf(job);
  const log = deps.log.child({ cycle: cycleId });
  const startedAtMs = Date.now();
  if (job.data.trigger === 'schedule' && deps.health) {
    const health = await deps.health.load();
    if (isQuarantined(health, startedAtMs)) {
      log.warn(
        { until: new Date(health.quarantinedUntil ?? 0).toISOString(), reason: health.reason },
        'sync quarantined: scheduled cycle skipped (a successful sync-now lifts it)',
      );
      return undefined;
    }
  }
  const stored = await deps.store.begin(cycleId, job.data.trigger, startedAtMs);
  if (stored.status === 'done') {
    const report = await deps.store.report(cycleId);
    if (report) return report;
  }

  // Operations of an earlier attempt of this cycle may have finished: its jobs are marked so that the workers look first.
  const resumed = stored.plan !== undefined;
  let plan: Plan | undefined = stored.plan;
  let directoryGroups: GroupPhaseRead | undefined = stored.directoryGroups;
  let groupPhase: GroupPhase | undefined = stored.groupPhase;
  let rolePhase: RolePhase | undefined;
  // The links this attempt planned with: the group phase then reads again only those the user phase touched.
  let linksBefore: Map<string, string> | undefined;
  const finish = async (extra: { failure?: CycleReport['failure'] }) => {
    // Operations still queued must not run after a later cycle planned from fresher data.
    if (extra.failure) await deps.store.stop(cycleId, `the cycle ended: ${extra.failure.message}`);
    const results = await deps.store.results(cycleId);
    await recordWrites(deps, results, log);
    await deps.approvals?.consumed([...approvedUsers], [...approvedGroups], [...approvedMemberRemovals]);
    await deps.approvals?.consumedRecycled([...approvedRecycled]);
    const report = buildReport({
      sync: deps.sides.sync.name,
      cycleId,
      trigger: job.data.trigger,
      ...(job.data.requestedAt !== undefined ? { requestedAt: job.data.requestedAt } : {}),
      startedAtMs: stored.startedAtMs,
      finishedAtMs: Date.now(),
      ...(plan ? { plan } : {}),
      ...(groupPhase ? { groups: groupPhase } : {}),
      ...(rolePhase ? { roles: rolePhase } : {}),
      results,
      ...extra,
    });
    // Health and the observers (metrics, alerts) first: whoever sees the report (sync-now --wait,
    // run --once, which then closes the alerts) also sees the quarantine, metrics and alert it caused.
    await afterCycle(report, deps);
    try {
      await deps.onReport?.(report);
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'an observer of the cycle report failed');
    }
    await deps.store.finish(cycleId, report, results);
    log[report.outcome === 'failed' ? 'error' : 'info'](
      { outcome: report.outcome, durationMs: report.durationMs, operations: report.operations, failure: report.failure },
      'cycle finished',
    );
    return report;
  };

  // Approvals are used once: by the plan they were read into (whether or not still needed).
  const approvedUsers = new Set<string>();
  const approvedGroups = new Set<string>();
  const approvedMemberRemovals = new Set<string>();
  const approvedRecycled = new Set<string>();
  try {
    if (plan && directoryGroups && Date.now() - stored.startedAtMs > deps.sides.sync.schedule.every) {
      // A plan that waited longer than a cycle (workers were down) is stale: plan afresh instead.
      return await finish({
        failure: {
          failureClass: 'transient',
          message: `this cycle was planned at ${new Date(stored.startedAtMs).toISOString()} and its workers stopped; too old to apply, the next cycle plans again`,
        },
      });
    }
    if (!plan || !directoryGroups) {
      const approved = deps.approved ? await deps.approved() : new Set<string>();
      const fastLane = deps.fastLane ? await fastLaneFacts(deps.fastLane, deps.sides.sync.fastLane.window) : undefined;
      const recycled = (await deps.approvals?.recycled()) ?? new Set<string>();
      const prepared = await readAndPlan(deps.sides, {
        ...(approved.size ? { approved } : {}),
        ...(recycled.size ? { approvedRecycled: recycled } : {}),
        ...(signal ? { signal } : {}),
        ...(fastLane ? { fastLane } : {}),
        recordSeen: true,
      });
      if (deps.fastLane && fastLane?.held.size) await releaseVoidHolds(deps.fastLane, fastLane.held, prepared.plan);
      for (const id of approved) approvedUsers.add(id);
      for (const id of recycled) approvedRecycled.add(id);
      plan = prepared.plan;
      linksBefore = prepared.links;
      const sso = await checkSso(deps.sides, signal);
      if (sso) plan = { ...plan, sso, notices: [...plan.notices, ...ssoNotices(sso)] };
      directoryGroups = groupPhaseInput(prepared.directory, { emails: deps.sides.sync.groups.enabled });
      await deps.sides.state.applyLinkChanges(plan.links);
      await clearOutsideRecordsInCompany(deps.sides.state, prepared);
      await deps.store.savePlan(cycleId, plan, directoryGroups);
      log.info({ trigger: job.data.trigger, summary: plan.summary, notices: plan.notices }, 'cycle planned');
      await deps.onPlanned?.(cycleId, plan);
    } else {
      log.warn('resuming a cycle whose worker stopped after planning');
    }

    // Users first, so that the groups' members exist.
    await enqueueRemaining(
      cycleId,
      plan.operations.map((op) => ({ op, key: operationKey(op) })),
      deps,
      resumed,
    );
    if ((await waitForOperations(cycleId, plan.operations.length, deps, job, token, signal)) === 'timed-out') return finish({ failure: timedOut(deps) });
    const stoppedAfterUsers = await deps.store.stopped(cycleId);
    if (stoppedAfterUsers) return finish({ failure: { failureClass: 'unauthorised', message: stoppedAfterUsers } });

    if (deps.sides.sync.groups.enabled) {
      if (!groupPhase) {
        const results = await deps.store.results(cycleId);
        try {
          const approved = deps.approvedGroupDeletions ? await deps.approvedGroupDeletions() : new Set<string>();
          const approvedMembers = (await deps.approvals?.memberRemovals()) ?? new Map<string, number>();
          const phase = await planGroups(
            deps.sides,
            directoryGroups,
            { plan, results },
            {
              ...(approved.size ? { approvedDeletions: approved } : {}),
              ...(approvedMembers.size ? { approvedMemberRemovals: approvedMembers } : {}),
              ...(signal ? { signal } : {}),
              ...(linksBefore ? { linksBefore } : {}),
              recordSeen: true,
            },
          );
          linksBefore = undefined;
          for (const id of approved) approvedGroups.add(id);
          for (const id of approvedMembers.keys()) approvedMemberRemovals.add(id);
          groupPhase = phase;
          if (phase.status === 'synced') await applyGroupLinkChanges(deps.sides.state, phase.plan);
          else log.warn({ detail: phase.detail }, 'group sync unavailable');
        } catch (err) {
          // The users' part is done; a failed group read fails the groups, not the cycle.
          if (err instanceof DelayedError || signal?.aborted || (err instanceof SyncError && err.failureClass === 'unauthorised')) throw err;
          groupPhase = { status: 'failed', detail: failureOf(err).message };
          log.error({ detail: groupPhase.detail }, 'group phase failed');
        }
        await deps.store.saveGroupPhase(cycleId, groupPhase);
        if (groupPhase.status === 'synced') await deps.onGroupsPlanned?.(cycleId, groupPhase.plan);
      }
      if (groupPhase.status === 'synced') {
        const groupOps = groupPhase.plan.operations;
        await enqueueRemaining(
          cycleId,
          groupOps.map((op) => ({ op, key: op.key })),
          deps,
          resumed,
        );
        if ((await waitForOperations(cycleId, plan.operations.length + groupOps.length, deps, job, token, signal)) === 'timed-out')
          return finish({ failure: timedOut(deps) });
      }
    }

    // Roles last: they go to the user groups and accounts the phases above made.
    if (deps.sides.sync.roles.enabled && !(await deps.store.stopped(cycleId))) {
      rolePhase = await planRoles(deps.sides, { plan, directoryGroups, groupPhase, ...(signal ? { signal } : {}) });
      if (rolePhase?.status === 'synced') {
        log.info({ summary: rolePhase.plan.summary, notices: rolePhase.plan.notices }, 'roles planned');
        await applyRoles(deps.sides, rolePhase.plan, async (result) => {
          await deps.store.recordResult(cycleId, result);
          await deps.onResult?.(result, cycleId);
        });
      } else if (rolePhase) {
        log[rolePhase.status === 'failed' ? 'error' : 'warn'](rolePhase.detail);
      }
    }
  } catch (err) {
    if (err instanceof DelayedError) throw err;
    if (signal?.aborted) {
      // Shutting down in the middle of a read: hand the cycle back, it plans again elsewhere.
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    return finish({ failure: failureOf(err) });
  }
  const stopped = await deps.store.stopped(cycleId);
  return finish(stopped ? { failure: { failureClass: 'unauthorised', message: stopped } } : {});
}

/**
 * An address recorded as owned outside the company stops being so once a well-formed TeamViewer
 * list shows it in the company (its owner joined, or an admin moved it): the record goes, so
 * neither the plan nor the report keeps calling it an outsider.
 */
async function clearOutsideRecordsInCompany(state: SyncState, { outsideCompany, teamviewer }: PreparedPlan): Promise<void> {
  if (outsideCompany.size === 0) return;
  const inCompany = new Set(teamviewer.map((tv) => emailKey(tv.email || tv.userName)));
  for (const key of outsideCompany.keys()) if (inCompany.has(key)) await state.clearOutsideCompany(key);
}

/** What this cycle's writes left objects in, for the next read to check; not knowing only skips a check. */
async function recordWrites(deps: CycleDeps, results: readonly OperationResult[], log: Logger): Promise<void> {
  if (!deps.sides.written) return;
  try {
    await deps.sides.written.apply(recordsFromResults(results));
  } catch (err) {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not record what the writes left; the next cycle does not check them');
  }
}

/** Health (quarantine) follows each finished cycle. */
async function afterCycle(report: CycleReport, deps: CycleDeps): Promise<void> {
  const health = deps.health && (await recordHealth(deps.health, report, Date.now()));
  if (health?.quarantinedUntil && health.consecutiveFailures > 0) {
    deps.log.error(
      { until: new Date(health.quarantinedUntil).toISOString(), reason: health.reason },
      'sync quarantined: scheduled cycles back off until a manual cycle succeeds',
    );
  }
}

function timedOut(deps: CycleDeps): NonNullable<CycleReport['failure']> {
  return {
    failureClass: 'transient',
    message: `operations did not finish within ${Math.round(deps.options.cycleTimeoutMs / 60_000)} minutes; the rest are left to the next cycle`,
  };
}

/**
 * Hands the operations without a recorded outcome to the workers. A finished job is removed at
 * once: its outcome, recorded before the job completes, is what keeps it from running twice. A
 * resumed cycle reads the outcomes before it re-adds, and an operation finishing in between is
 * caught by its job's `resumed` mark, which has the worker look for the outcome first. A long list
 * goes several operations to a job (operationBatchSize); a batch's id is that of its first
 * operation in the plan, so re-adding a batch still queued or running is a no-op too.
 */
async function enqueueRemaining(cycleId: string, operations: { op: OperationJobData['op']; key: string }[], deps: CycleDeps, resumed: boolean): Promise<void> {
  if (operations.length === 0) return;
  const done = await deps.store.resultKeys(cycleId);
  const jobOptions = {
    attempts: deps.options.opAttempts,
    backoff: { type: 'exponential', delay: deps.options.opBackoffMs, jitter: 0.5 },
    removeOnComplete: true,
    // Kept a day: a job that failed without an outcome is what a post-mortem looks at.
    removeOnFail: { age: 86_400 },
  };
  const size = operationBatchSize(operations.length, deps.options);
  const jobs = [];
  for (let i = 0; i < operations.length; i += size) {
    const whole = operations.slice(i, i + size);
    const batch = whole.filter(({ key }) => !done.has(key));
    const first = whole[0];
    if (!first || batch.length === 0) continue;
    const single = size === 1 ? batch[0] : undefined;
    jobs.push(
      single
        ? {
            name: single.op.kind,
            data: { cycleId, key: single.key, op: single.op, ...(resumed ? { resumed: true } : {}) } satisfies OperationJobData,
            // Deterministic: re-adding an operation that is still queued or running is a no-op.
            opts: { ...jobOptions, jobId: operationJobId(cycleId, single.key) },
          }
        : {
            name: OPERATION_BATCH_JOB,
            data: { cycleId, batch, ...(resumed ? { resumed: true } : {}) } satisfies OperationBatchJobData,
            opts: { ...jobOptions, jobId: operationJobId(cycleId, `batch ${first.key}`) },
          },
    );
  }
  for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) await deps.operations.addBulk(jobs.slice(i, i + ENQUEUE_CHUNK));
}

async function waitForOperations(
  cycleId: string,
  total: number,
  deps: CycleDeps,
  job: Job,
  token: string | undefined,
  signal: AbortSignal | undefined,
): Promise<'done' | 'timed-out'> {
  const deadline = Date.now() + deps.options.cycleTimeoutMs;
  const poll = new ProgressPoll(deps.options.pollMs, total);
  for (;;) {
    // While Redis is unreachable the operations cannot record outcomes either: keep waiting.
    const progress = await deps.store.progress(cycleId).catch((err: unknown) => {
      if (isConnectionError(err)) return undefined;
      throw err;
    });
    if (progress && !progress.present) {
      // Redis came back empty: the plan, the outcomes and the queued operations are gone.
      throw new RedisDataLost(
        `Redis lost its data during this cycle; ${Math.max(0, total - progress.recorded)} operations have no recorded outcome; the next cycle plans again`,
      );
    }
    if (progress && progress.recorded >= total) return 'done';
    if (signal?.aborted) {
      // Shutting down: hand the cycle back; whoever picks it up resumes from the stored plan.
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    if (Date.now() > deadline) return 'timed-out';
    await sleep(poll.next(progress?.recorded, Date.now()), undefined, signal ? { signal } : {}).catch(() => {
      // Aborted: the next turn hands the cycle back.
    });
  }
}

/** The shortest wait between two looks at the progress: one small Redis transaction each. */
const MIN_POLL_MS = 10;

/**
 * When to look at a cycle's progress next. At the pace the outcomes came in so far, the look is
 * timed for when the last one is due, so the cycle goes on soon after its operations finish
 * rather than up to pollMs later; never later than pollMs. Until a pace is known, and after a look
 * that found nothing new, the wait doubles from a short one (a straggler retrying is not looked
 * at every few milliseconds).
 */
export class ProgressPoll {
  private first: { atMs: number; recorded: number } | undefined;
  private last: { recorded: number; waitMs: number } | undefined;

  constructor(
    private readonly pollMs: number,
    private readonly total: number,
  ) {}

  /** The wait before the next look, given what this look found (undefined: Redis did not answer). */
  next(recorded: number | undefined, nowMs: number): number {
    const ceiling = Math.max(this.pollMs, MIN_POLL_MS);
    if (recorded === undefined) return ceiling;
    this.first ??= { atMs: nowMs, recorded };
    const done = recorded - this.first.recorded;
    const elapsed = nowMs - this.first.atMs;
    let wait: number;
    if (!this.last || recorded === this.last.recorded || done <= 0 || elapsed <= 0) wait = Math.min(ceiling, (this.last?.waitMs ?? MIN_POLL_MS) * 2);
    else wait = Math.min(ceiling, Math.max(MIN_POLL_MS, ((this.total - recorded) * elapsed) / done));
    this.last = { recorded, waitMs: wait };
    return wait;
  }
}
