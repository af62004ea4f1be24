import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
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

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * The plan, the group phase and a finished cycle's outcomes are kept gzipped: for 100k users they
 * are tens of megabytes of alike JSON objects, which shrink about tenfold. Compressing runs off
 * the event loop.
 */
async function pack(value: unknown): Promise<Buffer> {
  return gzipAsync(JSON.stringify(value), { level: 3 });
}

async function unpack<T>(raw: Buffer | undefined): Promise<T | undefined> {
  if (!raw?.length) return undefined;
  // A record written before records were compressed is plain JSON.
  const text = raw[0] === 0x1f && raw[1] === 0x8b ? (await gunzipAsync(raw)).toString('utf8') : raw.toString('utf8');
  return JSON.parse(text) as T;
}

/** Finished cycles' working keys are kept this long for post-mortems, then expire. */
const FINISHED_TTL_S = 3 * 86_400;
export const REPORTS_KEPT = 50;

/**
 * An outcome as JSON, scrubbed again (outside text was scrubbed where it entered; this pass guards
 * what is kept). A JSON text without a backslash holds every string as it is, so scrubbing it as one
 * text finds what scrubbing each field would. Where it holds an escape (a quote, a backslash, a
 * control character, a lone surrogate), or the scrub found something, the fields are scrubbed one
 * by one instead: an escape would hide a secret from the one-text scrub, and a redaction must never
 * cut an escape in half.
 */
function keptJson(result: OperationResult): string {
  const json = JSON.stringify(result);
  return !json.includes('\\') && scrubSecrets(json) === json ? json : JSON.stringify(secrets.scrubDeep(result));
}

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
    const raw = await this.redis.hgetallBuffer(this.keys.cycle(cycleId));
    if (!raw.status) return undefined;
    const cycle: StoredCycle = {
      status: raw.status.toString() as StoredCycle['status'],
      trigger: raw.trigger?.toString() ?? 'unknown',
      startedAtMs: Number(raw.startedAtMs?.toString() ?? 0),
    };
    const [plan, directoryGroups, groupPhase] = await Promise.all([
      unpack<Plan>(raw.plan),
      unpack<GroupPhaseRead>(raw.directoryGroups),
      unpack<GroupPhase>(raw.groupPhase),
    ]);
    if (plan) cycle.plan = plan;
    if (directoryGroups) cycle.directoryGroups = directoryGroups;
    if (groupPhase) cycle.groupPhase = groupPhase;
    if (raw.stopped?.length) cycle.stopped = raw.stopped.toString();
    return cycle;
  }

  async savePlan(cycleId: string, plan: Plan, directoryGroups: GroupPhaseRead): Promise<void> {
    // The plan-wide texts may quote an IdP or TeamViewer (a failed look-up, a connector's reason);
    // the per-user lists hold IdP data only and would make a second pass over 100k entries costly.
    const kept: Plan = { ...plan, notices: secrets.scrubDeep(plan.notices) };
    if (plan.deactivationsBlocked) kept.deactivationsBlocked = secrets.scrubDeep(plan.deactivationsBlocked);
    const read = secrets.scrubDeep(directoryGroups.read);
    const groups: GroupPhaseRead = read ? { ...directoryGroups, read } : directoryGroups;
    const [packedPlan, packedGroups] = await Promise.all([pack(kept), pack(groups)]);
    await this.redis.hset(this.keys.cycle(cycleId), 'plan', packedPlan, 'directoryGroups', packedGroups, 'status', 'applying');
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
    await this.redis.hset(this.keys.cycle(cycleId), 'groupPhase', await pack(kept));
  }

  async recordResult(cycleId: string, result: OperationResult): Promise<void> {
    await this.recordResults(cycleId, [result]);
  }

  /** Several outcomes of one cycle, in one HSET. */
  async recordResults(cycleId: string, results: readonly OperationResult[]): Promise<void> {
    if (results.length === 0) return;
    const key = this.keys.cycleResults(cycleId);
    const fields: string[] = [];
    for (const result of results) fields.push(result.key, keptJson(result));
    // The expiry bounds an outcome that lands after its cycle finished (and folded the others away).
    // Two plain commands: auto-pipelining sends them in one write, with other commands of the tick.
    await Promise.all([this.redis.hset(key, ...fields), this.redis.expire(key, FINISHED_TTL_S)]);
  }

  /**
   * The stop flag, and whether the operation has an outcome, in one round trip. A cycle that
   * finished without being stopped had every outcome (folded into its record by now).
   */
  async stoppedOrDone(cycleId: string, key: string): Promise<[stopped: string | undefined, done: boolean]> {
    const replies = await this.redis.multi().hmget(this.keys.cycle(cycleId), 'stopped', 'status').hexists(this.keys.cycleResults(cycleId), key).exec();
    const [stopped, status] = (replies?.[0]?.[1] ?? []) as (string | null)[];
    return [stopped ?? undefined, replies?.[1]?.[1] === 1 || (status === 'done' && !stopped)];
  }

  async resultKeys(cycleId: string): Promise<Set<string>> {
    return new Set(await this.redis.hkeys(this.keys.cycleResults(cycleId)));
  }

  async resultCount(cycleId: string): Promise<number> {
    return (await this.results(cycleId)).length;
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

  /** Every recorded outcome: those of a finished cycle were folded into its record. */
  async results(cycleId: string): Promise<OperationResult[]> {
    const replies = await this.redis.multi().hgetBuffer(this.keys.cycle(cycleId), 'results').hvals(this.keys.cycleResults(cycleId)).exec();
    for (const [err] of replies ?? []) if (err) throw err;
    const folded = (await unpack<OperationResult[]>((replies?.[0]?.[1] as Buffer | null) ?? undefined)) ?? [];
    const byKey = new Map(folded.map((r) => [r.key, r]));
    // An outcome recorded after the cycle finished (an operation of a stopped cycle, cancelled) never replaces an earlier one.
    for (const raw of (replies?.[1]?.[1] ?? []) as string[]) {
      const result = JSON.parse(raw) as OperationResult;
      if (!byKey.has(result.key)) byKey.set(result.key, result);
    }
    return [...byKey.values()];
  }

  /** Tells the operation workers to run nothing more of this cycle (a 401 was seen). */
  async stop(cycleId: string, reason: string): Promise<void> {
    await this.redis.hsetnx(this.keys.cycle(cycleId), 'stopped', scrubSecrets(reason));
  }

  async stopped(cycleId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.cycle(cycleId), 'stopped')) ?? undefined;
  }

  /**
   * Marks the cycle done with its report. The outcomes the report was built from are folded into
   * the cycle's record, gzipped: one value instead of a hash field per operation. Only those leave
   * the hash: one recorded since they were read (an operation of a stopped cycle still running,
   * or cancelled) stays there, as one recorded after the fold does.
   */
  async finish(cycleId: string, finished: CycleReport, results: readonly OperationResult[]): Promise<void> {
    const reports = this.keys.reports;
    const report = secrets.scrubDeep(finished);
    const folded = await pack(results);
    const tx = this.redis
      .multi()
      .hset(this.keys.cycle(cycleId), 'status', 'done', 'report', JSON.stringify(report), 'results', folded)
      .expire(this.keys.cycle(cycleId), FINISHED_TTL_S);
    if (results.length) tx.hdel(this.keys.cycleResults(cycleId), ...results.map((r) => r.key));
    const replies = await tx
      .lpush(reports, JSON.stringify(report))
      .ltrim(reports, 0, REPORTS_KEPT - 1)
      .exec();
    for (const [err] of replies ?? []) if (err) throw err;
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
