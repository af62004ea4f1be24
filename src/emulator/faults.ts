/*
 * What the emulator's switches inject: failures drawn from a seeded random sequence (the same seed,
 * the same failures), and a fixed-window rate limit.
 */

const INJECTED_STATUSES = [500, 502, 503] as const;

/** Small seeded PRNG (mulberry32): reproducible failure injection without a dependency. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Whether this request fails, with which status, and whether before or after it is applied. Draws
 * from `random` in a fixed order, so a seed replays the same failures.
 */
export function drawInjectedFailure(random: () => number, rate: number, mode: 'before' | 'after' | 'mixed'): { before: boolean; status: number } | undefined {
  if (rate <= 0 || random() >= rate) return undefined;
  const status = INJECTED_STATUSES[Math.floor(random() * INJECTED_STATUSES.length)] ?? 500;
  const before = mode === 'before' || (mode === 'mixed' && random() < 0.5);
  return { before, status };
}

/** At most `max` requests per window of `windowMs`; the window starts with its first request. */
export class FixedWindowLimiter {
  private windowStart = 0;
  private used = 0;

  constructor(private readonly limit: { max: number; windowMs: number }) {}

  /** undefined when the request may pass, else the milliseconds until the window ends. */
  take(now: number): number | undefined {
    if (now - this.windowStart >= this.limit.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.limit.max) return this.windowStart + this.limit.windowMs - now;
    this.used++;
    return undefined;
  }
}
