import { setTimeout as sleep } from 'node:timers/promises';

/** Runs a task when its turn comes; the shape of the limiters in limiter.ts, so either fits where a slot is asked for. */
export type RequestSlot = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * Starts at most `perSecond` tasks a second on average, with a burst of one second's worth, so a
 * small list goes out at once and a large one is spread out. Turns are handed out in call order.
 * Only the start is paced: how long a task runs is not the pacer's business.
 */
export function createRequestPacer(perSecond: number, now: () => number = () => performance.now()): RequestSlot {
  if (!(perSecond > 0)) throw new RangeError('perSecond must be positive');
  const capacity = Math.max(1, Math.floor(perSecond));
  const msPerToken = 1000 / perSecond;
  let tokens = capacity;
  let refilledAt = now();
  let queue: Promise<void> = Promise.resolve();

  const refill = () => {
    const at = now();
    tokens = Math.min(capacity, tokens + (at - refilledAt) / msPerToken);
    refilledAt = at;
  };
  const take = async () => {
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
