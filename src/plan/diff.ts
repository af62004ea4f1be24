import type { DirectoryRead, DirectoryUser } from '../model/directory.js';
import type { TvUser, TvUserChanges } from '../model/teamviewer.js';
import { guardDeactivations, readFacts, type RemovalBlock } from './guards.js';
import { clip, emailKey, FIELD_CAPS, mapDirectoryUser, type MappedUser } from './mapping.js';
import { type DeactivationRecord, recycledAddress } from './recycled.js';
import { StringIndex } from './string-index.js';
import { exceedsThreshold, shareOf } from './threshold.js';
import type {
  ChangeUserOperation,
  LinkChange,
  OutsideCompanyRecord,
  Plan,
  PlanPolicy,
  SkippedItem,
  SkipReason,
  UserOperation,
  UserOperationKind,
} from './types.js';

export interface PlanInput {
  directory: Pick<DirectoryRead, 'users' | 'complete' | 'incompleteReason'> &
    Partial<Pick<DirectoryRead, 'issues' | 'groups' | 'groupsComplete' | 'groupsIncompleteReason'>>;
  teamviewer: readonly TvUser[];
  /** IdP object id → TeamViewer user id, as this sync learned them. */
  links: ReadonlyMap<string, string>;
  /** Addresses whose create failed because a TeamViewer account outside the company owns them (by lower-cased e-mail). */
  outsideCompany: ReadonlyMap<string, OutsideCompanyRecord>;
  /** TeamViewer user id → the deactivation tvsync applied to it (kept after its link goes): recycled addresses. */
  deactivatedByTvsync?: ReadonlyMap<string, DeactivationRecord>;
  nowMs: number;
  policy: PlanPolicy;
}

const KIND_ORDER: Record<UserOperationKind, number> = { createUser: 0, reactivateUser: 1, updateUser: 2, deactivateUser: 3 };

/**
 * Computes what must change in TeamViewer. Pure and deterministic: the same input gives the same
 * plan in the same order. It never plans a user DELETE (TeamViewer has none) and never deactivates
 * a user this sync does not manage.
 */
export function computePlan(input: PlanInput): Plan {
  const { directory, teamviewer, links } = input;
  const users = directory.users;
  const skipped: SkippedItem[] = [];
  const operations: UserOperation[] = [];
  const linkChanges: LinkChange[] = [];
  const deactivations: ChangeUserOperation[] = [];
  let unchanged = 0;

  // At a million users the plan's cost is its indexes: flat ones over TeamViewer's ids and the
  // IdP's addresses, arrays by position for the rest, and small maps for the few users a link does
  // not find. No object is made per user that outlives the user's turn.
  const tvIndex = StringIndex.of(teamviewer.map((tv) => tv.id));
  /** Positions of TeamViewer users a present IdP user stands for: never deactivated as "removed". */
  const claimed = new Uint8Array(teamviewer.length);
  // A user record the connector could not read is still in scope: its TeamViewer user must not be
  // taken for removed. One that cannot even be named makes every removal doubtful (the guard).
  const unreadIds = new Set<string>();
  for (const issue of directory.issues ?? []) if (issue.kind === 'user' && issue.objectId !== undefined) unreadIds.add(issue.objectId);
  const blocked = guardDeactivations(readFacts({ ...directory, groups: directory.groups ?? [] }), { links: links.size, teamviewerUsers: teamviewer.length });
  const scan = scanDirectory(users, links, tvIndex);
  const addresses = scanTeamViewer(teamviewer, scan.unlinkedKeys, input.policy);
  // Only a user matched by e-mail needs these two, so they are built on first use.
  const inScope = lazy(() => {
    const ids = new Set(unreadIds);
    for (const user of users) ids.add(user.id);
    return ids;
  });
  const holdersOf = lazy(() => {
    const matched = new Set<string>();
    for (const tv of addresses.byEmail.values()) matched.add(tv.id);
    const index = new Map<string, string[]>();
    links.forEach((tvId, sourceId) => {
      if (!matched.has(tvId)) return;
      const list = index.get(tvId);
      if (list) list.push(sourceId);
      else index.set(tvId, [sourceId]);
    });
    return index;
  });

  /** A skipped user keeps its TeamViewer user (not "removed"), unless that user is gone: then the link goes. */
  const keepLink = (sourceId: string, position: number): void => {
    const at = scan.linked[position] as number;
    if (at >= 0) claimed[at] = 1;
    else if (at === LINK_GONE) linkChanges.push({ action: 'drop', sourceId, tvUserId: links.get(sourceId) as string, reason: 'teamviewer-user-gone' });
  };

  // Input order does not matter: every list in the plan is sorted before it is returned.
  for (let position = 0; position < users.length; position++) {
    const record = users[position] as DirectoryUser;
    const user = mapDirectoryUser(record, scan.keys[position] || undefined);
    if (!user.ok) {
      skipped.push(skip(user.reason, user.message, { sourceId: user.sourceId, email: user.email }));
      keepLink(record.id, position);
      continue;
    }

    const sameEmail = scan.duplicates?.get(user.emailKey);
    if (sameEmail) {
      const others = listSome(
        sameEmail
          .filter((u) => u.position !== position)
          .map((u) => u.sourceId)
          .sort(),
      );
      skipped.push(
        skip(
          'duplicate-email',
          `${user.email} is used by more than one IdP user in scope (also ${others}); none of them is created or changed until the IdP has one owner for it`,
          { sourceId: user.sourceId, email: user.email },
        ),
      );
      keepLink(user.sourceId, position);
      continue;
    }

    let tv: TvUser | undefined;
    let recycledNote: string | undefined;
    const at = scan.linked[position] as number;
    if (at >= 0) {
      tv = teamviewer[at] as TvUser;
      claimed[at] = 1;
      const tvEmail = tv.email || tv.userName;
      if (tvEmail !== user.email && emailKey(tvEmail) !== user.emailKey) {
        skipped.push(
          skip(
            'email-change-unsupported',
            `The IdP changed this user's e-mail from ${tvEmail} to ${user.email}; TeamViewer cannot change an e-mail, so tvsync keeps the TeamViewer user ${tv.id} (${tvEmail}) and creates no second one. Change the address in TeamViewer by hand or revert it in the IdP.`,
            { sourceId: user.sourceId, email: user.email, tvUserId: tv.id },
          ),
        );
      }
    } else {
      if (at === LINK_GONE)
        linkChanges.push({ action: 'drop', sourceId: user.sourceId, tvUserId: links.get(user.sourceId) as string, reason: 'teamviewer-user-gone' });
      tv = addresses.byEmail.get(user.emailKey);
      if (tv) {
        const holders = (holdersOf().get(tv.id) ?? []).filter((id) => id !== user.sourceId);
        const presentHolder = holders.find((id) => inScope().has(id));
        if (presentHolder !== undefined) {
          skipped.push(
            skip(
              'email-held-by-other-user',
              `${user.email} is held in TeamViewer by user ${tv.id}, which this sync links to IdP user ${presentHolder}; it is not taken over.`,
              { sourceId: user.sourceId, email: user.email, tvUserId: tv.id },
            ),
          );
          continue;
        }
        const recycled = recycledAddress(
          { sourceId: user.sourceId, email: user.email, tv, holders, deactivated: input.deactivatedByTvsync?.get(tv.id) },
          input.policy,
        );
        if (recycled.recycled && 'held' in recycled) {
          skipped.push(recycled.held);
          continue;
        }
        if (recycled.recycled) recycledNote = recycled.note;
        claimed[tvIndex.find(tv.id)] = 1;
        for (const holder of holders) linkChanges.push({ action: 'drop', sourceId: holder, tvUserId: tv.id, reason: 'relinked' });
        linkChanges.push({ action: 'set', sourceId: user.sourceId, tvUserId: tv.id, reason: 'matched-by-email' });
      }
    }

    if (!tv) {
      const create = planCreate(user, input);
      if ('kind' in create) operations.push(create);
      else skipped.push(create);
      continue;
    }

    const change = planChange(user, tv);
    if (change && recycledNote) change.message = `${change.message}; ${recycledNote}`;
    if (!change) unchanged++;
    else if (change.kind === 'deactivateUser') deactivations.push(change);
    else operations.push(change);
  }

  // Users this sync manages whose IdP object is no longer in scope. Every IdP user of the read
  // claimed the TeamViewer user its link names, or had its gone link dropped above: a link that did
  // neither belongs to a user who left, unless the connector could not read that user's record.
  let linkedToExisting = 0;
  const gone: [string, string][] = [];
  links.forEach((tvId, sourceId) => {
    const at = tvIndex.find(tvId);
    if (at >= 0) linkedToExisting++;
    const present = at >= 0 ? claimed[at] === 1 : scan.linkedToGone.has(sourceId);
    if (!present && !unreadIds.has(sourceId)) gone.push([sourceId, tvId]);
  });
  const removedSeen = new Set<string>();
  for (const [sourceId, tvId] of gone.sort((a, b) => compare(a[0], b[0]))) {
    if (removedSeen.has(tvId)) continue;
    removedSeen.add(tvId);
    const at = tvIndex.find(tvId);
    const tv = at < 0 ? undefined : (teamviewer[at] as TvUser);
    if (!tv) {
      linkChanges.push({ action: 'drop', sourceId, tvUserId: tvId, reason: 'teamviewer-user-gone' });
      continue;
    }
    if (!tv.active) continue;
    deactivations.push({
      kind: 'deactivateUser',
      sourceId,
      email: tv.email || tv.userName,
      tvUserId: tv.id,
      changes: { active: false },
      before: { displayName: clip(tv.displayName, FIELD_CAPS.name), active: tv.active },
      reason: 'removed-from-scope',
      message: `deactivate ${tv.email || tv.userName}: IdP user ${sourceId} is no longer in scope`,
    });
  }

  // TeamViewer listing no user at all is doubted, not believed: the links stay for a better answer.
  if (blocked?.reason === 'teamviewer-users-empty') {
    const kept = linkChanges.filter((c) => !(c.action === 'drop' && c.reason === 'teamviewer-user-gone'));
    linkChanges.splice(0, linkChanges.length, ...kept);
  }
  const managed = countManaged(linkedToExisting, links, linkChanges, tvIndex);
  const gate = gateDeactivations(deactivations, input, managed, blocked);
  operations.push(...gate.run);
  skipped.push(...gate.skipped);

  // Each address's key is worked out once, not at every comparison.
  const byKey = operations.map((op) => ({ op, key: emailKey(op.email) }));
  byKey.sort((a, b) => KIND_ORDER[a.op.kind] - KIND_ORDER[b.op.kind] || compare(a.key, b.key) || compare(a.op.sourceId, b.op.sourceId));
  for (let i = 0; i < byKey.length; i++) operations[i] = (byKey[i] as { op: UserOperation }).op;
  skipped.sort((a, b) => compare(a.reason, b.reason) || compare(a.email ?? '', b.email ?? '') || compare(a.sourceId ?? '', b.sourceId ?? ''));
  linkChanges.sort((a, b) => compare(a.sourceId, b.sourceId) || compare(a.action, b.action));

  const notices = [...gate.notices];
  const recycledHeld = skipped.filter((item) => item.reason === 'recycled-address').length;
  if (recycledHeld > 0)
    notices.push(
      `${recycledHeld} new IdP user${recycledHeld === 1 ? '' : 's'} match${recycledHeld === 1 ? 'es' : ''} by e-mail a deactivated TeamViewer user of another person (a recycled address); held for approval, neither reactivated nor linked (tvsync approve releases them).`,
    );
  const operationCounts: Record<UserOperationKind, number> = { createUser: 0, updateUser: 0, deactivateUser: 0, reactivateUser: 0 };
  for (const op of operations) operationCounts[op.kind]++;
  const skippedCounts: Partial<Record<SkipReason, number>> = {};
  for (const item of skipped) skippedCounts[item.reason] = (skippedCounts[item.reason] ?? 0) + 1;

  const plan: Plan = {
    operations,
    held: gate.held,
    skipped,
    links: linkChanges,
    notices,
    threshold: { deactivations: gate.candidates, managed, exceeded: gate.held.length > 0 },
    protectedTvUserIds: addresses.protectedIds,
    ...(addresses.tokenOwnerId !== undefined ? { tokenOwnerTvUserId: addresses.tokenOwnerId } : {}),
    summary: {
      inScope: directory.users.length,
      teamviewerUsers: teamviewer.length,
      managed,
      unchanged,
      operations: operationCounts,
      held: gate.held.length,
      skipped: skippedCounts,
    },
  };
  if (blocked) plan.deactivationsBlocked = blocked;
  return plan;
}

/** A create for a mapped user TeamViewer does not hold, or why none is made. Shared with the single-user plan. */
export function planCreate(user: MappedUser, input: Pick<PlanInput, 'outsideCompany' | 'nowMs' | 'policy'>): UserOperation | SkippedItem {
  if (!user.active) {
    return skip('inactive-not-in-teamviewer', `${user.email} is disabled in the IdP and not in TeamViewer; a disabled user is not created`, {
      sourceId: user.sourceId,
      email: user.email,
    });
  }
  const outside = input.outsideCompany.get(user.emailKey);
  if (outside && input.nowMs - outside.atMs < input.policy.outsideCompanyRetryMs) {
    const retryAt = new Date(outside.atMs + input.policy.outsideCompanyRetryMs).toISOString();
    return skip(
      'owned-outside-company',
      `${user.email} belongs to a TeamViewer account outside the company (${outside.message}); the owner must release it or it must be added to the company. Tried again after ${retryAt}.`,
      { sourceId: user.sourceId, email: user.email },
    );
  }
  const newUser: UserOperation & { kind: 'createUser' } = {
    kind: 'createUser',
    sourceId: user.sourceId,
    email: user.email,
    user: { userName: user.email, displayName: user.displayName, active: true },
    reason: outside ? 'retry-after-outside-conflict' : 'new-in-scope',
    message: outside
      ? `create ${user.email} (${user.displayName}): trying again after it was owned outside the company`
      : `create ${user.email} (${user.displayName}): new in the IdP scope`,
  };
  if (user.preferredLanguage) newUser.user.preferredLanguage = user.preferredLanguage;
  if (input.policy.ssoCustomerId) newUser.user.ssoCustomerId = input.policy.ssoCustomerId;
  return newUser;
}

/** Only displayName and active are compared: everything else TeamViewer will not let us change. */
export function planChange(user: MappedUser, tv: TvUser): ChangeUserOperation | undefined {
  const changes: TvUserChanges = {};
  if (user.displayName !== tv.displayName) changes.displayName = user.displayName;
  if (user.active !== tv.active) changes.active = user.active;
  if (changes.displayName === undefined && changes.active === undefined) return undefined;

  const email = tv.email || tv.userName;
  const what: string[] = [];
  if (changes.displayName !== undefined) what.push(`name "${clip(tv.displayName)}" → "${changes.displayName}"`);
  const base = { sourceId: user.sourceId, email, tvUserId: tv.id, changes, before: { displayName: clip(tv.displayName, FIELD_CAPS.name), active: tv.active } };
  if (changes.active === false) {
    return {
      ...base,
      kind: 'deactivateUser',
      reason: 'disabled-in-idp',
      message: `deactivate ${email}: disabled in the IdP${what.length ? `; ${what.join(', ')}` : ''}`,
    };
  }
  if (changes.active === true) {
    return {
      ...base,
      kind: 'reactivateUser',
      reason: 'enabled-in-idp',
      message: `reactivate ${email}: active in the IdP${what.length ? `; ${what.join(', ')}` : ''}`,
    };
  }
  return { ...base, kind: 'updateUser', reason: 'attributes-changed', message: `update ${email}: ${what.join(', ')}` };
}

/**
 * TeamViewer users this sync links to after the plan's link changes, from the links naming an
 * existing user before them. Counted per link: two IdP ids on one TeamViewer user last only until
 * the next relink drops one, and the figure only scales the threshold.
 */
function countManaged(linkedToExisting: number, links: ReadonlyMap<string, string>, changes: LinkChange[], tvIndex: StringIndex): number {
  let managed = linkedToExisting;
  for (const change of changes) {
    const before = links.get(change.sourceId);
    if (change.action === 'set' && !(before !== undefined && tvIndex.find(before) >= 0)) managed++;
    else if (change.action === 'drop' && tvIndex.find(change.tvUserId) >= 0) managed--;
  }
  return managed;
}

interface Gate {
  run: UserOperation[];
  held: ChangeUserOperation[];
  skipped: SkippedItem[];
  notices: string[];
  candidates: number;
}

/** Why an address is never deactivated nor removed from a group, or undefined when it may be. */
export function protectionOf(policy: Pick<PlanPolicy, 'protect' | 'tokenOwnerEmail'>, email: string): string | undefined {
  const key = emailKey(email);
  if (policy.tokenOwnerEmail && emailKey(policy.tokenOwnerEmail) === key) return 'the owner of the TeamViewer token';
  return policy.protect.some((p) => emailKey(p) === key) ? 'on the protect list' : undefined;
}

/** Protect list, token owner, source-read guard, then the threshold, in that order. */
function gateDeactivations(candidates: ChangeUserOperation[], input: PlanInput, managed: number, blocked: RemovalBlock | undefined): Gate {
  const { policy } = input;
  const gate: Gate = { run: [], held: [], skipped: [], notices: [], candidates: 0 };

  // A deactivation that also renames keeps its rename when the deactivation itself is stopped.
  const keepRename = (op: ChangeUserOperation): void => {
    if (op.changes.displayName === undefined) return;
    gate.run.push({
      ...op,
      kind: 'updateUser',
      reason: 'attributes-changed',
      changes: { displayName: op.changes.displayName },
      message: `update ${op.email}: name "${op.before.displayName}" → "${op.changes.displayName}"`,
    });
  };

  const pending: ChangeUserOperation[] = [];
  for (const op of candidates) {
    const who = protectionOf(policy, op.email);
    if (who) {
      gate.skipped.push(
        skip('protected', `${op.email} would be deactivated (${op.reason}) but is ${who}; left active`, {
          sourceId: op.sourceId,
          email: op.email,
          tvUserId: op.tvUserId,
        }),
      );
      keepRename(op);
    } else if (blocked) {
      gate.skipped.push(
        skip('source-read-incomplete', `${op.email} would be deactivated (${op.reason}); not done because ${blocked.cause}`, {
          sourceId: op.sourceId,
          email: op.email,
          tvUserId: op.tvUserId,
        }),
      );
      keepRename(op);
    } else {
      pending.push(op);
    }
  }
  if (blocked) gate.notices.push(blocked.message);

  gate.candidates = pending.length;
  const approved = policy.approvedDeactivations ?? new Set<string>();
  // What the fast lane held waits for the same approval here: a cycle does not do what it stopped.
  const heldElsewhere = policy.heldByFastLane ?? new Set<string>();
  const stillHeld = pending.filter((op) => heldElsewhere.has(op.tvUserId) && !approved.has(op.tvUserId));
  for (const op of stillHeld) {
    gate.held.push(op);
    keepRename(op);
  }
  if (stillHeld.length > 0)
    gate.notices.push(`${stillHeld.length} deactivations the fast lane held for approval stay held (tvsync approve --fast-lane releases them).`);
  const rest = stillHeld.length ? pending.filter((op) => !stillHeld.includes(op)) : pending;
  const unapproved = rest.filter((op) => !approved.has(op.tvUserId));
  const { maxCount, maxPercent } = policy.threshold;
  if (exceedsThreshold(policy.threshold, unapproved.length, managed, policy.recentDeactivations ?? 0)) {
    for (const op of rest) {
      if (approved.has(op.tvUserId)) gate.run.push(op);
      else {
        gate.held.push(op);
        keepRename(op);
      }
    }
    const recent = policy.recentDeactivations ? ` (with ${policy.recentDeactivations} made in the last window)` : '';
    gate.notices.push(
      `${unapproved.length} deactivations${shareOf(unapproved.length, managed, 'users')}${recent} exceed the threshold (more than ${maxCount}, or more than ${maxPercent}%); they are held for approval while creates and updates run.`,
    );
  } else {
    gate.run.push(...rest);
  }
  return gate;
}

export function skip(reason: SkipReason, message: string, who: { sourceId?: string; email?: string | undefined; tvUserId?: string }): SkippedItem {
  const item: SkippedItem = { reason, message };
  if (who.sourceId !== undefined) item.sourceId = who.sourceId;
  if (who.email !== undefined) item.email = who.email;
  if (who.tvUserId !== undefined) item.tvUserId = who.tvUserId;
  return item;
}

/** Ids for a message: the first few, then how many more, so one message cannot grow with the directory. */
function listSome(ids: string[], max = 10): string {
  const shown = ids
    .slice(0, max)
    .map((id) => clip(id))
    .join(', ');
  return ids.length > max ? `${shown} and ${ids.length - max} more` : shown;
}

const NO_LINK = -1;
const LINK_GONE = -2;

interface DirectoryScan {
  /** Per directory position: the TeamViewer position its link names, NO_LINK, or LINK_GONE (that user is gone). */
  linked: Int32Array;
  /** Per directory position: the address's key, or '' where there is no address. */
  keys: string[];
  /** Addresses more than one mappable IdP user holds: each holder's position and id. */
  duplicates: Map<string, { position: number; sourceId: string }[]> | undefined;
  /** Address keys of IdP users no link leads to a TeamViewer user: they may be matched by e-mail. */
  unlinkedKeys: Set<string>;
  /** IdP ids in the read whose link names a TeamViewer user that is gone. */
  linkedToGone: Set<string>;
}

/** One pass over the directory before the plan: where each user's link leads, and which addresses are held twice. */
function scanDirectory(users: readonly DirectoryUser[], links: ReadonlyMap<string, string>, tvIndex: StringIndex): DirectoryScan {
  const linked = new Int32Array(users.length);
  const keys: string[] = new Array<string>(users.length).fill('');
  const byKey = new StringIndex(keys);
  const repeated = new Set<string>();
  const unlinkedKeys = new Set<string>();
  const linkedToGone = new Set<string>();
  for (let position = 0; position < users.length; position++) {
    const user = users[position] as DirectoryUser;
    const tvId = links.get(user.id);
    let at = NO_LINK;
    if (tvId !== undefined) {
      const found = tvIndex.find(tvId);
      at = found >= 0 ? found : LINK_GONE;
    }
    linked[position] = at;
    if (at === LINK_GONE) linkedToGone.add(user.id);
    // The key of an address that is blank once trimmed is '', which no address has.
    const key = user.email === undefined ? '' : emailKey(user.email);
    if (key === '') continue;
    if (at < 0) unlinkedKeys.add(key);
    keys[position] = key;
    if (byKey.add(position) >= 0) repeated.add(key);
  }
  let duplicates: DirectoryScan['duplicates'];
  if (repeated.size > 0) {
    // Only records that map hold an address; an unmappable one is skipped for its own reason.
    const holders = new Map<string, { position: number; sourceId: string }[]>();
    for (let position = 0; position < users.length; position++) {
      const key = keys[position] as string;
      if (!repeated.has(key)) continue;
      const mapped = mapDirectoryUser(users[position] as DirectoryUser, key);
      if (!mapped.ok) continue;
      const list = holders.get(mapped.emailKey);
      if (list) list.push({ position, sourceId: mapped.sourceId });
      else holders.set(mapped.emailKey, [{ position, sourceId: mapped.sourceId }]);
    }
    for (const [key, list] of holders) {
      if (list.length < 2) continue;
      duplicates ??= new Map();
      duplicates.set(key, list);
    }
  }
  return { linked, keys, duplicates, unlinkedKeys, linkedToGone };
}

/**
 * One pass over TeamViewer's users, made only when needed: the users holding the addresses of IdP
 * users without a link, and the users the protect list or the token's owner keep (sorted).
 */
function scanTeamViewer(
  teamviewer: readonly TvUser[],
  wanted: ReadonlySet<string>,
  policy: PlanPolicy,
): { byEmail: Map<string, TvUser>; protectedIds: string[]; tokenOwnerId?: string } {
  const byEmail = new Map<string, TvUser>();
  const protectedIds: string[] = [];
  let tokenOwnerId: string | undefined;
  const tokenKey = policy.tokenOwnerEmail ? emailKey(policy.tokenOwnerEmail) : undefined;
  const protectKeys = new Set(policy.protect.map(emailKey));
  if (tokenKey !== undefined) protectKeys.add(tokenKey);
  if (wanted.size === 0 && protectKeys.size === 0) return { byEmail, protectedIds };
  for (const tv of teamviewer) {
    const key = emailKey(tv.email || tv.userName);
    if (wanted.has(key)) {
      const held = byEmail.get(key);
      // TeamViewer addresses are unique; should a list ever repeat one, the choice must not depend on order.
      if (!held || compare(tv.id, held.id) < 0) byEmail.set(key, tv);
    }
    if (protectKeys.size === 0) continue;
    // Either address TeamViewer shows protects the user.
    const nameKey = tv.email && tv.email !== tv.userName ? emailKey(tv.userName) : key;
    if (protectKeys.has(key) || protectKeys.has(nameKey)) protectedIds.push(tv.id);
    if (tokenOwnerId === undefined && tokenKey !== undefined && (key === tokenKey || nameKey === tokenKey)) tokenOwnerId = tv.id;
  }
  protectedIds.sort();
  return tokenOwnerId === undefined ? { byEmail, protectedIds } : { byEmail, protectedIds, tokenOwnerId };
}

function lazy<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
