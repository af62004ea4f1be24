import { Redis } from 'ioredis';
import { dropPrefix as dropKeysUnder } from '../../src/store/drop-prefix.js';

export const REDIS_URL = process.env.TVSYNC_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own per test file, so files running in parallel never see each other. */
export function testPrefix(name: string): string {
  return `tvsync-test-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Deletes every key under the prefix, on a connection of its own. */
export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    await dropKeysUnder(redis, prefix);
  } finally {
    await redis.quit();
  }
}
