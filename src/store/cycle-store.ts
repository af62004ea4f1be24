import type { Redis } from 'ioredis';
import type { GroupPhaseRead } from '../plan/group-input.js';
import type { GroupPhase } from '../plan/group-types.js';
import type { Plan } from '../plan/types.js';

import { syncKeys, type KeyPrefix } from './keys.js';
import { scrubSecrets, secrets } from '../net/secrets.js';
import type { CycleReport, OperationResult } from '../plan/report.js';

export interface StoredCycle {
  status: 'planning' | 'applying' | 'done';
  trigger: string;
  startedAtMs: number;
  plan?: Plan;
  directoryGroups?: GroupPhaseRead;
  groupPhase?: GroupPhase;
  stopped?: string;
}

/** Finished cycles' working keys are kept this long for post-mortems, then expire. */
const FINISHED_TTL_S = 3 * 86_400;
export const REPORTS_KEPT = 50;

/**
 * A cycle's durable record: its plan (persisted before any write, so a crash after planning
 * loses nothing), the outcome of each operation, a stop flag, and the sync's last reports.
 */
export class CycleStore {
  private readonly keys: ReturnType<typeof syncKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    readonly sync: string,
  ) {
    this.keys = syncKeys(prefix, sync);
  }

  /** Starts a cycle record, or returns the one a crashed attempt of the same cycle left. */
  async begin(cycleId: string, trigger: string, startedAtMs: number): Promise<StoredCycle> {
    const key = this.keys.cycle(cycleId);
    await this.redis.hsetnx(key, 'status', 'planning');
    await this.redis.hsetnx(key, 'trigger', trigger);
    await this.redis.hsetnx(key, 'startedAtMs', String(startedAtMs));
    return (await this.load(cycleId)) as StoredCycle;
  }

  async load(cycleId: string): Promise<StoredCycle | undefined> {
    const raw = await this.redis.hgetall(this.keys.cycle(cycleId));
    if (!raw.status) return undefined;
    const cycle: StoredCycle = {
      status: raw.status as StoredCycle['status'],
      trigger: raw.trigger ?? 'unknown',
      startedAtMs: Number(raw.startedAtMs ?? 0),
    };
    if (raw.plan) cycle.plan = JSON.parse(raw.plan) as Plan;
    if (raw.directoryGroups) cycle.directoryGroups = JSON.parse(raw.directoryGroups) as GroupPhaseRead;
    if (raw.groupPhase) cycle.groupPhase = JSON.parse(raw.groupPhase) as GroupPhase;
    if (raw.stopped) cycle.stopped = raw.stopped;
    return cycle;
  }

  async savePlan(cycleId: string, plan: Plan, directoryGroups: GroupPhaseRead): Promise<void> {
    // The plan-wide texts may quote an IdP or TeamViewer (a failed look-up, a connector's reason);
    // the per-user lists hold IdP data only and would make a second pass over 100k entries costly.
    const kept: Plan = { ...plan, notices: secrets.scrubDeep(plan.notices) };
    if (plan.deactivationsBlocked) kept.deactivationsBlocked = secrets.scrubDeep(plan.deactivationsBlocked);
    const read = secrets.scrubDeep(directoryGroups.read);
    const groups: GroupPhaseRead = read ? { ...directoryGroups, read } : directoryGroups;
    await this.redis.hset(this.keys.cycle(cycleId), 'plan', JSON.stringify(kept), 'directoryGroups', JSON.stringify(groups), 'status', 'applying');
  }

  async saveGroupPhase(cycleId: string, phase: GroupPhase): Promise<void> {
    const kept: GroupPhase =
      phase.status === 'synced'
        ? {
            ...phase,
            plan: {
              ...phase.plan,
              notices: secrets.scrubDeep(phase.plan.notices),
              ...(phase.plan.removalsBlocked ? { removalsBlocked: secrets.scrubDeep(phase.plan.removalsBlocked) } : {}),
            },
          }
        : secrets.scrubDeep(phase);
    await this.redis.hset(this.keys.cycle(cycleId), 'groupPhase', JSON.stringify(kept));
  }

  async recordResult(cycleId: string, result: OperationResult): Promise<void> {
    // Outside text was scrubbed where it entered; this second pass guards what is kept.
    await this.redis.hset(this.keys.cycleResults(cycleId), result.key, JSON.stringify(secrets.scrubDeep(result)));
  }

  /** The stop flag and whether this operation already has an outcome, in one round trip. */
  async stoppedOrDone(cycleId: string, key: string): Promise<[stopped: string | undefined, done: boolean]> {
    const replies = await this.redis.multi().hget(this.keys.cycle(cycleId), 'stopped').hexists(this.keys.cycleResults(cycleId), key).exec();
    const stopped = replies?.[0]?.[1];
    return [typeof stopped === 'string' ? stopped : undefined, replies?.[1]?.[1] === 1];
  }

  async resultKeys(cycleId: string): Promise<Set<string>> {
    return new Set(await this.redis.hkeys(this.keys.cycleResults(cycleId)));
  }

  async resultCount(cycleId: string): Promise<number> {
    return this.redis.hlen(this.keys.cycleResults(cycleId));
  }

  /**
   * How many operations have an outcome, and whether the cycle's record still exists (it does not
   * once Redis lost its data), in one round trip.
   */
  async progress(cycleId: string): Promise<{ present: boolean; recorded: number }> {
    const replies = await this.redis.multi().hexists(this.keys.cycle(cycleId), 'status').hlen(this.keys.cycleResults(cycleId)).exec();
    for (const [err] of replies ?? []) if (err) throw err;
    return { present: replies?.[0]?.[1] === 1, recorded: Number(replies?.[1]?.[1] ?? 0) };
  }

  async results(cycleId: string): Promise<OperationResult[]> {
    const raw = await this.redis.hvals(this.keys.cycleResults(cycleId));
    return raw.map((r) => JSON.parse(r) as OperationResult);
  }

  /** Tells the operation workers to run nothing more of this cycle (a 401 was seen). */
  async stop(cycleId: string, reason: string): Promise<void> {
    await this.redis.hsetnx(this.keys.cycle(cycleId), 'stopped', scrubSecrets(reason));
  }

  async stopped(cycleId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.cycle(cycleId), 'stopped')) ?? undefined;
  }

  async finish(cycleId: string, finished: CycleReport): Promise<void> {
    const reports = this.keys.reports;
    const report = secrets.scrubDeep(finished);
    await this.redis
      .multi()
      .hset(this.keys.cycle(cycleId), 'status', 'done', 'report', JSON.stringify(report))
      .expire(this.keys.cycle(cycleId), FINISHED_TTL_S)
      .expire(this.keys.cycleResults(cycleId), FINISHED_TTL_S)
      .lpush(reports, JSON.stringify(report))
      .ltrim(reports, 0, REPORTS_KEPT - 1)
      .exec();
  }

  async report(cycleId: string): Promise<CycleReport | undefined> {
    const raw = await this.redis.hget(this.keys.cycle(cycleId), 'report');
    return raw ? (JSON.parse(raw) as CycleReport) : undefined;
  }

  async reports(limit = REPORTS_KEPT): Promise<CycleReport[]> {
    const raw = await this.redis.lrange(this.keys.reports, 0, limit - 1);
    return raw.map((r) => JSON.parse(r) as CycleReport);
  }
}
