import { Redis, type RedisOptions } from 'ioredis';

/**
 * Workers and blocking readers need maxRetriesPerRequest: null (BullMQ requires it); producers
 * and CLI commands fail fast instead of queueing commands while Redis is down.
 */
export function connectRedis(url: string, role: 'worker' | 'producer'): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null }
      : // Operation workers issue a few small commands each; auto-pipelining sends those of one tick in one write.
        { maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5000, enableAutoPipelining: true };
  return new Redis(url, { ...options, lazyConnect: false });
}

/** A connection if Redis answers within the time, else undefined (for commands that can do without). */
export async function tryRedis(url: string, timeoutMs = 2000): Promise<Redis | undefined> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: timeoutMs, retryStrategy: () => null, enableOfflineQueue: false });
  redis.on('error', () => {
    // The failed connect is reported by the caller; ioredis would otherwise print it unasked.
  });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch {
    redis.disconnect();
    return undefined;
  }
}

/** Redacts the password of a redis:// URL for messages. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis (unparseable URL)';
  }
}
