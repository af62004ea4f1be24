import type { Redis } from 'ioredis';
import { z } from 'zod';
import { secrets } from '../net/secrets.js';
import type { CycleOutcome } from '../plan/report.js';
import { syncKeys, type KeyPrefix } from './keys.js';

/** A sync's record of failing cycles and quarantine (runtime/health.ts decides it). */
export interface SyncHealth {
  consecutiveFailures: number;
  /** Epoch ms until which scheduled cycles are skipped; absent when not quarantined. */
  quarantinedUntil?: number;
  /** How many times in a row the sync was quarantined (decides the back-off). */
  quarantines: number;
  reason?: string;
  lastOutcome?: CycleOutcome;
  lastFailureClass?: string;
  lastSuccessAt?: number;
  lastCycleAt?: number;
}

export const HEALTHY: SyncHealth = { consecutiveFailures: 0, quarantines: 0 };

const healthSchema = z.object({
  consecutiveFailures: z.number(),
  quarantinedUntil: z.number().optional(),
  quarantines: z.number(),
  reason: z.string().optional(),
  lastOutcome: z.enum(['succeeded', 'partial', 'failed']).optional(),
  lastFailureClass: z.string().optional(),
  lastSuccessAt: z.number().optional(),
  lastCycleAt: z.number().optional(),
});

export class HealthStore {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    sync: string,
  ) {
    this.key = syncKeys(prefix, sync).health;
  }

  /** The stored record; one that is missing or does not parse reads as healthy. */
  async load(): Promise<SyncHealth> {
    const raw = await this.redis.get(this.key);
    if (!raw) return HEALTHY;
    try {
      const parsed = healthSchema.safeParse(JSON.parse(raw));
      return parsed.success ? (parsed.data as SyncHealth) : HEALTHY;
    } catch {
      return HEALTHY;
    }
  }

  async save(health: SyncHealth): Promise<void> {
    await this.redis.set(this.key, JSON.stringify(secrets.scrubDeep(health)));
  }
}
