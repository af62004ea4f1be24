/**
 * Every Redis key tvsync names itself, in one place. A sync's keys live under
 * `<prefix>:sync:<name>:`, so syncs never see each other's state and one prefix holds a whole
 * deployment. BullMQ names its own keys from the queue names (runtime/queues.ts).
 *
 * On a Redis Cluster the sync's name is a hash tag (`<prefix>:sync:{<name>}:…`, queues under
 * `<prefix>:{<name>}:`): every key of a sync hashes to one slot, so its scripts, transactions and
 * BullMQ's scripts run on one node, while different syncs spread over the masters. One Redis and
 * Sentinel keep the plain names, so a deployment that moves between them keeps its state.
 */

/** A configured prefix: plain, or hash-tagged per sync (Cluster). */
export type KeyPrefix = string | { readonly base: string; readonly hashTagged: true };

function baseOf(prefix: KeyPrefix): string {
  return typeof prefix === 'string' ? prefix : prefix.base;
}

function syncKey(prefix: KeyPrefix, sync: string, ...parts: string[]): string {
  return [baseOf(prefix), 'sync', typeof prefix === 'string' ? sync : `{${sync}}`, ...parts].join(':');
}

/** BullMQ's prefix for the queues of one sync: the plain prefix, or one holding the sync's hash tag. */
export function queuePrefix(prefix: KeyPrefix, sync: string): string {
  return typeof prefix === 'string' ? prefix : `${prefix.base}:{${sync}}`;
}

/** The keys of one sync. */
export function syncKeys(prefix: KeyPrefix, sync: string) {
  return {
    /** Hash: IdP user id → TeamViewer user id. */
    links: syncKey(prefix, sync, 'links'),
    /** Hash: IdP group id → TeamViewer group id. */
    groupLinks: syncKey(prefix, sync, 'group-links'),
    /** Hash: `<role id>|usergroup|<group id>` or `<role id>|account|<user id>` → when tvsync made that role assignment. */
    roleAssignments: syncKey(prefix, sync, 'role-assignments'),
    /** Hash: lower-cased address → when and why a create met an account outside the company. */
    outsideCompany: syncKey(prefix, sync, 'outside-company'),
    /** Hash: TeamViewer user id → the deactivation tvsync applied (IdP id, when); outlives the link, for recycled addresses. */
    deactivated: syncKey(prefix, sync, 'deactivated'),
    /** String: one value of the connector's own state (delta links, snapshots). */
    source: (key: string) => syncKey(prefix, sync, 'source', key),
    /** Sets of TeamViewer ids a person released from the thresholds. */
    approvedDeactivations: syncKey(prefix, sync, 'approved-deactivations'),
    approvedGroupDeletions: syncKey(prefix, sync, 'approved-group-deletions'),
    approvedMemberRemovals: syncKey(prefix, sync, 'approved-member-removals'),
    /**
     * What tvsync's writes left objects in, checked by the next read: hash TeamViewer user id →
     * packed user record; hash TeamViewer group id → group record; per group, hash member id → record.
     */
    written: {
      users: syncKey(prefix, sync, 'written', 'users'),
      groups: syncKey(prefix, sync, 'written', 'groups'),
      members: (tvGroupId: string) => syncKey(prefix, sync, 'written', 'members', tvGroupId),
    },
    /** Set of TeamViewer user ids whose recycled address a person released. */
    approvedRecycled: syncKey(prefix, sync, 'approved-recycled'),
    /** String: the pause TeamViewer's rate limit imposed, expiring with it. */
    rateLimitPause: syncKey(prefix, sync, 'rate-limit-pause'),
    /** String: the request rate learned from TeamViewer's answers, shared by the sync's replicas. */
    requestRate: syncKey(prefix, sync, 'request-rate'),
    /** String: the quarantine record. */
    health: syncKey(prefix, sync, 'health'),
    /** String: the marker whose loss says Redis lost its data. */
    epoch: syncKey(prefix, sync, 'epoch'),
    /** String with a short expiry: when a worker process of the sync last said it runs (tvsync sync-now asks). */
    workerSeen: syncKey(prefix, sync, 'worker-seen'),
    /** Hash: one cycle's status, plan and report. */
    cycle: (cycleId: string) => syncKey(prefix, sync, 'cycle', cycleId),
    /** Hash: one cycle's operation outcomes, by operation key. */
    cycleResults: (cycleId: string) => syncKey(prefix, sync, 'cycle', cycleId, 'results'),
    /** List: the last reports, newest first. */
    reports: syncKey(prefix, sync, 'reports'),
    /** The fast lane: removals in the sliding window (sorted sets by time), its interlock with cycles, what it held, its last results, its feeds. */
    fastLane: {
      deactivations: syncKey(prefix, sync, 'fast-lane', 'deactivations'),
      memberRemovals: syncKey(prefix, sync, 'fast-lane', 'member-removals'),
      /** String with a short expiry, renewed while a cycle of the sync runs. */
      cycleRunning: syncKey(prefix, sync, 'fast-lane', 'cycle-running'),
      /** Sorted set: user syncs applying now, scored by when their claim expires. */
      applying: syncKey(prefix, sync, 'fast-lane', 'applying'),
      /** Hash: TeamViewer user id → the deactivation held for approval. */
      held: syncKey(prefix, sync, 'fast-lane', 'held'),
      /** List: the last user-sync reports, newest first. */
      reports: syncKey(prefix, sync, 'fast-lane', 'reports'),
      /** Hash: feed name → its last poll. */
      feeds: syncKey(prefix, sync, 'fast-lane', 'feeds'),
      /** String: the user sync writing for one person now (expires). */
      personLock: (person: string) => syncKey(prefix, sync, 'fast-lane', 'person', person),
      /** Hash: person → when the IdP was read for the last user sync that wrote for them. */
      stamps: syncKey(prefix, sync, 'fast-lane', 'stamps'),
    },
    /** Hash: alert condition → what was alerted and since when; and the lock one evaluation holds. */
    alerts: syncKey(prefix, sync, 'alerts'),
    alertsLock: syncKey(prefix, sync, 'alerts', 'lock'),
    /** The provisioning log: its stream, and the sorted set that indexes it by e-mail. */
    provisioningLog: { stream: syncKey(prefix, sync, 'provisioning-log'), index: syncKey(prefix, sync, 'provisioning-log', 'by-email') },
  };
}

/** The SCAN pattern of every key under a prefix. */
export function keysUnder(prefix: KeyPrefix): string {
  return `${baseOf(prefix)}:*`;
}
