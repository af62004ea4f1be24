import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { outsideText, registerSecret } from '../net/secrets.js';

/** Receives every error event of a connection (see RedisOutage). */
export interface RedisErrorSink {
  error(err: unknown, source: string): void;
}

/**
 * Workers and blocking readers need maxRetriesPerRequest: null (BullMQ requires it); producers
 * fail fast instead of queueing commands while Redis is down. Every connection has an error
 * listener: without one ioredis prints a stack trace for each failed reconnect.
 */
export function connectRedis(url: string, role: 'worker' | 'producer', errors?: RedisErrorSink): Redis {
  registerUrlPassword(url);
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null }
      : // Operation workers issue a few small commands each; auto-pipelining sends those of one tick in one write.
        { maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5000, enableAutoPipelining: true };
  const redis = new Redis(url, { ...options, lazyConnect: false });
  redis.on('error', (err: unknown) => errors?.error(err, role));
  return redis;
}

/** Why Redis cannot be used, as a sentence an operator can act on (the URL's password redacted). */
export class RedisUnavailable extends Error {
  constructor(
    message: string,
    readonly kind: 'unreachable' | 'password' | 'database',
  ) {
    super(message);
    this.name = 'RedisUnavailable';
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What a failed connect or command says about the URL: a refused password, a missing database, or no answer. */
export function explainRedisFailure(url: string, errors: unknown[], timeoutMs: number): RedisUnavailable {
  const where = `Redis at ${describeRedisUrl(url)}`;
  const texts = errors.map(messageOf);
  const said = (pattern: RegExp) => texts.find((t) => pattern.test(t));
  const wrongPassword = said(/WRONGPASS|invalid password|invalid username-password/i);
  if (wrongPassword)
    return new RedisUnavailable(`${where} refused the user name or password in redis.url (${outsideText(wrongPassword, 120)}); fix them`, 'password');
  const noAuth = said(/NOAUTH|Authentication required/i);
  if (noAuth)
    return new RedisUnavailable(
      `${where} requires a password and redis.url gives none (${outsideText(noAuth, 120)}); add it as redis://:PASSWORD@host:port`,
      'password',
    );
  const badDb = said(/DB index is out of range|invalid DB index|ERR.*\bDB\b/i);
  if (badDb) {
    const db = databaseOf(url);
    return new RedisUnavailable(
      `${where} has no database ${db ?? '(as given)'} (${outsideText(badDb, 120)}); use a database number the server has (0-15 unless its "databases" setting says more)`,
      'database',
    );
  }
  // The connection's own error (ECONNREFUSED, ENOTFOUND) says more than the queued command's "Connection is closed".
  const cause = texts.find((t) => !/Connection is closed|max retries per request|timed out/i.test(t)) ?? texts[0];
  return new RedisUnavailable(
    `${where} does not answer${cause ? ` (${outsideText(cause, 160)})` : ` within ${Math.round(timeoutMs / 1000)} s`}; start it or fix redis.url`,
    'unreachable',
  );
}

function databaseOf(url: string): number | undefined {
  try {
    const path = new URL(url).pathname.replace(/^\//, '');
    return path === '' ? undefined : Number(path);
  } catch {
    return undefined;
  }
}

function registerUrlPassword(url: string): void {
  try {
    const { password } = new URL(url);
    if (password) registerSecret(decodeURIComponent(password));
  } catch {
    // An unparseable URL is refused by the config schema; ioredis reports it otherwise.
  }
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class TimedOut extends Error {}

/**
 * Proves a connection usable within `timeoutMs`: authenticated, on the database the URL names,
 * answering. ioredis reports a refused SELECT only as an error event and then works on database 0,
 * so the database is selected again here, where a refusal rejects.
 */
export async function verifyRedis(redis: Redis, url: string, timeoutMs: number): Promise<void> {
  const seen: unknown[] = [];
  const listener = (err: unknown) => seen.push(err);
  redis.on('error', listener);
  try {
    await withTimeout(
      (async () => {
        if (redis.status === 'wait') await redis.connect();
        const db = redis.options.db ?? 0;
        if (db !== 0) await redis.select(db);
        await redis.ping();
      })(),
      timeoutMs,
      () => new TimedOut(`no answer within ${Math.round(timeoutMs / 1000)} s`),
    );
  } catch (err) {
    // The error events come first: they name the cause (WRONGPASS, ECONNREFUSED).
    const failure = explainRedisFailure(url, [...seen, err], timeoutMs);
    if (err instanceof TimedOut && failure.kind === 'unreachable' && seen.length === 0) {
      throw new RedisUnavailable(
        `Redis at ${describeRedisUrl(url)} accepts connections but does not answer within ${Math.round(timeoutMs / 1000)} s; is it overloaded or something else on that port?`,
        'unreachable',
      );
    }
    throw failure;
  } finally {
    redis.off('error', listener);
  }
}

/** A connection for a command that runs once: no reconnects; throws RedisUnavailable. */
export async function openRedis(url: string, timeoutMs = 5000): Promise<Redis> {
  registerUrlPassword(url);
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: timeoutMs, retryStrategy: () => null, enableOfflineQueue: false });
  redis.on('error', () => {
    // verifyRedis reads the errors of the connect; later ones reject the command that met them.
  });
  try {
    await verifyRedis(redis, url, timeoutMs);
    return redis;
  } catch (err) {
    redis.disconnect();
    throw err;
  }
}

/** A connection if Redis can be used within the time, else undefined (for commands that can do without). */
export async function tryRedis(url: string, timeoutMs = 2000): Promise<Redis | undefined> {
  try {
    return await openRedis(url, timeoutMs);
  } catch {
    return undefined;
  }
}

/** QUIT, or a plain disconnect when Redis does not take it in time (it is down, or stalled). */
export async function closeRedis(redis: Redis, timeoutMs = 1000): Promise<void> {
  try {
    await withTimeout(redis.quit(), timeoutMs, () => new Error('quit timed out'));
  } catch {
    redis.disconnect();
  }
}

/** Errors that say Redis cannot be reached right now, as opposed to a command that failed. */
export function isConnectionError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/.test(code)) return true;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|Connection is closed|Stream isn't writeable|max retries per request|Socket closed unexpectedly|^LOADING|^MASTERDOWN|^READONLY/i.test(
    messageOf(err),
  );
}

/**
 * One log line when Redis becomes unreachable and one when it answers again (with how long it was
 * away), however many connections fail and retry in between. Other errors (a job whose lock or
 * key is gone) are logged as they come.
 */
export class RedisOutage implements RedisErrorSink {
  private since: number | undefined;
  private lastErrorAt = 0;
  /** The first answer after the last connection error. */
  private answeredAt: number | undefined;
  private firstError = '';

  constructor(
    private readonly log: Logger,
    private readonly url: string,
    /** An answer this soon after a connection error does not end the outage: other connections may still be reconnecting. */
    private readonly quietMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get down(): boolean {
    return this.since !== undefined;
  }

  error(err: unknown, source: string): void {
    if (!isConnectionError(err)) {
      this.log.error({ err: outsideText(messageOf(err)) }, `${source} error`);
      return;
    }
    this.lastErrorAt = this.now();
    this.answeredAt = undefined;
    if (this.since !== undefined) return;
    this.since = this.lastErrorAt;
    this.firstError = outsideText(messageOf(err), 160);
    this.log.error({ redis: describeRedisUrl(this.url), err: this.firstError }, 'Redis is unreachable; retrying until it answers');
  }

  /** Redis answered a command: the outage, if any, is over once no connection has failed for a moment. */
  answered(): void {
    if (this.since === undefined) return;
    const now = this.now();
    this.answeredAt ??= now;
    if (now - this.lastErrorAt < this.quietMs) return;
    const downMs = this.answeredAt - this.since;
    this.since = undefined;
    this.answeredAt = undefined;
    this.log.info({ redis: describeRedisUrl(this.url), downMs, firstError: this.firstError }, 'Redis answers again');
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
