import { describe, expect, it } from 'vitest';
import { ProgressPoll } from '../../src/runtime/cycle.js';

describe('the cycle’s look at its operations’ progress', () => {
  it('starts short and doubles while nothing is known, up to pollMs', () => {
    const poll = new ProgressPoll(250, 1000);
    expect([0, 0, 0, 0, 0].map((recorded, i) => poll.next(recorded, i * 10))).toEqual([20, 40, 80, 160, 250]);
  });

  it('times the next look for when the last outcome is due at the pace so far', () => {
    const poll = new ProgressPoll(250, 1000);
    expect(poll.next(0, 0)).toBe(20);
    // 100 outcomes in 20 ms: the other 900 are due in 180 ms.
    expect(poll.next(100, 20)).toBe(180);
    // 900 by 180 ms: the last 100 are due in 20 ms.
    expect(poll.next(900, 180)).toBe(20);
    // None came since: the wait doubles rather than looking every few milliseconds.
    expect(poll.next(900, 200)).toBe(40);
    expect(poll.next(900, 240)).toBe(80);
  });

  it('never waits longer than pollMs, nor shorter than 10 ms', () => {
    const poll = new ProgressPoll(250, 100_000);
    poll.next(0, 0);
    expect(poll.next(10, 1000)).toBe(250);
    const quick = new ProgressPoll(250, 1000);
    quick.next(0, 0);
    expect(quick.next(999, 5)).toBe(10);
  });

  it('waits pollMs while Redis does not answer', () => {
    const poll = new ProgressPoll(250, 1000);
    expect(poll.next(undefined, 0)).toBe(250);
  });
});
