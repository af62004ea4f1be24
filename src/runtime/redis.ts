import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisConfig } from '../config/schema.js';
import { outsideText, registerSecret } from '../net/secrets.js';

/** Receives every error event of a connection (see RedisOutage). */
export interface RedisErrorSink {
  error(err: unknown, source: string): void;
}

/** Where Redis is: a redis:// URL, or the config's `redis` section (one Redis, Sentinels or a Cluster). */
export type RedisTarget = string | RedisConfig;

interface Topology {
  /** One Redis at a URL, the master the Sentinels name, or a Cluster. */
  kind: 'url' | 'sentinel' | 'cluster';
  url?: string;
  config?: RedisConfig;
}

function topologyOf(target: RedisTarget): Topology {
  if (typeof target === 'string') return { kind: 'url', url: target };
  if (target.sentinel) return { kind: 'sentinel', config: target };
  if (target.cluster) return { kind: 'cluster', config: target };
  return { kind: 'url', url: target.url ?? 'redis://127.0.0.1:6379', config: target };
}

function hostPort(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(node.slice(at + 1)) };
}

/** The data nodes' credentials and TLS, shared by Sentinel and Cluster connections. */
function nodeOptions(config: RedisConfig): RedisOptions {
  if (config.password) registerSecret(config.password);
  return {
    ...(config.password ? { password: config.password } : {}),
    ...(config.username ? { username: config.username } : {}),
    ...(config.tls ? { tls: {} } : {}),
  };
}

/**
 * A client for the target. With Sentinels it asks them for the master on every (re)connect and
 * follows a failover; a node that turned replica answers READONLY, which reconnects and resends.
 * A Cluster client routes each command to the master of its key's slot; it is typed as a Redis
 * because the stores use only keyed commands (each script and transaction on one sync's keys,
 * which share a slot); the few whole-server commands (SCAN, SELECT) check for a Cluster.
 */
function createClient(target: RedisTarget, options: RedisOptions, cluster: Partial<ClusterOptions> = {}): Redis {
  const topology = topologyOf(target);
  const config = topology.config;
  if (topology.kind === 'cluster' && config?.cluster) {
    const client = new Cluster(config.cluster.nodes.map(hostPort), {
      ...cluster,
      ...(options.enableAutoPipelining ? { enableAutoPipelining: true } : {}),
      ...(options.enableOfflineQueue !== undefined ? { enableOfflineQueue: options.enableOfflineQueue } : {}),
      ...(options.lazyConnect ? { lazyConnect: true } : {}),
      // Slots move during a failover: retry the command once the new master has them.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 500,
      retryDelayOnTryAgain: 200,
      redisOptions: {
        ...nodeOptions(config),
        ...(options.maxRetriesPerRequest !== undefined ? { maxRetriesPerRequest: options.maxRetriesPerRequest } : {}),
        ...(options.connectTimeout !== undefined ? { connectTimeout: options.connectTimeout } : {}),
      },
    });
    return client as unknown as Redis;
  }
  if (topology.kind === 'sentinel' && config?.sentinel) {
    const sentinel = config.sentinel;
    if (sentinel.password) registerSecret(sentinel.password);
    return new Redis({
      ...options,
      ...nodeOptions(config),
      sentinels: sentinel.nodes.map(hostPort),
      name: sentinel.name,
      ...(sentinel.password ? { sentinelPassword: sentinel.password } : {}),
      ...(config.db !== undefined ? { db: config.db } : {}),
      // ioredis applies `tls` to the master it was told of only with this flag.
      ...(config.tls ? { enableTLSForSentinelMode: true } : {}),
      // A one-shot connection gives up with its retries; a lasting one hears +switch-master from
      // the Sentinels at once instead of at the next failed command.
      ...(options.retryStrategy ? { sentinelRetryStrategy: options.retryStrategy } : { failoverDetector: true }),
      reconnectOnError: (err) => (/^READONLY/.test(err.message) ? 2 : false),
    });
  }
  const url = topology.url ?? 'redis://127.0.0.1:6379';
  registerUrlPassword(url);
  return new Redis(url, options);
}

/** A client of a Redis Cluster (for the few commands that must visit every master). */
export function asCluster(redis: Redis): Cluster | undefined {
  const client: unknown = redis;
  return client instanceof Cluster ? client : undefined;
}

/**
 * Workers and blocking readers need maxRetriesPerRequest: null (BullMQ requires it); producers
 * fail fast instead of queueing commands while Redis is down. Every connection has an error
 * listener: without one ioredis prints a stack trace for each failed reconnect.
 */
export function connectRedis(target: RedisTarget, role: 'worker' | 'producer', errors?: RedisErrorSink): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null }
      : // Operation workers issue a few small commands each; auto-pipelining sends those of one tick in one write.
        { maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5000, enableAutoPipelining: true };
  const redis = createClient(target, { ...options, lazyConnect: false });
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

/** What a failed connect or command says about the target: a refused password, a missing database, or no answer. */
export function explainRedisFailure(target: RedisTarget, errors: unknown[], timeoutMs: number): RedisUnavailable {
  const topology = topologyOf(target);
  const where = `Redis at ${describeRedis(target)}`;
  const key = topology.kind === 'url' ? 'redis.url' : `redis.${topology.kind}`;
  const texts = errors.map(messageOf);
  const said = (pattern: RegExp) => texts.find((t) => pattern.test(t));
  const wrongPassword = said(/WRONGPASS|invalid password|invalid username-password/i);
  if (wrongPassword) {
    const what = topology.kind === 'url' ? 'in redis.url' : 'in redis.password/redis.username (or redis.sentinel.password)';
    return new RedisUnavailable(`${where} refused the user name or password ${what} (${outsideText(wrongPassword, 120)}); fix them`, 'password');
  }
  const noAuth = said(/NOAUTH|Authentication required/i);
  if (noAuth)
    return new RedisUnavailable(
      topology.kind === 'url'
        ? `${where} requires a password and redis.url gives none (${outsideText(noAuth, 120)}); add it as redis://:PASSWORD@host:port`
        : `${where} requires a password and the config gives none (${outsideText(noAuth, 120)}); set redis.password (or redis.sentinel.password for the Sentinels)`,
      'password',
    );
  const badDb = said(/DB index is out of range|invalid DB index|ERR.*\bDB\b/i);
  if (badDb) {
    const db = topology.url !== undefined ? databaseOf(topology.url) : topology.config?.db;
    return new RedisUnavailable(
      `${where} has no database ${db ?? '(as given)'} (${outsideText(badDb, 120)}); use a database number the server has (0-15 unless its "databases" setting says more)`,
      'database',
    );
  }
  // The connection's own error (ECONNREFUSED, ENOTFOUND) says more than the queued command's "Connection is closed".
  const cause = texts.find((t) => !/Connection is closed|max retries per request|timed out/i.test(t)) ?? texts[0];
  return new RedisUnavailable(
    `${where} does not answer${cause ? ` (${outsideText(cause, 160)})` : ` within ${Math.round(timeoutMs / 1000)} s`}; start it or fix ${key}`,
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
export async function verifyRedis(redis: Redis, target: RedisTarget, timeoutMs: number): Promise<void> {
  const seen: unknown[] = [];
  const listener = (err: unknown) => seen.push(err);
  redis.on('error', listener);
  try {
    await withTimeout(
      (async () => {
        if (redis.status === 'wait') await redis.connect();
        const cluster = asCluster(redis);
        if (cluster) {
          // Every master must answer: a sync's keys may live on any of them.
          await Promise.all(cluster.nodes('master').map((node) => node.ping()));
          return;
        }
        const db = redis.options.db ?? 0;
        if (db !== 0) await redis.select(db);
        await redis.ping();
      })(),
      timeoutMs,
      () => new TimedOut(`no answer within ${Math.round(timeoutMs / 1000)} s`),
    );
  } catch (err) {
    // The error events come first: they name the cause (WRONGPASS, ECONNREFUSED).
    const failure = explainRedisFailure(target, [...seen, err], timeoutMs);
    if (err instanceof TimedOut && failure.kind === 'unreachable' && seen.length === 0) {
      throw new RedisUnavailable(
        `Redis at ${describeRedis(target)} accepts connections but does not answer within ${Math.round(timeoutMs / 1000)} s; is it overloaded or something else on that port?`,
        'unreachable',
      );
    }
    throw failure;
  } finally {
    redis.off('error', listener);
  }
}

/** A connection for a command that runs once: no reconnects; throws RedisUnavailable. */
export async function openRedis(target: RedisTarget, timeoutMs = 5000): Promise<Redis> {
  const redis = createClient(
    target,
    { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: timeoutMs, retryStrategy: () => null, enableOfflineQueue: false },
    { clusterRetryStrategy: () => null },
  );
  redis.on('error', () => {
    // verifyRedis reads the errors of the connect; later ones reject the command that met them.
  });
  try {
    await verifyRedis(redis, target, timeoutMs);
    return redis;
  } catch (err) {
    redis.disconnect();
    throw err;
  }
}

/** A connection if Redis can be used within the time, else undefined (for commands that can do without). */
export async function tryRedis(target: RedisTarget, timeoutMs = 2000): Promise<Redis | undefined> {
  try {
    return await openRedis(target, timeoutMs);
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

/**
 * Errors that say Redis cannot be reached right now, as opposed to a command that failed. A
 * failover looks like this for a while: the old master gone or turned replica (READONLY), the
 * Sentinels naming no master yet, a Cluster moving slots (CLUSTERDOWN, TRYAGAIN, redirections).
 */
export function isConnectionError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/.test(code)) return true;
  if (err instanceof Error && err.name === 'ClusterAllFailedError') return true;
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|Connection is closed|Stream isn't writeable|max retries per request|Socket closed unexpectedly|^LOADING|^MASTERDOWN|^READONLY|^CLUSTERDOWN|^TRYAGAIN|^MOVED|^ASK\b|Too many Cluster redirections|Failed to refresh slots cache|Cluster isn't ready|None of startup nodes is available|All sentinels are unreachable|None of the sentinels are available|master .* is unreachable|^NOREPLICAS|^UNBLOCKED/i.test(
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
    private readonly target: RedisTarget,
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
    this.log.error({ redis: describeRedis(this.target), err: this.firstError }, 'Redis is unreachable; retrying until it answers');
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
    this.log.info({ redis: describeRedis(this.target), downMs, firstError: this.firstError }, 'Redis answers again');
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

/** Where Redis is, for messages: the URL with its password redacted, the Sentinels' master, or the Cluster's nodes. */
export function describeRedis(target: RedisTarget): string {
  const topology = topologyOf(target);
  const sentinel = topology.config?.sentinel;
  if (topology.kind === 'sentinel' && sentinel) return `master "${sentinel.name}" of Sentinels ${sentinel.nodes.join(', ')}`;
  if (topology.kind === 'cluster' && topology.config?.cluster) return `Cluster ${topology.config.cluster.nodes.join(', ')}`;
  return describeRedisUrl(topology.url ?? '');
}
