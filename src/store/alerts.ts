import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ALERT_KINDS, type AlertKind } from '../observe/alerts.js';
import { secrets } from '../net/secrets.js';
import { type KeyPrefix, syncKeys } from './keys.js';

export interface AlertRecord {
  kind: AlertKind;
  summary: string;
  sinceMs: number;
}

const recordSchema = z.object({ kind: z.enum(ALERT_KINDS), summary: z.string(), sinceMs: z.number() });

const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Takes a condition's record away and returns it: only the replica that took it sends `resolved`. */
const TAKE = `local v = redis.call('HGET', KEYS[1], ARGV[1]) if v then redis.call('HDEL', KEYS[1], ARGV[1]) end return v`;

/**
 * The conditions alerted for one sync, shared by every replica: a condition is claimed with
 * HSETNX before its `firing` goes out and taken away atomically before its `resolved`, so each is
 * sent once however many replicas look.
 */
export class AlertStore {
  private readonly key: string;
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    readonly sync: string,
  ) {
    const keys = syncKeys(prefix, sync);
    this.key = keys.alerts;
    this.lockKey = keys.alertsLock;
  }

  /** One evaluation of a sync at a time across replicas; the lock lapses if its holder dies. */
  async lock(ttlMs: number): Promise<string | undefined> {
    const owner = randomUUID();
    return (await this.redis.set(this.lockKey, owner, 'PX', ttlMs, 'NX')) === 'OK' ? owner : undefined;
  }

  async unlock(owner: string): Promise<void> {
    await this.redis.eval(UNLOCK, 1, this.lockKey, owner);
  }

  /** Alerted conditions; a record that does not parse is dropped (its condition fires again if it holds). */
  async alerted(): Promise<Map<string, AlertRecord>> {
    const raw = await this.redis.hgetall(this.key);
    const out = new Map<string, AlertRecord>();
    for (const [key, value] of Object.entries(raw)) {
      const parsed = parse(value);
      if (parsed) out.set(key, parsed);
    }
    return out;
  }

  async claimFiring(condition: string, record: AlertRecord): Promise<boolean> {
    return (await this.redis.hsetnx(this.key, condition, JSON.stringify(secrets.scrubDeep(record)))) === 1;
  }

  async claimResolved(condition: string): Promise<AlertRecord | undefined> {
    const raw = await this.redis.eval(TAKE, 1, this.key, condition);
    return typeof raw === 'string' ? parse(raw) : undefined;
  }
}

function parse(value: string): AlertRecord | undefined {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
