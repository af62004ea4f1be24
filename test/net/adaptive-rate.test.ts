import { describe, expect, it } from 'vitest';
import { initialRate, limiterFor, MIN_RATE, nextRate, type RateLimits, type RateState, rateLimitsOf } from '../../src/net/adaptive-rate.js';

const limits: RateLimits = { start: 10, ceiling: 1000 };
const clean = (rate: number, medianMs = 20) => ({ answers: Math.round(rate), throttled: 0, medianMs, allowed: rate });

/**
 * A server that answers at most `limit` requests per window and 429 beyond, and a client that
 * always has work: the rate each window, and what the server answered.
 */
function simulate(limit: number, windows: number, start: RateState = initialRate(limits)) {
  let state = start;
  const rates: number[] = [];
  /** Requests answered other than 429, per window. */
  const served: number[] = [];
  let sent = 0;
  let throttled = 0;
  let paused = 0;
  for (let w = 0; w < windows; w++) {
    const rate = state.rate;
    rates.push(rate);
    // A 429 comes with a Retry-After of a second: the next window sends nothing.
    const send = paused > 0 ? 0 : Math.floor(rate);
    if (paused > 0) paused--;
    const refused = Math.max(0, send - limit);
    if (refused > 0) paused = 1;
    sent += send;
    throttled += refused;
    served.push(send - refused);
    state = nextRate(state, { answers: send - refused, throttled: refused, medianMs: 15, allowed: rate }, limits).state;
  }
  return { rates, served, sent, throttled, state };
}

describe('the adaptive request rate', () => {
  it('grows by half per clean, busy window until TeamViewer first throttles', () => {
    let state = initialRate(limits);
    expect(state.rate).toBe(10);
    for (const expected of [15, 22.5, 33.75]) {
      const decision = nextRate(state, clean(state.rate), limits);
      expect(decision.change).toBe('up');
      state = decision.state;
      expect(state.rate).toBeCloseTo(expected);
    }
  });

  it('does not grow on a window that used little of the rate: idle time proves nothing', () => {
    const decision = nextRate({ rate: 100 }, { answers: 10, throttled: 0, medianMs: 20, allowed: 100 }, limits);
    expect(decision).toMatchObject({ change: 'hold', state: { rate: 100 } });
  });

  it('cuts by a fifth on a 429, remembers where, and does not cut again for answers to requests sent before the cut', () => {
    const cut = nextRate({ rate: 200 }, { answers: 150, throttled: 3, allowed: 200 }, limits);
    expect(cut.change).toBe('down');
    expect(cut.state).toMatchObject({ rate: 160, throttledAt: 200 });
    const late = nextRate(cut.state, { answers: 100, throttled: 2, allowed: 160 }, limits);
    expect(late).toMatchObject({ change: 'hold', state: { rate: 160 } });
  });

  it('goes back quickly towards just below the throttled rate, then probes above it only slowly', () => {
    let state: RateState = { rate: 160, throttledAt: 200 };
    const rates: number[] = [];
    for (let w = 0; w < 10; w++) {
      state = nextRate(state, clean(state.rate), limits).state;
      rates.push(state.rate);
    }
    expect(rates[0]).toBeCloseTo(175); // half the way to 190
    expect(rates[4]).toBeGreaterThan(188);
    expect(Math.max(...rates)).toBeLessThan(200);
  });

  it('a probe that finds the same limit steps back just below it, not a fifth', () => {
    const hit = nextRate({ rate: 199, throttledAt: 200 }, { answers: 190, throttled: 1, allowed: 199 }, limits);
    expect(hit.state.rate).toBeCloseTo(199 * 0.95);
    expect(hit.state.throttledAt).toBe(199);
  });

  it('converges below a server limit: at least 90% of it, with under 2% of requests refused', () => {
    for (const limit of [37, 200, 800]) {
      const run = simulate(limit, 400);
      // Sustained: after the climb, and counting the windows lost to Retry-After pauses.
      const last = run.served.slice(200);
      const sustained = last.reduce((a, b) => a + b, 0) / last.length;
      expect(sustained).toBeGreaterThanOrEqual(0.9 * limit);
      expect(Math.max(...run.rates.slice(200))).toBeLessThanOrEqual(limit * 1.03);
      expect(run.throttled / run.sent).toBeLessThan(0.02);
    }
  });

  it('starts from a learned rate, so a restart does not climb again', () => {
    const learned = simulate(200, 200).state;
    const again = simulate(200, 50, initialRate(limits, learned));
    expect(Math.min(...again.rates)).toBeGreaterThan(150);
  });

  it('follows a limit that drops, and one that rises', () => {
    const before = simulate(400, 150).state;
    const dropped = simulate(100, 150, before);
    expect(dropped.state.rate).toBeLessThanOrEqual(100);
    expect(dropped.state.rate).toBeGreaterThan(80);
    const raised = simulate(300, 600, dropped.state);
    expect(raised.state.rate).toBeGreaterThan(250);
  });

  it('cuts when the median latency rises well above its floor', () => {
    let state: RateState = { rate: 100 };
    state = nextRate(state, clean(100, 20), limits).state;
    expect(state.latencyFloorMs).toBe(20);
    const slow = nextRate({ ...state, rate: 100 }, clean(100, 400), limits);
    expect(slow.change).toBe('down');
    expect(slow.state.rate).toBeCloseTo(90);
    // A small rise is noise, not a sign.
    expect(nextRate({ ...state, rate: 100 }, clean(100, 45), limits).change).not.toBe('down');
  });

  it('never goes above the ceiling nor below the floor', () => {
    let state: RateState = { rate: 900 };
    for (let w = 0; w < 20; w++) state = nextRate(state, clean(state.rate), limits).state;
    expect(state.rate).toBe(1000);
    state = { rate: 1 };
    for (let w = 0; w < 20; w++) state = nextRate({ ...state, cooldown: 0 }, { answers: 0, throttled: 1, allowed: state.rate }, limits).state;
    expect(state.rate).toBe(MIN_RATE);
  });

  it('reads the old fixed rate as the ceiling and the start, and starts modestly without one', () => {
    expect(rateLimitsOf({})).toEqual({ start: 10, ceiling: 100 });
    expect(rateLimitsOf({ requestsPerSecond: 400 })).toEqual({ start: 400, ceiling: 400 });
    expect(rateLimitsOf({ requestsPerSecond: 400, rate: { start: 20 } })).toEqual({ start: 20, ceiling: 400 });
    expect(rateLimitsOf({ rate: { start: 500, ceiling: 50 } })).toEqual({ start: 50, ceiling: 50 });
  });

  it("spreads the rate over short windows of BullMQ's limiter", () => {
    for (const rate of [0.5, 3, 15, 123, 200, 5000]) {
      const { max, duration } = limiterFor(rate);
      expect(max).toBeGreaterThanOrEqual(1);
      expect(duration).toBeLessThanOrEqual(Math.max(100, 1000 / rate) + 5);
      expect((max * 1000) / duration).toBeGreaterThan(rate * 0.98);
      expect((max * 1000) / duration).toBeLessThan(rate * 1.02);
    }
  });
});
