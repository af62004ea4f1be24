import type { Redis } from 'ioredis';
import type { KeyPrefix } from '../store/keys.js';
import type { Logger } from 'pino';
import type { SyncConfig } from '../config/schema.js';
import { createSource } from '../connectors/index.js';
import type { DirectorySource } from '../connectors/source.js';
import { MemorySyncState, RedisSyncState, type SyncState } from '../store/sync-state.js';
import { TeamViewerScimClient, type ScimClientOptions } from '../teamviewer/scim-client.js';
import type { SyncSides } from './prepare.js';
import type { BackoffPolicy } from '../net/retry.js';
import { RedisWrittenStore } from '../store/written.js';
import { createRequestPacer } from '../net/request-rate.js';
import { rateLimitsOf } from '../net/adaptive-rate.js';

/** `readRate`: the sync's request rate now (the learned one in the daemon); by default where the rate starts. */
export function createTeamViewerClient(
  target: SyncConfig['target'],
  onResponse?: ScimClientOptions['onResponse'],
  readRate: () => number = () => rateLimitsOf(target).start,
): TeamViewerScimClient {
  const options: ScimClientOptions = {
    baseUrl: target.baseUrl,
    token: target.token,
    timeoutMs: target.timeout,
    pageSize: target.pageSize,
    readConcurrency: target.readConcurrency ?? target.concurrency,
    // List pages are held to the same request rate as the sync's writes.
    pageSlot: createRequestPacer(readRate),
  };
  if (target.webApiBaseUrl) options.webApiBaseUrl = target.webApiBaseUrl;
  if (onResponse) options.onResponse = onResponse;
  return new TeamViewerScimClient(options);
}

/** Builds the edges of one sync from its config: Redis-backed state when a connection is given. */
export function buildSyncSides(
  sync: SyncConfig,
  deps: {
    redis?: Redis;
    prefix: KeyPrefix;
    log: Logger;
    now?: () => number;
    onResponse?: ScimClientOptions['onResponse'];
    /** The request rate in force (the daemon's learned rate), for the pages of a list. */
    readRate?: () => number;
    readBackoff?: BackoffPolicy;
    /** A source built elsewhere (a rehearsal against a scripted directory); by default the config's connector. */
    source?: DirectorySource;
  },
): SyncSides {
  const state: SyncState = deps.redis ? new RedisSyncState(deps.redis, deps.prefix, sync.name) : new MemorySyncState();
  const log = deps.log.child({ sync: sync.name });
  const now = deps.now ?? Date.now;
  const client = createTeamViewerClient(sync.target, deps.onResponse, deps.readRate);
  return {
    ...(deps.readBackoff ? { readBackoff: deps.readBackoff } : {}),
    sync,
    source: deps.source ?? createSource(sync.source, { state: state.source, log, now }),
    client,
    webApi: client,
    state,
    log,
    now,
    ...(deps.redis && sync.checkWrites ? { written: new RedisWrittenStore(deps.redis, deps.prefix, sync.name) } : {}),
  };
}
