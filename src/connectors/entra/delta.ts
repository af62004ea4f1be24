import type { DirectoryUser } from '../../model/directory.js';
import { SyncError } from '../../model/failure.js';
import { payloadReason } from '../../net/payload.js';
import { FullReadNeeded, LIST_USERS, READ_GROUPS, type EntraGraph } from './client.js';
import type { EntraSourceConfig } from './config.js';
import { GROUP_DELTA_FIELDS, PAGE_SIZE, USER_FIELDS, groupSchema, objectRefSchema, toDirectoryUser } from './wire.js';

/**
 * Graph's change feed: a delta round per kind, from the link the last round ended with to a new
 * one. A change that cannot be read, or a link Graph no longer knows, means reading everything.
 */

export type UserChange = { kind: 'updated'; user: DirectoryUser } | { kind: 'removed' } | { kind: 'unreadable'; reason: string };

/** The link of the latest state, without its changes: a full read starts the next round from here. */
export async function latestDeltaLink(graph: EntraGraph, kind: 'users' | 'groups', signal?: AbortSignal): Promise<string> {
  const call = kind === 'users' ? LIST_USERS : READ_GROUPS;
  const select = kind === 'users' ? USER_FIELDS : GROUP_DELTA_FIELDS;
  let link: string | undefined;
  for await (const page of graph.pages(call, `/${kind}/delta`, { select, query: { $deltaToken: 'latest' } }, signal)) {
    link = page['@odata.deltaLink'] ?? link;
  }
  if (!link) throw new SyncError('invalid', `${call.what}: Graph sent no delta link for ${kind}`);
  return link;
}

/** What changed for each user since `link`; the last entry for a user wins. */
export async function readUserChanges(
  graph: EntraGraph,
  link: string,
  emailAttribute: EntraSourceConfig['emailAttribute'],
  signal?: AbortSignal,
): Promise<{ changes: Map<string, UserChange>; link: string }> {
  const changes = new Map<string, UserChange>();
  let next: string | undefined;
  for await (const page of graph.pages(LIST_USERS, link, { headers: { Prefer: `odata.maxpagesize=${PAGE_SIZE}` } }, signal)) {
    for (const raw of page.value) {
      const ref = objectRefSchema.safeParse(raw);
      if (!ref.success) throw new FullReadNeeded(`a user change could not be read (${payloadReason(ref.error)})`);
      if (ref.data['@removed']) {
        changes.set(ref.data.id, { kind: 'removed' });
        continue;
      }
      const parsed = toDirectoryUser(raw, emailAttribute);
      changes.set(ref.data.id, 'user' in parsed ? { kind: 'updated', user: parsed.user } : { kind: 'unreadable', reason: parsed.reason });
    }
    next = page['@odata.deltaLink'] ?? next;
  }
  if (!next) throw new SyncError('invalid', 'reading user changes: the delta round ended without a delta link');
  return { changes, link: next };
}

/** Which groups changed (members, name, removal); the same group may come on several pages. */
export async function readGroupChanges(
  graph: EntraGraph,
  link: string,
  signal?: AbortSignal,
): Promise<{ touched: Set<string>; names: Map<string, string>; removed: Set<string>; link: string }> {
  const touched = new Set<string>();
  const names = new Map<string, string>();
  const removed = new Set<string>();
  let next: string | undefined;
  for await (const page of graph.pages(READ_GROUPS, link, { headers: { Prefer: `odata.maxpagesize=${PAGE_SIZE}` } }, signal)) {
    for (const raw of page.value) {
      const ref = objectRefSchema.safeParse(raw);
      if (!ref.success) throw new FullReadNeeded(`a group change could not be read (${payloadReason(ref.error)})`);
      touched.add(ref.data.id);
      // A group may come on several pages; its last entry says whether it is gone (or back).
      if (ref.data['@removed']) removed.add(ref.data.id);
      else removed.delete(ref.data.id);
      const group = groupSchema.safeParse(raw);
      if (!ref.data['@removed'] && group.success && group.data.displayName) names.set(group.data.id, group.data.displayName);
    }
    next = page['@odata.deltaLink'] ?? next;
  }
  if (!next) throw new SyncError('invalid', 'reading group changes: the delta round ended without a delta link');
  return { touched, names, removed, link: next };
}
