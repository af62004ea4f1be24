import type { Redis } from 'ioredis';
import { z } from 'zod';
import { secrets } from '../net/secrets.js';
import type { UserSyncReport } from '../plan/user-sync.js';
import { syncKeys, type KeyPrefix } from './keys.js';

/** How many user-sync reports are kept per sync. */
const REPORTS_KEPT = 200;

/**
 * What the fast lane held for `tvsync approve` and status: a deactivation at its sliding-window
 * threshold, or a recycled address (then `sourceId` is the new IdP user's id).
 */
export interface HeldUserDeactivation {
  sourceId: string;
  email: string;
  tvUserId: string;
  message: string;
  atMs: number;
  /** Absent: a deactivation (and in records stored before recycled addresses were held). */
  kind?: 'deactivation' | 'recycled-address';
}

/** A recycled address is held under its own field, so it never replaces a held deactivation of the same user. */
function heldField(held: Pick<HeldUserDeactivation, 'tvUserId' | 'kind'>): string {
  return held.kind === 'recycled-address' ? `recycled:${held.tvUserId}` : held.tvUserId;
}

/** The last poll of one change feed. */
export interface FeedStatus {
  feed: string;
  lastPollAtMs: number;
  ok: boolean;
  /** Why the last poll failed (scrubbed). */
  error?: string;
  lastHintAtMs?: number;
  hints: number;
  requests: number;
}

const heldSchema = z.object({
  sourceId: z.string(),
  email: z.string(),
  tvUserId: z.string(),
  message: z.string(),
  atMs: z.number(),
  kind: z.enum(['deactivation', 'recycled-address']).optional(),
});
const feedSchema = z.object({
  feed: z.string(),
  lastPollAtMs: z.number(),
  ok: z.boolean(),
  error: z.string().optional(),
  lastHintAtMs: z.number().optional(),
  hints: z.number(),
  requests: z.number(),
});

/*
 * Before a user sync writes: one writer per person at a time (the lock), and never from an older
 * read than the last writer's (the stamp), so a late or slow sync cannot undo newer state.
 * KEYS: lock, stamps; ARGV: run id, person, read time, lock ms.
 */
const BEGIN_WRITE = `local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 'busy' end
local stamp = redis.call('HGET', KEYS[2], ARGV[2])
if stamp and tonumber(stamp) > tonumber(ARGV[3]) then return 'stale' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 'ok'`;
const END_WRITE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

// Atomic: a user sync may start only while no cycle runs; the cycle, once marked, waits for those started.
const CLAIM = `if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1`;

/**
 * What the fast lane keeps in Redis for one sync: the removals of its sliding window, the interlock
 * that keeps user syncs and cycles apart, what it held for approval, its last reports and the state
 * of its change feeds.
 */
export class FastLaneStore {
  private readonly keys: ReturnType<typeof syncKeys>['fastLane'];

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    readonly sync: string,
  ) {
    this.keys = syncKeys(prefix, sync).fastLane;
  }

  private windowKey(kind: 'deactivations' | 'memberRemovals'): string {
    return this.keys[kind];
  }

  /** Removals of this kind the fast lane made within the window ending now. */
  async removalsWithin(kind: 'deactivations' | 'memberRemovals', nowMs: number, windowMs: number): Promise<number> {
    const key = this.windowKey(kind);
    const [, count] = (await this.redis
      .multi()
      .zremrangebyscore(key, '-inf', `(${nowMs - windowMs}`)
      .zcard(key)
      .exec()) as [unknown, [Error | null, number]];
    return count[1];
  }

  /**
   * Takes a place in the window for one removal before it is made, atomically: concurrent user
   * syncs each see the places taken before theirs, so a burst cannot slip past the threshold.
   * Returns how many removals the window holds with this one; `unreserve` gives the place back.
   */
  async reserve(kind: 'deactivations' | 'memberRemovals', entry: string, nowMs: number, windowMs: number): Promise<number> {
    const key = this.windowKey(kind);
    const [, , count] = (await this.redis
      .multi()
      .zremrangebyscore(key, '-inf', `(${nowMs - windowMs}`)
      .zadd(key, nowMs, entry)
      .zcard(key)
      .pexpire(key, windowMs + 60_000)
      .exec()) as [unknown, unknown, [Error | null, number], unknown];
    return count[1];
  }

  async unreserve(kind: 'deactivations' | 'memberRemovals', entry: string): Promise<void> {
    await this.redis.zrem(this.windowKey(kind), entry);
  }

  /** A cycle of this sync is running: user syncs wait. Renewed while the cycle runs; expires if its worker dies. */
  async markCycleRunning(ttlMs: number): Promise<void> {
    await this.redis.set(this.keys.cycleRunning, '1', 'PX', ttlMs);
  }

  async clearCycleRunning(): Promise<void> {
    await this.redis.del(this.keys.cycleRunning);
  }

  /** Claims the right to apply one user sync; false while a cycle runs. The claim expires after `ttlMs`. */
  async claim(id: string, nowMs: number, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(CLAIM, 2, this.keys.cycleRunning, this.keys.applying, String(nowMs + ttlMs), id)) === 1;
  }

  /** Keeps a live user sync's claim from lapsing while it waits on a slow IdP or TeamViewer. */
  async renewClaim(id: string, nowMs: number, ttlMs: number): Promise<void> {
    await this.redis.zadd(this.keys.applying, 'XX', nowMs + ttlMs, id);
  }

  /**
   * Takes the person's write lock, unless another user sync holds it ('busy'), or a sync that read
   * the IdP later than `readAtMs` has written already ('stale': this one must not write).
   */
  async beginWrite(person: string, runId: string, readAtMs: number, lockMs: number): Promise<'ok' | 'busy' | 'stale'> {
    const answer = await this.redis.eval(BEGIN_WRITE, 2, this.keys.personLock(person), this.keys.stamps, runId, person, String(readAtMs), String(lockMs));
    return answer === 'busy' || answer === 'stale' ? answer : 'ok';
  }

  async endWrite(person: string, runId: string): Promise<void> {
    await this.redis.eval(END_WRITE, 1, this.keys.personLock(person), runId);
  }

  async release(id: string): Promise<void> {
    await this.redis.zrem(this.keys.applying, id);
  }

  /** User syncs applying now (expired claims of dead workers are dropped). */
  async applying(nowMs: number): Promise<number> {
    const [, count] = (await this.redis.multi().zremrangebyscore(this.keys.applying, '-inf', `(${nowMs}`).zcard(this.keys.applying).exec()) as [
      unknown,
      [Error | null, number],
    ];
    return count[1];
  }

  async hold(held: HeldUserDeactivation): Promise<void> {
    await this.redis.hset(this.keys.held, heldField(held), JSON.stringify(secrets.scrubDeep(held)));
  }

  /** Forgets what was held for these TeamViewer users: deactivations and recycled addresses alike. */
  async releaseHeld(tvUserIds: readonly string[]): Promise<void> {
    if (tvUserIds.length) await this.redis.hdel(this.keys.held, ...tvUserIds, ...tvUserIds.map((id) => heldField({ tvUserId: id, kind: 'recycled-address' })));
  }

  /** Forgets only held deactivations: a recycled address waits for its own approval. */
  async releaseHeldDeactivations(tvUserIds: readonly string[]): Promise<void> {
    if (tvUserIds.length) await this.redis.hdel(this.keys.held, ...tvUserIds);
  }

  async held(): Promise<HeldUserDeactivation[]> {
    const out: HeldUserDeactivation[] = [];
    for (const raw of Object.values(await this.redis.hgetall(this.keys.held))) {
      const parsed = heldSchema.safeParse(safeJson(raw));
      if (parsed.success) out.push(parsed.data);
    }
    return out.sort((a, b) => a.atMs - b.atMs);
  }

  async saveReport(report: UserSyncReport): Promise<void> {
    await this.redis
      .multi()
      .lpush(this.keys.reports, JSON.stringify(secrets.scrubDeep(report)))
      .ltrim(this.keys.reports, 0, REPORTS_KEPT - 1)
      .exec();
  }

  /** The last user-sync reports, newest first. */
  async reports(count = 20): Promise<UserSyncReport[]> {
    const raw = await this.redis.lrange(this.keys.reports, 0, count - 1);
    return raw.map((r) => safeJson(r)).filter((r): r is UserSyncReport => typeof r === 'object' && r !== null && 'ref' in r);
  }

  async recordFeed(status: FeedStatus): Promise<void> {
    await this.redis.hset(this.keys.feeds, status.feed, JSON.stringify(secrets.scrubDeep(status)));
  }

  async feeds(): Promise<FeedStatus[]> {
    const out: FeedStatus[] = [];
    for (const raw of Object.values(await this.redis.hgetall(this.keys.feeds))) {
      const parsed = feedSchema.safeParse(safeJson(raw));
      if (parsed.success) out.push(parsed.data as FeedStatus);
    }
    return out.sort((a, b) => a.feed.localeCompare(b.feed));
  }
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
