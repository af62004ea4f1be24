import type { UserLookup } from '../model/directory.js';

/*
 * The fast lane's edge: how a connector notices that something changed in the IdP. A change is only
 * a hint: tvsync re-reads the person (DirectorySource.readUser) and decides with the same rules as
 * a cycle, so a hint that is late, repeated or wrong costs a read, never a wrong write.
 */

export interface ChangeHint {
  /** The IdP user to re-read. Absent: the change concerns more than one person (a group renamed, a group assigned), so a full cycle runs. */
  userId?: string;
  /** Why a full cycle is asked for, when `userId` is absent. */
  fullCycle?: string;
  /** When the IdP says the change happened (ms since epoch); the detection lag is measured from it. */
  atMs: number;
  /** The IdP's own name of the event (`user.lifecycle.deactivate`, `users delta`, `user_update`…), for logs and metrics. */
  what: string;
  /** The IdP's event id, where it has one (duplicates are dropped on it). */
  eventId?: string;
}

export interface ChangeBatch {
  hints: ChangeHint[];
  /** Moves the stored position past this batch. Called only after every hint was queued: a crash before it re-reads the batch. */
  commit(): Promise<void>;
  /** Requests this poll sent to the IdP (metrics: what the fast lane costs when nothing changes). */
  requests: number;
}

/** A polled change feed (Okta System Log, Graph delta rounds, JumpCloud Directory Insights, a new file export). */
export interface ChangeFeed {
  /** Short stable name for metrics and status: `okta-system-log`, `entra-delta`, `jumpcloud-insights`, `file-export`. */
  readonly name: string;
  /** How often it is polled (ms). */
  readonly everyMs: number;
  /**
   * What changed since the stored position. The first poll ever only sets the position to now
   * (history is the full cycle's business). Throws when the IdP cannot be read; the position stays.
   */
  poll(opts?: { signal?: AbortSignal }): Promise<ChangeBatch>;
}

/** An inbound request to a hook endpoint, as the HTTP layer hands it over (the body unparsed, at most 1 MiB). */
export interface HookRequest {
  method: string;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: string;
}

export interface HookAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A pushed change feed (Okta event hooks, Graph change notifications): verified, then turned into hints. */
export interface HookReceiver {
  /** Path segment under /hooks/{sync}/: `okta` or `entra`. */
  readonly name: string;
  /** Answers the request (verification handshakes included) and returns the hints it carried; never throws for a bad request. */
  receive(req: HookRequest): Promise<{ answer: HookAnswer; hints: ChangeHint[] }>;
}

export type { UserLookup };
