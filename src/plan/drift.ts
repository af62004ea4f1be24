import type { TvGroup, TvUser } from '../model/teamviewer.js';
import type { GroupOperation } from './group-types.js';
import type { OperationResult } from './report.js';
import type { UserOperation } from './types.js';

/*
 * Writes are checked, drift is seen. tvsync remembers the state each applied write left an object
 * in; the next read compares TeamViewer with that record:
 * - a record not yet seen that TeamViewer does not show is a write TeamViewer answered with
 *   success but did not keep ("not kept");
 * - a record seen once that TeamViewer no longer shows, while the plan writes it back to exactly
 *   what tvsync wrote (the IdP did not change), was changed by hand in TeamViewer ("drift").
 * Either way the plan's normal diff writes it again; these only say why.
 */

/** What tvsync last wrote to a user, and whether a read has shown it since. */
export interface WrittenUser {
  displayName: string;
  active: boolean;
  seen: boolean;
}

/** A member tvsync put into (`in`) or took out of a group. */
export interface WrittenMember {
  in: boolean;
  seen: boolean;
}

/** What tvsync last wrote to a group: its name (when it wrote one) and the members it changed. */
export interface WrittenGroup {
  displayName?: string;
  /** tvsync created it (a missing group is then a create not kept). */
  created: boolean;
  seen: boolean;
  members: Map<string, WrittenMember>;
}

export interface WrittenRecords {
  users: ReadonlyMap<string, WrittenUser>;
  groups: ReadonlyMap<string, WrittenGroup>;
}

/** Changes to the records: set replaces an entry, drop removes it (a dropped group loses its members too). */
export interface WrittenUpdates {
  users: { set: [string, WrittenUser][]; drop: string[] };
  groups: { set: [string, Omit<WrittenGroup, 'members'>][]; drop: string[] };
  /** Per TeamViewer group: member records set and dropped. */
  members: { tvGroupId: string; set: [string, WrittenMember][]; drop: string[] }[];
}

export type NotKeptKind = 'user-create' | 'user-name' | 'user-active' | 'group-create' | 'group-name' | 'group-member-add' | 'group-member-remove';
export type DriftKind = 'user-name' | 'user-active' | 'group-name' | 'group-members';
export const NOT_KEPT_KINDS: readonly NotKeptKind[] = [
  'user-create',
  'user-name',
  'user-active',
  'group-create',
  'group-name',
  'group-member-add',
  'group-member-remove',
];
export const DRIFT_KINDS: readonly DriftKind[] = ['user-name', 'user-active', 'group-name', 'group-members'];

/** One write not kept, or one hand-made change; member items stand for `count` members of one group. */
export interface WriteCheckItem<K extends string = string> {
  kind: K;
  tvUserId?: string;
  email?: string;
  tvGroupId?: string;
  group?: string;
  /** Members concerned (group-member items); their ids, capped, in memberIds. */
  count: number;
  memberIds?: string[];
  message: string;
}

export interface WriteCheck {
  notKept: WriteCheckItem<NotKeptKind>[];
  drift: WriteCheckItem<DriftKind>[];
}

/** Member ids kept per item: enough to look one up, small at 100k members. */
export const MEMBER_IDS_CAP = 20;

export function emptyUpdates(): WrittenUpdates {
  return { users: { set: [], drop: [] }, groups: { set: [], drop: [] }, members: [] };
}

export function emptyCheck(): WriteCheck {
  return { notKept: [], drift: [] };
}

/**
 * Pure: the users' check. `operations` are this plan's: the IdP's desired state is what they write,
 * and a user they leave alone already has it.
 */
export function checkUsers(input: { records: ReadonlyMap<string, WrittenUser>; teamviewer: readonly TvUser[]; operations: readonly UserOperation[] }): {
  check: WriteCheck;
  updates: WrittenUpdates;
} {
  const check = emptyCheck();
  const updates = emptyUpdates();
  const tvById = new Map(input.teamviewer.map((tv) => [tv.id, tv]));
  const opById = new Map<string, UserOperation>();
  for (const op of input.operations) if (op.kind !== 'createUser') opById.set(op.tvUserId, op);
  for (const [id, record] of [...input.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const tv = tvById.get(id);
    if (!tv) {
      if (!record.seen)
        check.notKept.push({
          kind: 'user-create',
          tvUserId: id,
          count: 1,
          message: `TeamViewer user ${id} ("${record.displayName}") was written with success but is not in TeamViewer's list`,
        });
      updates.users.drop.push(id);
      continue;
    }
    const who = tv.email || tv.userName;
    const fields = [
      { kind: 'user-name' as const, wrote: record.displayName, found: tv.displayName, desired: changesOf(opById.get(id))?.displayName },
      { kind: 'user-active' as const, wrote: record.active, found: tv.active, desired: changesOf(opById.get(id))?.active },
    ].filter((f) => f.wrote !== f.found);
    if (fields.length === 0) {
      if (!record.seen) updates.users.set.push([id, { ...record, seen: true }]);
      continue;
    }
    if (!record.seen) {
      for (const f of fields)
        check.notKept.push({
          kind: f.kind,
          tvUserId: id,
          email: who,
          count: 1,
          message: `${who}: tvsync wrote ${describe(f.kind, f.wrote)} with success, TeamViewer shows ${describe(f.kind, f.found)}`,
        });
      // Reported once; a write sent again records afresh.
      updates.users.drop.push(id);
      continue;
    }
    const drifted = fields.filter((f) => f.desired !== undefined && f.desired === f.wrote);
    for (const f of drifted)
      check.drift.push({
        kind: f.kind,
        tvUserId: id,
        email: who,
        count: 1,
        message: `${who}: ${describe(f.kind, f.wrote)} as tvsync left it, ${describe(f.kind, f.found)} in TeamViewer (changed there by hand); set back`,
      });
    // The IdP changed too, or the plan leaves it: the record no longer says what tvsync left.
    if (drifted.length === 0) updates.users.drop.push(id);
  }
  return { check, updates };
}

function changesOf(op: UserOperation | undefined): { displayName?: string; active?: boolean } | undefined {
  return op && op.kind !== 'createUser' ? op.changes : undefined;
}

function describe(kind: 'user-name' | 'user-active', value: string | boolean): string {
  if (kind === 'user-active') return value ? 'active' : 'inactive';
  return `name "${String(value)}"`;
}

/** Pure: the groups' check, against TeamViewer's group list and this plan's group operations. */
export function checkGroups(input: {
  records: ReadonlyMap<string, WrittenGroup>;
  teamviewerGroups: readonly TvGroup[];
  operations: readonly GroupOperation[];
}): {
  check: WriteCheck;
  updates: WrittenUpdates;
} {
  const check = emptyCheck();
  const updates = emptyUpdates();
  const tvById = new Map(input.teamviewerGroups.map((g) => [g.id, g]));
  const renames = new Map<string, string>();
  const adds = new Map<string, Set<string>>();
  const removes = new Map<string, Set<string>>();
  for (const op of input.operations) {
    if (op.kind === 'renameGroup') renames.set(op.tvGroupId, op.displayName);
    if (op.kind === 'addGroupMembers' || op.kind === 'removeGroupMembers') {
      const into = op.kind === 'addGroupMembers' ? adds : removes;
      const set = into.get(op.tvGroupId) ?? new Set<string>();
      for (const id of op.memberIds) set.add(id);
      into.set(op.tvGroupId, set);
    }
  }
  for (const [id, record] of [...input.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const tv = tvById.get(id);
    const label = record.displayName ?? tv?.displayName ?? id;
    if (!tv) {
      if (record.created && !record.seen)
        check.notKept.push({
          kind: 'group-create',
          tvGroupId: id,
          group: label,
          count: 1,
          message: `group "${label}" (${id}) was created with success but is not in TeamViewer's list`,
        });
      updates.groups.drop.push(id);
      continue;
    }
    let keep = true;
    let seen = record.seen;
    if (record.displayName !== undefined && record.displayName !== tv.displayName) {
      if (!record.seen) {
        check.notKept.push({
          kind: 'group-name',
          tvGroupId: id,
          group: record.displayName,
          count: 1,
          message: `group ${id}: tvsync named it "${record.displayName}" with success, TeamViewer shows "${tv.displayName}"`,
        });
        keep = false;
      } else if (renames.get(id) === record.displayName) {
        check.drift.push({
          kind: 'group-name',
          tvGroupId: id,
          group: record.displayName,
          count: 1,
          message: `group "${record.displayName}" (${id}) is named "${tv.displayName}" in TeamViewer (changed there by hand); renamed back`,
        });
      } else keep = false;
    } else seen = true;
    if (keep) {
      if (seen !== record.seen) updates.groups.set.push([id, { ...nameOf(record), created: record.created, seen }]);
    } else {
      // The name's record goes; the member records stay.
      updates.groups.set.push([id, { created: record.created, seen: true }]);
    }

    const members = checkMembers(id, label, record.members, new Set(tv.memberIds), adds.get(id), removes.get(id), check);
    if (members.set.length || members.drop.length) updates.members.push({ tvGroupId: id, ...members });
  }
  return { check, updates };
}

function nameOf(record: WrittenGroup): { displayName?: string } {
  return record.displayName === undefined ? {} : { displayName: record.displayName };
}

function checkMembers(
  tvGroupId: string,
  group: string,
  records: ReadonlyMap<string, WrittenMember>,
  inTv: ReadonlySet<string>,
  adds: ReadonlySet<string> | undefined,
  removes: ReadonlySet<string> | undefined,
  check: WriteCheck,
): { set: [string, WrittenMember][]; drop: string[] } {
  const set: [string, WrittenMember][] = [];
  const drop: string[] = [];
  const addsLost: string[] = [];
  const removesLost: string[] = [];
  const drifted: string[] = [];
  for (const [userId, member] of [...records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (inTv.has(userId) === member.in) {
      if (!member.seen) set.push([userId, { in: member.in, seen: true }]);
      continue;
    }
    if (!member.seen) {
      (member.in ? addsLost : removesLost).push(userId);
      drop.push(userId);
    } else if ((member.in ? adds : removes)?.has(userId)) drifted.push(userId);
    else drop.push(userId);
  }
  const item = <K extends string>(kind: K, ids: string[], message: string): WriteCheckItem<K> => ({
    kind,
    tvGroupId,
    group,
    count: ids.length,
    memberIds: ids.slice(0, MEMBER_IDS_CAP),
    message,
  });
  if (addsLost.length)
    check.notKept.push(
      item('group-member-add', addsLost, `group "${group}": ${addsLost.length} member(s) tvsync added with success are not in it (${sample(addsLost)})`),
    );
  if (removesLost.length)
    check.notKept.push(
      item(
        'group-member-remove',
        removesLost,
        `group "${group}": ${removesLost.length} member(s) tvsync removed with success are still in it (${sample(removesLost)})`,
      ),
    );
  if (drifted.length)
    check.drift.push(
      item(
        'group-members',
        drifted,
        `group "${group}": ${drifted.length} member(s) changed by hand in TeamViewer against what tvsync left (${sample(drifted)}); set back`,
      ),
    );
  return { set, drop };
}

function sample(ids: readonly string[]): string {
  return ids.length > 5 ? `${ids.slice(0, 5).join(', ')}, …` : ids.join(', ');
}

/**
 * Pure: what a cycle's (or a user sync's) applied writes left objects in: the records to set. A
 * failed or cancelled write records nothing.
 */
export function recordsFromResults(results: readonly OperationResult[]): WrittenUpdates {
  const updates = emptyUpdates();
  const members = new Map<string, Map<string, WrittenMember>>();
  const groupSets = new Map<string, Omit<WrittenGroup, 'members'>>();
  const memberOf = (gid: string) => {
    const map = members.get(gid) ?? new Map<string, WrittenMember>();
    members.set(gid, map);
    return map;
  };
  for (const result of results) {
    if (result.status !== 'applied') continue;
    switch (result.kind) {
      case 'createUser':
      case 'updateUser':
      case 'deactivateUser':
      case 'reactivateUser': {
        if (!result.tvUserId) break;
        const state = { ...result.before, ...result.after };
        if (state.displayName === undefined || state.active === undefined) break;
        updates.users.set.push([result.tvUserId, { displayName: state.displayName, active: state.active, seen: false }]);
        break;
      }
      case 'createGroup':
      case 'renameGroup':
      case 'addGroupMembers':
      case 'removeGroupMembers': {
        const gid = result.tvGroupId;
        if (!gid) break;
        if (result.kind === 'createGroup' || result.kind === 'renameGroup') {
          const displayName = result.after.displayName;
          const created = result.kind === 'createGroup' && !result.adopted;
          groupSets.set(gid, {
            ...(displayName !== undefined ? { displayName } : {}),
            created: created || (groupSets.get(gid)?.created ?? false),
            seen: false,
          });
        }
        const into = result.kind !== 'removeGroupMembers';
        if (result.kind !== 'renameGroup') for (const m of result.members ?? []) memberOf(gid).set(m.tvUserId, { in: into, seen: false });
        break;
      }
      case 'deleteGroup':
        if (result.tvGroupId) updates.groups.drop.push(result.tvGroupId);
        break;
    }
  }
  updates.groups.set = [...groupSets];
  for (const [tvGroupId, map] of members) updates.members.push({ tvGroupId, set: [...map], drop: [] });
  return updates;
}

/** Counts per kind, for the report and the metrics. */
export function countByKind<K extends string>(items: readonly WriteCheckItem<K>[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const item of items) out[item.kind] = (out[item.kind] ?? 0) + item.count;
  return out;
}
