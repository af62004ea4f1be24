import type { RuntimeOptions } from '../../src/runtime/queues.js';

/** Runtime knobs for tests: short polls, backoffs and stall times, so failures show in seconds. */
export const FAST: Partial<RuntimeOptions> = {
  pollMs: 50,
  opBackoffMs: 50,
  readBackoffMs: 50,
  rateLimitFallbackMs: 200,
  lockDurationMs: 5000,
  stalledIntervalMs: 2000,
  shutdownGraceMs: 5000,
};
