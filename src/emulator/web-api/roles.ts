import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { readJsonBody, webError, type Reply } from '../protocol.js';
import type { EmulatorStore } from '../store.js';
import type { WebApiContext, WebApiRoute } from './route.js';

/**
 * User roles (Web API v1 `/userroles`): the company's roles, and their assignments to user groups
 * and to accounts. Limits as documented: role names 1-50 characters, at most 100 roles, at most 100
 * account ids per assign call; a predefined "Member" role always exists. The state hangs off the
 * emulator's store, so it is reset (a load, a new emulator) with it.
 */

export const MAX_ROLES = 100;
export const MAX_ROLE_NAME = 50;
export const MAX_ACCOUNTS_PER_CALL = 100;
/** Assignments per page of the assignment lists; more are reached through the continuation token. */
export const ASSIGNMENT_PAGE_SIZE = 100;
export const MEMBER_ROLE_NAME = 'Member';

interface EmulatorRole {
  id: string;
  name: string;
  /** TeamViewer user group ids (the SCIM group ids). */
  groups: Set<string>;
  /** TeamViewer user ids, with the `u` prefix. */
  accounts: Set<string>;
}

const roleStates = new WeakMap<EmulatorStore, Map<string, EmulatorRole>>();

/** The roles of the company whose users and groups `store` keeps, created with the predefined Member role. */
export function emulatorRoles(store: EmulatorStore): Map<string, EmulatorRole> {
  let roles = roleStates.get(store);
  if (!roles) {
    roles = new Map();
    const member: EmulatorRole = { id: randomUUID(), name: MEMBER_ROLE_NAME, groups: new Set(), accounts: new Set() };
    roles.set(member.id, member);
    roleStates.set(store, roles);
  }
  return roles;
}

const createBody = z.object({ Name: z.string(), Permissions: z.unknown().optional() });
const groupBody = z.object({ UserRoleId: z.string().min(1), UserGroupId: z.union([z.string().min(1), z.number()]).transform(String) });
const accountsBody = z.object({ UserRoleId: z.string().min(1), UserIds: z.array(z.string().min(1)) });

const roleOut = (role: EmulatorRole) => ({ Id: role.id, Name: role.name, Permissions: {} });

export const rolesRoute: WebApiRoute = async ({ method, segments, query, req }, ctx) => {
  if (segments[0] !== 'userroles') return undefined;
  const roles = emulatorRoles(ctx.store());
  const path = segments.slice(1).join('/');
  if (path === '') {
    if (method === 'GET') return { status: 200, body: { Roles: [...roles.values()].map(roleOut) } };
    if (method !== 'POST') return webError(405, 'method_not_allowed', 'Use GET or POST');
    const body = createBody.safeParse(await readJsonBody(req));
    if (!body.success) return webError(400, 'invalid_request', 'Send { "Name": "…" }');
    const name = body.data.Name.trim();
    if (name.length < 1 || name.length > MAX_ROLE_NAME) return webError(400, 'invalid_request', `A role name has 1 to ${MAX_ROLE_NAME} characters`);
    if (roles.size >= MAX_ROLES) return webError(400, 'invalid_request', `A company has at most ${MAX_ROLES} user roles`);
    if ([...roles.values()].some((r) => r.name.toLowerCase() === name.toLowerCase()))
      return webError(409, 'conflict', 'A user role with the given name already exists');
    const role: EmulatorRole = { id: randomUUID(), name, groups: new Set(), accounts: new Set() };
    roles.set(role.id, role);
    ctx.countWrite();
    return { status: 200, body: { Role: roleOut(role) } };
  }
  if (path === 'assignments/usergroups' || path === 'assignments/account') {
    if (method !== 'GET') return webError(405, 'method_not_allowed', 'Use GET');
    const role = roles.get(query.get('userRoleId') ?? '');
    if (!role) return webError(404, 'not_found', 'No user role with the given id');
    const store = ctx.store();
    const all = path === 'assignments/usergroups' ? [...role.groups].filter((id) => store.group(id)) : [...role.accounts].filter((id) => store.user(id));
    const start = Number(query.get('continuationToken') ?? '0');
    if (!Number.isInteger(start) || start < 0 || start > all.length) return webError(400, 'invalid_request', 'The continuation token is not valid');
    const page = all.slice(start, start + ASSIGNMENT_PAGE_SIZE);
    const next = start + ASSIGNMENT_PAGE_SIZE < all.length ? String(start + ASSIGNMENT_PAGE_SIZE) : null;
    const listName = path === 'assignments/usergroups' ? 'AssignedToGroups' : 'AssignedToUsers';
    return { status: 200, body: { [listName]: page, ContinuationToken: next } };
  }
  const assign = /^(assign|unassign)\/(usergroup|account)$/.exec(path);
  if (assign) {
    if (method !== 'POST') return webError(405, 'method_not_allowed', 'Use POST');
    return assign[2] === 'usergroup'
      ? assignGroup(assign[1] === 'assign', await readJsonBody(req), roles, ctx)
      : assignAccounts(assign[1] === 'assign', await readJsonBody(req), roles, ctx);
  }
  return webError(404, 'not_found', `No user-role route /userroles/${path}`);
};

function assignGroup(on: boolean, raw: unknown, roles: Map<string, EmulatorRole>, ctx: WebApiContext): Reply {
  const body = groupBody.safeParse(raw);
  if (!body.success) return webError(400, 'invalid_request', 'Send { "UserRoleId": "…", "UserGroupId": "…" }');
  const role = roles.get(body.data.UserRoleId);
  if (!role) return webError(404, 'not_found', 'No user role with the given id');
  if (!ctx.store().group(body.data.UserGroupId)) return webError(404, 'not_found', 'No user group with the given id');
  if (on) role.groups.add(body.data.UserGroupId);
  else role.groups.delete(body.data.UserGroupId);
  ctx.countWrite();
  return { status: 204 };
}

function assignAccounts(on: boolean, raw: unknown, roles: Map<string, EmulatorRole>, ctx: WebApiContext): Reply {
  const body = accountsBody.safeParse(raw);
  if (!body.success) return webError(400, 'invalid_request', 'Send { "UserRoleId": "…", "UserIds": ["u…"] }');
  const { UserRoleId, UserIds } = body.data;
  if (UserIds.length < 1 || UserIds.length > MAX_ACCOUNTS_PER_CALL) {
    return webError(400, 'invalid_request', `Send 1 to ${MAX_ACCOUNTS_PER_CALL} user ids per call`);
  }
  const role = roles.get(UserRoleId);
  if (!role) return webError(404, 'not_found', 'No user role with the given id');
  const unknown = UserIds.find((id) => !/^u\d+$/.test(id) || !ctx.store().user(id));
  if (unknown !== undefined) return webError(400, 'invalid_request', `${unknown} is not a user of the company (ids carry the "u" prefix)`);
  for (const id of UserIds) {
    if (on) role.accounts.add(id);
    else role.accounts.delete(id);
  }
  ctx.countWrite();
  return { status: 204 };
}
