import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { type KeyPrefix, syncKeys } from './keys.js';

/** How often a worker process says it runs, and how long one saying counts. */
export const WORKER_BEAT_MS = 10_000;
export const WORKER_SEEN_MS = 45_000;

/** Redis's own clock, in ms: processes on hosts whose clocks differ compare the same time. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Records this process's beat, drops the beats of processes gone silent, and lets the hash expire with the last one. */
const BEAT = `${NOW}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if now - tonumber(all[i + 1]) > tonumber(ARGV[2]) then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('HSET', KEYS[1], ARGV[1], now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now`;

/** The latest beat within the window, or -1. */
const LAST_SEEN = `${NOW}
local all = redis.call('HGETALL', KEYS[1])
local last = -1
for i = 1, #all, 2 do
  local at = tonumber(all[i + 1])
  if now - at <= tonumber(ARGV[1]) and at > last then last = at end
end
return last`;

/**
 * Whether a worker of a sync runs somewhere: each worker process renews its own entry in a hash and
 * removes it when it stops. A key of tvsync's rather than BullMQ's worker list, which rests on
 * CLIENT LIST: managed Redis services may refuse that command, and behind Sentinel or Cluster it
 * sees one node only.
 */
export class WorkerPresence {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    sync: string,
    /** This process's entry. */
    private readonly id = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
  ) {
    this.key = syncKeys(prefix, sync).workerSeen;
  }

  async beat(seenMs = WORKER_SEEN_MS): Promise<void> {
    await this.redis.eval(BEAT, 1, this.key, this.id, String(seenMs));
  }

  /** On a clean stop: this process no longer counts, although others may. */
  async leave(): Promise<void> {
    await this.redis.hdel(this.key, this.id);
  }

  /** When (Redis's clock, ms) a worker of the sync last said it runs, if within WORKER_SEEN_MS. */
  async lastSeen(seenMs = WORKER_SEEN_MS): Promise<number | undefined> {
    const last = Number(await this.redis.eval(LAST_SEEN, 1, this.key, String(seenMs)));
    return last >= 0 ? last : undefined;
  }
}
