import type { DirectoryRead } from '../model/directory.js';
import { clip } from './mapping.js';

/**
 * The read guard: whether this cycle may take anything away (deactivate a user, delete or unlink a
 * group, remove a member). One decision for both plans, so that a read that stops deactivations
 * can never empty groups instead. Pure.
 */

/** Why removals are blocked: machine-readable, stable across versions (reports keep it). */
export type RemovalBlockReason =
  /** The IdP read did not cover the whole scope (a page failed, the token owner is unknown, …). */
  | 'source-read-incomplete'
  /** The IdP returned records tvsync could not read, so members or users may be missing. */
  | 'source-doubtful'
  /** The IdP returned no user in scope. */
  | 'source-empty'
  /** The IdP read did not cover the groups (e.g. an export without a groups file). */
  | 'groups-read-incomplete'
  /** The IdP returned no group in scope while this sync manages groups. */
  | 'groups-empty'
  /** TeamViewer listed no user while this sync manages users. */
  | 'teamviewer-users-empty'
  /** TeamViewer listed no group while this sync manages groups. */
  | 'teamviewer-groups-empty';

export interface RemovalBlock {
  reason: RemovalBlockReason;
  /** The cause as a clause, for sentences of either plan: "the IdP returned no user in scope". */
  cause: string;
  /** The whole sentence for the side it blocks. */
  message: string;
}

/** What the guard needs of one IdP read: counts only, so a stored cycle keeps it small. */
export interface ReadFacts {
  complete: boolean;
  incompleteReason?: string;
  /** Absent: as `complete`. */
  groupsComplete?: boolean;
  groupsIncompleteReason?: string;
  users: number;
  groups: number;
  /** User records without a usable id, and unreadable group, assignment or membership records. */
  doubtful: { users: number; groups: number };
}

/** Reasons come from connectors: clipped so a stored cycle cannot grow with them. */
const REASON_CAP = 500;

export function readFacts(
  read: Pick<DirectoryRead, 'users' | 'groups' | 'complete' | 'incompleteReason' | 'groupsComplete' | 'groupsIncompleteReason'> & {
    issues?: DirectoryRead['issues'];
  },
): ReadFacts {
  const doubtful = { users: 0, groups: 0 };
  for (const issue of read.issues ?? []) {
    if (issue.kind !== 'user') doubtful.groups++;
    // A user record with an id is still known to be in scope; one without cannot be told from a removed user.
    else if (issue.objectId === undefined) doubtful.users++;
  }
  const facts: ReadFacts = { complete: read.complete, users: read.users.length, groups: read.groups.length, doubtful };
  if (read.incompleteReason !== undefined) facts.incompleteReason = clip(read.incompleteReason, REASON_CAP);
  if (read.groupsComplete !== undefined) facts.groupsComplete = read.groupsComplete;
  if (read.groupsIncompleteReason !== undefined) facts.groupsIncompleteReason = clip(read.groupsIncompleteReason, REASON_CAP);
  return facts;
}

type Cause = Pick<RemovalBlock, 'reason' | 'cause'>;

/** What blocks every removal, users and groups alike. */
function sourceCause(read: ReadFacts): Cause | undefined {
  if (!read.complete)
    return { reason: 'source-read-incomplete', cause: `the IdP read did not cover the whole scope (${read.incompleteReason ?? 'reason not given'})` };
  if (read.doubtful.users > 0) return { reason: 'source-doubtful', cause: `the IdP returned ${read.doubtful.users} user record(s) without a usable id` };
  if (read.doubtful.groups > 0)
    return {
      reason: 'source-doubtful',
      cause: `the IdP returned ${read.doubtful.groups} group, assignment or membership record(s) tvsync could not read, so some members may be missing from the read`,
    };
  if (read.users === 0) return { reason: 'source-empty', cause: 'the IdP returned no user in scope, which looks like a scoping or permission mistake' };
  return undefined;
}

/**
 * Whether users may be deactivated. `links` is how many users this sync manages, `teamviewerUsers`
 * how many TeamViewer listed: none listed while some are managed is a doubtful answer, not a fact.
 */
export function guardDeactivations(read: ReadFacts, teamviewer: { links: number; teamviewerUsers: number }): RemovalBlock | undefined {
  const cause: Cause | undefined =
    sourceCause(read) ??
    (teamviewer.teamviewerUsers === 0 && teamviewer.links > 0
      ? { reason: 'teamviewer-users-empty', cause: `TeamViewer listed no user while this sync manages ${teamviewer.links}` }
      : undefined);
  return cause && { ...cause, message: `No user is deactivated this cycle: ${cause.cause}.` };
}

/**
 * Whether groups may be deleted or unlinked and members removed. Blocked whenever deactivations
 * are (`usersBlocked`, from the user phase of the same cycle), and further when the groups part of
 * the read is incomplete or empty, or TeamViewer listed no group while this sync manages some.
 */
export function guardGroupRemovals(
  read: ReadFacts,
  opts: { usersBlocked?: Pick<RemovalBlock, 'reason' | 'message'> & { cause?: string }; groupLinks: number; teamviewerGroups: number },
): RemovalBlock | undefined {
  let cause: Cause | undefined = opts.usersBlocked
    ? { reason: opts.usersBlocked.reason, cause: opts.usersBlocked.cause ?? `user deactivations are blocked (${opts.usersBlocked.message})` }
    : sourceCause(read);
  if (!cause && read.groupsComplete === false) {
    cause = { reason: 'groups-read-incomplete', cause: `the IdP read did not cover the groups (${read.groupsIncompleteReason ?? 'reason not given'})` };
  }
  if (!cause && read.groups === 0 && opts.groupLinks > 0) {
    cause = {
      reason: 'groups-empty',
      cause: `the IdP returned no group in scope while this sync manages ${opts.groupLinks}, which looks like a scoping or export mistake`,
    };
  }
  if (!cause && opts.teamviewerGroups === 0 && opts.groupLinks > 0) {
    cause = { reason: 'teamviewer-groups-empty', cause: `TeamViewer listed no group while this sync manages ${opts.groupLinks}` };
  }
  return cause && { ...cause, message: `No group is deleted or unlinked and no member removed this cycle: ${cause.cause}.` };
}
