import { parseRetryAfter } from '../../net/retry.js';

/** Okta's rate-limit headers: how long until an endpoint's bucket resets, and slowing down before it runs dry. */

export interface HeaderBag {
  get(name: string): string | null;
}

export function serverTime(headers: HeaderBag): number | undefined {
  const at = Date.parse(headers.get('date') ?? '');
  return Number.isNaN(at) ? undefined : at;
}

/** How long until Okta's bucket resets, by Okta's own clock (x-rate-limit-reset vs Date), else Retry-After. */
export function waitForReset(headers: HeaderBag | undefined): number | undefined {
  if (!headers) return undefined;
  const reset = Number(headers.get('x-rate-limit-reset'));
  if (Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - (serverTime(headers) ?? Date.now()));
  return parseRetryAfter(headers.get('retry-after') ?? undefined);
}

/** Okta reports per endpoint bucket how many calls are left until it resets; near the end, slow down. */
export class RateBudget {
  private readonly buckets = new Map<string, { remaining: number; limit: number; resetAt: number }>();
  constructor(private readonly reservePercent: number) {}

  observe(bucket: string, headers: HeaderBag | undefined): void {
    if (!headers) return;
    const remaining = Number(headers.get('x-rate-limit-remaining') ?? Number.NaN);
    const limit = Number(headers.get('x-rate-limit-limit') ?? Number.NaN);
    const untilReset = waitForReset(headers);
    if (!Number.isFinite(remaining) || !Number.isFinite(limit) || untilReset === undefined) return;
    this.buckets.set(bucket, { remaining, limit, resetAt: Date.now() + untilReset });
  }

  /** Spreads the calls left in the reserve evenly over the time until reset; none left: wait for it. */
  delayMs(bucket: string): number {
    const state = this.buckets.get(bucket);
    if (!state || state.remaining * 100 > state.limit * this.reservePercent) return 0;
    const untilReset = state.resetAt - Date.now();
    return untilReset > 0 ? Math.min(60_000, Math.ceil(untilReset / (state.remaining + 1))) : 0;
  }
}
