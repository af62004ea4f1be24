import type { DirectoryGroupRef, DirectoryIssue, DirectoryUser, UserLookup } from '../../model/directory.js';
import { SyncError } from '../../model/failure.js';
import { payloadReason } from '../../net/payload.js';
import { SourceReadError } from '../source.js';
import { LIST_ASSIGNMENTS, LIST_USERS, READ_GROUPS, type Call, type EntraGraph } from './client.js';
import type { EntraSourceConfig } from './config.js';
import { GROUP_TYPE, PAGE_SIZE, appRoleAssignmentSchema, USER_FIELDS, groupSchema, memberOfSchema, toDirectoryUser, userAssignmentSchema } from './wire.js';

/**
 * One person read now, scoped by the same rule as the full read: the assignment to the app (the
 * user's own, or a group's whose direct member the user is; nested only with nestedGroups), or
 * membership of a configured group. The record goes through the full read's toDirectoryUser.
 */

/** The in-scope roots: users and groups assigned to the app, or the configured groups. */
export interface ScopeRoots {
  directUserIds: Set<string>;
  /** Group id → name where the listing already told it. */
  groups: Map<string, string | undefined>;
}

/** The users and groups assigned to the app, or the configured groups: where the full read, a lookup and the feed start. */
export async function listScopeRoots(graph: EntraGraph, config: EntraSourceConfig, issues: DirectoryIssue[], signal?: AbortSignal): Promise<ScopeRoots> {
  const roots: ScopeRoots = { directUserIds: new Set(), groups: new Map() };
  if (config.scope.mode === 'groups') {
    for (const id of config.scope.groupIds) roots.groups.set(id, undefined);
    return roots;
  }
  const path = `/servicePrincipals/${encodeURIComponent(config.scope.servicePrincipalId)}/appRoleAssignedTo`;
  const select = ['principalId', 'principalType', 'principalDisplayName'];
  for await (const page of graph.pages(LIST_ASSIGNMENTS, path, { select, top: PAGE_SIZE }, signal)) {
    for (const raw of page.value) {
      const parsed = appRoleAssignmentSchema.safeParse(raw);
      if (!parsed.success) {
        issues.push({ kind: 'membership', reason: `an app assignment could not be read (${payloadReason(parsed.error)}); skipped` });
        continue;
      }
      const { principalId, principalType, principalDisplayName } = parsed.data;
      if (principalType === 'User') roots.directUserIds.add(principalId);
      // Entra grants an assigned group's direct members only; nested members come in only with nestedGroups.
      else if (principalType === 'Group') roots.groups.set(principalId, principalDisplayName);
    }
  }
  return roots;
}

export interface LookupContext {
  graph: EntraGraph;
  config: EntraSourceConfig;
}

const READ_ASSIGNMENTS: Call = { what: "reading the user's app assignments", permission: 'Directory.Read.All' };
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function notFound(err: unknown): boolean {
  return err instanceof SyncError && err.failureClass === 'not-found';
}

/** GET /users/{id|upn}; a mail that is no UPN through $filter=mail eq '…', which must match exactly one. */
async function readRecord(ctx: LookupContext, ref: string, signal?: AbortSignal): Promise<unknown> {
  const call: Call = { ...LIST_USERS, what: `reading user ${ref}` };
  try {
    return await ctx.graph.get(call, `/users/${encodeURIComponent(ref)}`, { select: USER_FIELDS }, signal);
  } catch (err) {
    if (!notFound(err) || GUID.test(ref) || !ref.includes('@')) throw err;
  }
  const found: unknown[] = [];
  const filter = `mail eq '${ref.replace(/'/g, "''")}'`;
  for await (const page of ctx.graph.pages(
    { ...LIST_USERS, what: `finding the user with mail ${ref}` },
    '/users',
    { select: USER_FIELDS, query: { $filter: filter } },
    signal,
  )) {
    found.push(...page.value);
  }
  if (found.length > 1) throw new SourceReadError(`${found.length} Entra users have the mail ${ref}; give the object id or the user principal name`);
  return found[0];
}

/** The groups the user is a member of (direct, or transitive), as id → name. */
async function membershipsOf(ctx: LookupContext, id: string, transitive: boolean, signal?: AbortSignal): Promise<Map<string, string | undefined>> {
  const call: Call = { ...READ_GROUPS, what: `reading the group memberships of user ${id}` };
  const path = `/users/${encodeURIComponent(id)}/${transitive ? 'transitiveMemberOf' : 'memberOf'}`;
  const groups = new Map<string, string | undefined>();
  for await (const page of ctx.graph.pages(call, path, { select: ['id', 'displayName'], top: PAGE_SIZE }, signal)) {
    for (const raw of page.value) {
      const entry = memberOfSchema.safeParse(raw);
      // A membership that cannot be read could be the one in scope: unsure.
      if (!entry.success) throw new SyncError('invalid', `${call.what}: Graph sent a membership tvsync cannot read (${payloadReason(entry.error)})`);
      const type = entry.data['@odata.type'];
      if (type === undefined || type === GROUP_TYPE) groups.set(entry.data.id, entry.data.displayName);
    }
  }
  return groups;
}

/** The group's name as the full read finds it when no listing told it: GET /groups/{id}, its displayName, else its id. */
async function groupName(ctx: LookupContext, id: string, signal?: AbortSignal): Promise<string> {
  const call: Call = { ...READ_GROUPS, what: `reading group ${id}` };
  const group = groupSchema.safeParse(await ctx.graph.get(call, `/groups/${encodeURIComponent(id)}`, { select: ['id', 'displayName'] }, signal));
  if (!group.success) throw new SyncError('invalid', `${call.what}: Graph sent a group tvsync cannot read (${payloadReason(group.error)})`);
  return group.data.displayName ?? id;
}

const quoted = (groups: DirectoryGroupRef[]) => groups.map((g) => `"${g.name}"`).join(', ');

interface Scoped {
  direct: boolean;
  groups: DirectoryGroupRef[];
}

/** The app's whole assignment listing against the user's groups: for nested groups, or without Directory.Read.All. */
async function assignmentScopeByListing(ctx: LookupContext, user: DirectoryUser, signal?: AbortSignal): Promise<Scoped> {
  const roots = await listScopeRoots(ctx.graph, ctx.config, [], signal);
  const memberOf = await membershipsOf(ctx, user.id, ctx.config.nestedGroups, signal);
  const groups: DirectoryGroupRef[] = [];
  for (const [id, assignedName] of roots.groups) {
    if (memberOf.has(id)) groups.push({ id, name: assignedName ?? memberOf.get(id) ?? id });
  }
  return { direct: roots.directUserIds.has(user.id), groups };
}

async function assignmentScope(ctx: LookupContext, user: DirectoryUser, servicePrincipalId: string, signal?: AbortSignal): Promise<Scoped> {
  if (ctx.config.nestedGroups) return assignmentScopeByListing(ctx, user, signal);
  try {
    return await assignmentsOfUser(ctx, user, servicePrincipalId, signal);
  } catch (err) {
    // That listing needs Directory.Read.All, which the full read does not: the app's listing needs only what the full read has.
    if (!(err instanceof SyncError) || err.failureClass !== 'forbidden') throw err;
    return assignmentScopeByListing(ctx, user, signal);
  }
}

async function assignmentsOfUser(ctx: LookupContext, user: DirectoryUser, servicePrincipalId: string, signal?: AbortSignal): Promise<Scoped> {
  // Graph lists the user's own assignments and those of groups the user is a direct member of: Entra's own rule.
  const path = `/users/${encodeURIComponent(user.id)}/appRoleAssignments`;
  const opts = {
    select: ['principalId', 'principalType', 'principalDisplayName', 'resourceId'],
    query: { $filter: `resourceId eq ${servicePrincipalId}`, $count: 'true' },
    headers: { ConsistencyLevel: 'eventual' },
  };
  let direct = false;
  const named = new Map<string, string | undefined>();
  for await (const page of ctx.graph.pages(READ_ASSIGNMENTS, path, opts, signal)) {
    for (const raw of page.value) {
      const parsed = userAssignmentSchema.safeParse(raw);
      if (!parsed.success)
        throw new SyncError('invalid', `${READ_ASSIGNMENTS.what}: Graph sent an assignment tvsync cannot read (${payloadReason(parsed.error)})`);
      const a = parsed.data;
      if (a.resourceId !== undefined && a.resourceId !== servicePrincipalId) continue;
      if (a.principalType === 'User' && a.principalId === user.id) direct = true;
      else if (a.principalType === 'Group' && !named.has(a.principalId)) named.set(a.principalId, a.principalDisplayName);
    }
  }
  const groups: DirectoryGroupRef[] = [];
  for (const [id, name] of named) groups.push({ id, name: name ?? (await groupName(ctx, id, signal)) });
  return { direct, groups };
}

async function groupsScope(ctx: LookupContext, user: DirectoryUser, groupIds: string[], signal?: AbortSignal): Promise<Scoped> {
  const memberOf = await membershipsOf(ctx, user.id, ctx.config.nestedGroups, signal);
  const groups: DirectoryGroupRef[] = [];
  for (const id of new Set(groupIds)) {
    if (!memberOf.has(id)) continue;
    // memberOf names a group as GET /groups/{id} does: the full read's name, without another request.
    groups.push({ id, name: memberOf.get(id) ?? id });
  }
  return { direct: false, groups };
}

export async function lookupUser(ctx: LookupContext, ref: string, signal?: AbortSignal): Promise<UserLookup> {
  let raw: unknown;
  try {
    raw = await readRecord(ctx, ref.trim(), signal);
  } catch (err) {
    if (notFound(err)) return { status: 'not-found', why: `Entra has no user ${ref}` };
    throw err;
  }
  if (raw === undefined) return { status: 'not-found', why: `Entra has no user whose id, user principal name or mail is ${ref}` };
  const parsed = toDirectoryUser(raw, ctx.config.emailAttribute);
  if (!('user' in parsed)) throw new SourceReadError(`reading user ${ref}: Graph sent a user record tvsync cannot read (${parsed.reason})`);
  const user = parsed.user;
  const { scope } = ctx.config;
  const nested = ctx.config.nestedGroups ? ' (nested groups count)' : '';
  const disabled = user.active ? '' : '; the account is disabled (accountEnabled false)';
  if (scope.mode === 'assignment') {
    const app = `app ${scope.servicePrincipalId}`;
    const { direct, groups } = await assignmentScope(ctx, user, scope.servicePrincipalId, signal);
    if (!direct && groups.length === 0) {
      return { status: 'out-of-scope', user, why: `not assigned to the TeamViewer ${app}, directly or through a group${nested}` };
    }
    const how = [direct ? 'directly' : '', groups.length > 0 ? `through group${groups.length > 1 ? 's' : ''} ${quoted(groups)}` : '']
      .filter(Boolean)
      .join(' and ');
    return { status: 'in-scope', user, groups, groupsComplete: true, why: `assigned to ${app} ${how}${disabled}` };
  }
  const { groups } = await groupsScope(ctx, user, scope.groupIds, signal);
  if (groups.length === 0) return { status: 'out-of-scope', user, why: `not a member of any group in scope.groupIds${nested}` };
  return {
    status: 'in-scope',
    user,
    groups,
    groupsComplete: true,
    why: `member of group${groups.length > 1 ? 's' : ''} ${quoted(groups)}${nested}${disabled}`,
  };
}
