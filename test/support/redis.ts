import { Redis } from 'ioredis';

export const REDIS_URL = process.env.TVSYNC_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own per test file, so files running in parallel never see each other. */
export function testPrefix(name: string): string {
  return `tvsync-test-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Deletes every key under the prefix (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}
