import type { Redis } from 'ioredis';
import { keysUnder } from './keys.js';

/** Deletes every key under the prefix, SCAN by SCAN (not KEYS), so a shared Redis is never blocked. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', keysUnder(prefix), 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}
