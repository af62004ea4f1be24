import { setTimeout as sleep } from 'node:timers/promises';

/** Runs a task when its turn comes; the shape of the limiters in limiter.ts, so either fits where a slot is asked for. */
export type RequestSlot = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * Starts at most `perSecond` tasks a second on average, with a burst of one second's worth, so a
 * small list goes out at once and a large one is spread out. Turns are handed out in call order.
 * Only the start is paced: how long a task runs is not the pacer's business. The rate may be a
 * function, read at every turn: the sync's learned rate, which changes while a list is read.
 */
export function createRequestPacer(perSecond: number | (() => number), now: () => number = () => performance.now()): RequestSlot {
  const rateNow = typeof perSecond === 'function' ? perSecond : () => perSecond;
  if (!(rateNow() > 0)) throw new RangeError('perSecond must be positive');
  let tokens = Math.max(1, Math.floor(rateNow()));
  let refilledAt = now();
  let queue: Promise<void> = Promise.resolve();

  const take = async () => {
    const rate = Math.max(rateNow(), Number.MIN_VALUE);
    const capacity = Math.max(1, Math.floor(rate));
    const msPerToken = 1000 / rate;
    const refill = () => {
      const at = now();
      tokens = Math.min(capacity, tokens + (at - refilledAt) / msPerToken);
      refilledAt = at;
    };
    refill();
    if (tokens < 1) {
      await sleep(Math.ceil((1 - tokens) * msPerToken));
      refill();
    }
    tokens -= 1;
  };

  return async (task) => {
    const turn = queue.then(take);
    queue = turn;
    await turn;
    return task();
  };
}
