import { Cluster, type Redis } from 'ioredis';
import { keysUnder, type KeyPrefix } from './keys.js';

/**
 * Deletes every key under the prefix, SCAN by SCAN (not KEYS), so a shared Redis is never blocked.
 * On a Cluster each master is scanned, and keys are deleted one by one (one DEL may not span slots).
 */
export async function dropPrefix(redis: Redis | Cluster, prefix: KeyPrefix): Promise<void> {
  // A Cluster client may come typed as a Redis (runtime/redis.ts): look at what it is.
  const client: unknown = redis;
  if (client instanceof Cluster) {
    for (const node of client.nodes('master')) await dropOn(node, prefix, (keys) => Promise.all(keys.map((key) => client.unlink(key))));
    return;
  }
  await dropOn(redis as Redis, prefix, (keys) => (redis as Redis).del(...keys));
}

async function dropOn(node: Redis, prefix: KeyPrefix, drop: (keys: string[]) => Promise<unknown>): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', keysUnder(prefix), 'COUNT', 1000);
    cursor = next;
    if (keys.length) await drop(keys);
  } while (cursor !== '0');
}
