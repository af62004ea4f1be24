import { setTimeout as sleep } from 'node:timers/promises';
import { SyncError } from '../model/failure.js';

/** Parses Retry-After (seconds or an HTTP date) into milliseconds; undefined when absent or unusable. */
export function parseRetryAfter(value: unknown, nowMs: number = Date.now()): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const text = String(value).trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

export interface BackoffPolicy {
  /** Attempts in all, the first one included. */
  attempts: number;
  baseMs: number;
  capMs: number;
  /** Longest Retry-After we are willing to sleep inside one call before giving up. */
  maxWaitMs?: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { attempts: 5, baseMs: 1000, capMs: 60_000, maxWaitMs: 120_000 };

/** Exponential backoff with full jitter: a random delay in [base*2^n / 2, base*2^n], capped. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Runs `fn`, retrying SyncErrors of class transient and rate-limited. A rate-limited error waits
 * what the server asked (retryAfterMs) when it said, else the backoff. Anything else is thrown at once.
 */
export async function withRetries<T>(
  fn: (attempt: number) => Promise<T>,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  opts: { signal?: AbortSignal; onRetry?: (err: SyncError, waitMs: number, attempt: number) => void } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof SyncError) || !err.retryable || attempt + 1 >= policy.attempts) throw err;
      const asked = err.failureClass === 'rate-limited' ? err.retryAfterMs : undefined;
      const wait = asked ?? backoffDelay(attempt, policy);
      if (policy.maxWaitMs !== undefined && wait > policy.maxWaitMs) throw err;
      opts.onRetry?.(err, wait, attempt);
      await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}
