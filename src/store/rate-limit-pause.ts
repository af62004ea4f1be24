import type { Redis } from 'ioredis';
import { z } from 'zod';
import { syncKeys, type KeyPrefix } from './keys.js';

/** A pause TeamViewer asked for (429), as tvsync applied it to the whole sync. */
export interface RateLimitPause {
  /** Epoch ms when the sync's operations run again. */
  untilMs: number;
  /** What TeamViewer asked for (Retry-After, or the fallback when it named none). */
  askedMs: number;
  /** What tvsync waits: the ask, capped by runtime.maxRetryAfter. */
  appliedMs: number;
  atMs: number;
}

const pauseSchema = z.object({ untilMs: z.number(), askedMs: z.number(), appliedMs: z.number(), atMs: z.number() });

/**
 * The last pause of a sync's operation queue, kept (and expiring) beside BullMQ's own limiter key,
 * so `tvsync status` and the metrics can say that and why a sync is waiting.
 */
export class RateLimitPauseStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    sync: string,
  ) {
    this.key = syncKeys(prefix, sync).rateLimitPause;
  }

  async record(pause: RateLimitPause): Promise<void> {
    await this.redis.set(this.key, JSON.stringify(pause), 'PX', Math.max(1, pause.untilMs - pause.atMs));
  }

  /** The pause in force at `nowMs`, if any. */
  async current(nowMs: number): Promise<RateLimitPause | undefined> {
    const raw = await this.redis.get(this.key);
    if (!raw) return undefined;
    try {
      const parsed = pauseSchema.safeParse(JSON.parse(raw));
      return parsed.success && parsed.data.untilMs > nowMs ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }
}

export function describePause(pause: RateLimitPause): string {
  const capped = pause.askedMs > pause.appliedMs ? ` (TeamViewer asked for ${Math.ceil(pause.askedMs / 1000)} s; capped by runtime.maxRetryAfter)` : '';
  return `operations paused by TeamViewer's rate limit until ${new Date(pause.untilMs).toISOString()}${capped}`;
}
