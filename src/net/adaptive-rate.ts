/**
 * How fast to call TeamViewer, which publishes no rate limit: as fast as it allows, never faster.
 * Pure: one decision per window of answers. The rate starts modestly and grows while answers are
 * clean (by half per window until TeamViewer first throttles, then quickly back towards just below
 * the rate it throttled at, then by a twentieth of a percent per window to find out whether the limit
 * rose). A
 * throttled window (429) or one whose median latency rose well above its floor cuts it; it never
 * exceeds the configured ceiling.
 */

export interface RateLimits {
  /** Requests per second to begin with when nothing has been learned. */
  start: number;
  /** Never faster. */
  ceiling: number;
}

export interface RateState {
  /** Requests per second, across every worker and replica of the sync. */
  rate: number;
  /** The rate TeamViewer last throttled at: approached, then passed only slowly. */
  throttledAt?: number;
  /** The lowest median latency seen: the yardstick of a latency rise. */
  latencyFloorMs?: number;
  /** Windows still to pass before another cut: answers to requests sent before a cut come back after it. */
  cooldown?: number;
}

/** What one window of answers showed. */
export interface RateWindow {
  /** Answers other than 429. */
  answers: number;
  /** 429 answers. */
  throttled: number;
  /** Median latency of the answers, when there were any. */
  medianMs?: number;
  /** Requests the rate allowed in the window: a window that used little of it proves nothing about a faster rate. */
  allowed: number;
}

export type RateDecision = { state: RateState; change: 'up' | 'down' | 'hold'; reason: string };

/** Lowest rate: a throttled sync still makes progress. */
export const MIN_RATE = 0.5;
/** Share of the rate kept after a 429. */
const THROTTLE_CUT = 0.8;
/** Share kept after a latency rise. */
const LATENCY_CUT = 0.9;
/** How close below the last throttled rate the rate goes back quickly, and holds. */
const BELOW_THROTTLED = 0.95;
/** A 429 at or above this share of the last throttled rate is a probe that found the same limit: back to just below it. */
const PROBE_HIT = 0.9;
/** Growth per clean window before TeamViewer has ever throttled. */
const SLOW_START = 1.5;
/**
 * Growth per clean window at or above the approach point: probing whether the limit rose. Slow,
 * because each probe that finds the limit costs the pause TeamViewer asks for.
 */
const PROBE = 0.0005;
/** Answers a window needs before its median latency counts. */
const MIN_LATENCY_ANSWERS = 5;
/** Share of the allowed requests a window must have used before it may raise the rate. */
const BUSY = 0.8;

/** Without any rate setting: start where the fixed rate used to be, grow up to this. */
export const DEFAULT_START = 10;
export const DEFAULT_CEILING = 100;

/**
 * The limits a target's settings give. `requestsPerSecond` (the fixed rate of old) is the ceiling,
 * and the start too unless `rate.start` is given, so an existing config runs as fast as before
 * until TeamViewer throttles it.
 */
export function rateLimitsOf(target: {
  requestsPerSecond?: number | undefined;
  rate?: { start?: number | undefined; ceiling?: number | undefined } | undefined;
}): RateLimits {
  const ceiling = target.rate?.ceiling ?? target.requestsPerSecond ?? DEFAULT_CEILING;
  const start = target.rate?.start ?? target.requestsPerSecond ?? DEFAULT_START;
  return { start: Math.min(start, ceiling), ceiling };
}

export function initialRate(limits: RateLimits, learned?: RateState): RateState {
  const rate = clamp(learned?.rate ?? limits.start, limits);
  const state: RateState = { rate };
  if (learned?.throttledAt !== undefined) state.throttledAt = learned.throttledAt;
  if (learned?.latencyFloorMs !== undefined) state.latencyFloorMs = learned.latencyFloorMs;
  return state;
}

export function nextRate(previous: RateState, window: RateWindow, limits: RateLimits): RateDecision {
  const state: RateState = { ...previous, rate: clamp(previous.rate, limits) };
  if (window.medianMs !== undefined && window.throttled === 0 && window.answers >= MIN_LATENCY_ANSWERS)
    state.latencyFloorMs = state.latencyFloorMs === undefined ? window.medianMs : Math.min(state.latencyFloorMs, window.medianMs);
  const cooling = (state.cooldown ?? 0) > 0;
  if (cooling) state.cooldown = (state.cooldown ?? 1) - 1;
  if (state.cooldown === 0) delete state.cooldown;

  if (window.throttled > 0) {
    if (cooling) return { state, change: 'hold', reason: `${window.throttled} answered 429 to requests sent before the last cut` };
    const sameLimit = state.throttledAt !== undefined && state.rate >= state.throttledAt * PROBE_HIT;
    state.throttledAt = state.rate;
    state.rate = clamp(state.rate * (sameLimit ? BELOW_THROTTLED : THROTTLE_CUT), limits);
    state.cooldown = 1;
    return { state, change: 'down', reason: `TeamViewer answered ${window.throttled} of ${window.answers + window.throttled} requests with 429` };
  }
  const floor = previous.latencyFloorMs;
  const slow =
    window.medianMs !== undefined && floor !== undefined && window.answers >= MIN_LATENCY_ANSWERS && window.medianMs > Math.max(3 * floor, floor + 250);
  if (!cooling && slow && window.medianMs !== undefined && floor !== undefined) {
    state.rate = clamp(state.rate * LATENCY_CUT, limits);
    state.cooldown = 1;
    return { state, change: 'down', reason: `median latency ${Math.round(window.medianMs)} ms, against a floor of ${Math.round(floor)} ms` };
  }
  if (window.answers < window.allowed * BUSY || state.rate >= limits.ceiling)
    return { state, change: 'hold', reason: state.rate >= limits.ceiling ? 'at the ceiling' : 'too few requests to learn from' };

  const before = state.rate;
  const approach = state.throttledAt === undefined ? undefined : state.throttledAt * BELOW_THROTTLED;
  if (approach === undefined) state.rate = before * SLOW_START;
  else if (before < approach) state.rate = before + Math.max(1, (approach - before) / 2);
  else state.rate = before * (1 + PROBE);
  // Well past the rate TeamViewer throttled at without a 429: its limit rose, and the rate may grow fast again.
  if (state.throttledAt !== undefined && state.rate > state.throttledAt * 1.1) delete state.throttledAt;
  state.rate = clamp(state.rate, limits);
  return { state, change: state.rate > before ? 'up' : 'hold', reason: 'answers were clean' };
}

function clamp(rate: number, limits: RateLimits): number {
  const top = Math.max(MIN_RATE, limits.ceiling);
  return Math.min(top, Math.max(MIN_RATE, Number.isFinite(rate) ? rate : limits.start));
}

/**
 * BullMQ's limiter for a rate: a few jobs per short window rather than the whole second's at once,
 * so that TeamViewer sees an even stream and no burst crosses its own window.
 */
export function limiterFor(rate: number): { max: number; duration: number } {
  // Windows of about 100 ms: short enough that TeamViewer's own window (a second, say) sees an
  // even stream, long enough that the wait and fetch at each window's end cost little of the rate,
  // and holding enough jobs that whole milliseconds still set the rate within a percent or two.
  const max = Math.max(1, Math.floor(rate / 10));
  return { max, duration: Math.max(1, Math.round((1000 * max) / rate)) };
}
