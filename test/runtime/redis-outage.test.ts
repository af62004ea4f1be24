import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observe/log.js';
import { RedisOutage, isConnectionError } from '../../src/runtime/redis.js';

function capture() {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
  return { lines, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), log };
}

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });

describe('RedisOutage', () => {
  it('logs one line when Redis goes away and one, with the duration, when it answers again', () => {
    let now = 1_000;
    const { entries, log } = capture();
    const outage = new RedisOutage(log, 'redis://:s3cret-redis-pw@redis:6379/2', 1000, () => now);
    for (let i = 0; i < 50; i++) {
      outage.error(i % 2 ? refused : new Error('Connection is closed.'), i % 3 ? 'worker' : 'producer');
      now += 100;
    }
    expect(outage.down).toBe(true);
    // An answer while other connections still fail does not end it.
    outage.answered();
    expect(outage.down).toBe(true);
    now += 1500;
    outage.answered();
    expect(outage.down).toBe(false);
    outage.answered();
    expect(entries()).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'Redis is unreachable; retrying until it answers',
        redis: 'redis://:***@redis:6379/2',
        err: 'Connection is closed.',
      }),
      expect.objectContaining({ level: 30, msg: 'Redis answers again', downMs: 5000 }),
    ]);
  });

  it('logs other errors as they come', () => {
    const { entries, log } = capture();
    const outage = new RedisOutage(log, 'redis://127.0.0.1:6379');
    outage.error(new Error('Missing lock for job 42. moveToFinished'), 'worker');
    expect(outage.down).toBe(false);
    expect(entries()).toEqual([expect.objectContaining({ level: 50, msg: 'worker error', err: 'Missing lock for job 42. moveToFinished' })]);
  });

  it('tells connection errors from failed commands', () => {
    expect(isConnectionError(refused)).toBe(true);
    expect(isConnectionError(new Error('Reached the max retries per request limit (which is 2).'))).toBe(true);
    expect(isConnectionError(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(true);
    expect(isConnectionError(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(isConnectionError(new Error('Missing key for job 1. moveToDelayed'))).toBe(false);
  });
});
