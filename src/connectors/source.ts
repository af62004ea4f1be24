import type { Logger } from 'pino';
import type { DirectoryRead, UserLookup } from '../model/directory.js';
import type { ChangeFeed, HookReceiver } from './changes.js';
import type { BackoffPolicy } from '../net/retry.js';

export interface ReadOptions {
  signal?: AbortSignal;
  /** Incremental connectors may be asked for a full read (first cycle, drift correction). */
  mode?: 'full' | 'incremental';
}

export interface ConnectionCheck {
  ok: boolean;
  checks: { name: string; ok: boolean; detail: string }[];
}

/**
 * Where the users and groups in scope come from. A read either covers the whole scope or says it
 * does not (`complete: false`), or throws: it never returns a silently partial list.
 */
export interface DirectorySource {
  readonly kind: string;
  read(opts?: ReadOptions): Promise<DirectoryRead>;
  /** Like the IdPs' "Test connection": reads a little, writes nothing. */
  check(): Promise<ConnectionCheck>;
  /**
   * For groups that were linked but are no longer in the read: deleted in the IdP, or still there
   * and only out of scope. Sources that cannot tell leave it out, and such groups are left alone.
   */
  lookupGroups?(ids: readonly string[]): Promise<Map<string, 'deleted' | 'out-of-scope'>>;
  /**
   * One person, read now: by IdP id or by e-mail (either may be given; `ref` is whatever the operator
   * or the event named). Throws SourceReadError when the IdP cannot answer for sure.
   */
  readUser?(ref: string, opts?: { signal?: AbortSignal }): Promise<UserLookup>;
  /** The polled change feed, when the sync's config enables one. */
  changeFeed?(): Promise<ChangeFeed | undefined>;
  /** The pushed change feed (event hooks, change notifications), when the config enables one. */
  hookReceiver?(): Promise<HookReceiver | undefined>;
}

/**
 * Small per-sync key/value state a connector keeps between cycles (delta links, the last full
 * snapshot). Redis-backed in the daemon, in-memory for `tvsync plan` and tests.
 */
export interface SourceStateStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Thrown when a read cannot cover the scope; the cycle then plans no deactivation. */
export class SourceReadError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'SourceReadError';
  }
}

/** What every connector is built with. */
export interface SourceDeps {
  /** The sync's own connector state (delta links, snapshots); sources that keep none ignore it. */
  state: SourceStateStore;
  log: Logger;
  /** The clock, for full-read intervals (tests control it). */
  now?: () => number;
  /** Retries of throttled and failed requests (tests shorten them). */
  backoff?: BackoffPolicy;
}
