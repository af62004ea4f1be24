import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';

/** Polls `probe` until it gives a value (anything but undefined or false), and returns it; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Waits until `queue` has no job open. A job's visible effect (a write TeamViewer holds) comes
 * before its bookkeeping (a report handed over, an approval used), so a test that reads the
 * bookkeeping waits for the job itself to end.
 */
export async function waitForIdle(what: string, queue: Pick<Queue, 'getJobCounts'>): Promise<void> {
  await waitFor(what, async () => {
    const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
    return Object.values(counts).every((n) => n === 0) || undefined;
  });
}
