import { SyncError } from '../model/failure.js';
import type { WebApiTransport } from './scim-client.js';
import { roleAccountAssignmentsSchema, roleGroupAssignmentsSchema, roleWriteAnswerSchema, userRolesListSchema } from './roles-wire.js';

/** A TeamViewer user role. */
export interface TvRole {
  id: string;
  name: string;
}

/** Account ids per assign/unassign call: TeamViewer's own module sends no more. */
export const ROLE_ACCOUNT_BATCH = 100;
/** Pages of one assignment list before tvsync stops believing the continuation tokens. */
const MAX_PAGES = 10_000;

type Signal = { signal?: AbortSignal };

/**
 * The user-role calls of TeamViewer's Web API v1, over the checked transport: every answer parsed,
 * every list followed to its end, anything else a classified SyncError (403: the token lacks the
 * user-role permission).
 */
export class RolesClient {
  constructor(private readonly transport: WebApiTransport) {}

  async listRoles(opts: Signal = {}): Promise<TvRole[]> {
    const answer = await this.transport.webApi(
      { method: 'GET', path: '/userroles', route: '/userroles', ...signalOf(opts) },
      { ok: [200], schema: userRolesListSchema, what: 'a list of user roles' },
    );
    if (!answer) throw new SyncError('transient', 'GET /userroles gave no list of user roles');
    return answer.Roles.map((role) => ({ id: role.Id, name: role.Name }));
  }

  /** TeamViewer user group ids the role is assigned to. */
  listGroupAssignments(roleId: string, opts: Signal = {}): Promise<string[]> {
    return this.pages('/userroles/assignments/usergroups', roleId, opts, async (query) => {
      const page = await this.transport.webApi(
        { method: 'GET', path: '/userroles/assignments/usergroups', route: '/userroles/assignments/usergroups', query, ...signalOf(opts) },
        { ok: [200], schema: roleGroupAssignmentsSchema, what: 'a page of user-group role assignments' },
      );
      return page && { ids: page.AssignedToGroups, next: page.ContinuationToken ?? undefined };
    });
  }

  /** TeamViewer user ids (`u…`) the role is assigned to directly. */
  listAccountAssignments(roleId: string, opts: Signal = {}): Promise<string[]> {
    return this.pages('/userroles/assignments/account', roleId, opts, async (query) => {
      const page = await this.transport.webApi(
        { method: 'GET', path: '/userroles/assignments/account', route: '/userroles/assignments/account', query, ...signalOf(opts) },
        { ok: [200], schema: roleAccountAssignmentsSchema, what: 'a page of account role assignments' },
      );
      return page && { ids: page.AssignedToUsers, next: page.ContinuationToken ?? undefined };
    });
  }

  assignGroup(roleId: string, groupId: string): Promise<void> {
    return this.write('/userroles/assign/usergroup', { UserRoleId: roleId, UserGroupId: groupId });
  }

  unassignGroup(roleId: string, groupId: string): Promise<void> {
    return this.write('/userroles/unassign/usergroup', { UserRoleId: roleId, UserGroupId: groupId });
  }

  /** In calls of at most ROLE_ACCOUNT_BATCH ids. */
  async assignAccounts(roleId: string, userIds: readonly string[]): Promise<void> {
    for (const batch of batches(userIds)) await this.write('/userroles/assign/account', { UserRoleId: roleId, UserIds: batch });
  }

  async unassignAccounts(roleId: string, userIds: readonly string[]): Promise<void> {
    for (const batch of batches(userIds)) await this.write('/userroles/unassign/account', { UserRoleId: roleId, UserIds: batch });
  }

  private async write(path: string, body: unknown): Promise<void> {
    await this.transport.webApi(
      { method: 'POST', path, route: path, body },
      { ok: [200, 201, 204], schema: roleWriteAnswerSchema, what: 'an answer to a role assignment' },
    );
  }

  private async pages(
    path: string,
    roleId: string,
    opts: Signal,
    fetchPage: (query: Record<string, string>) => Promise<{ ids: string[]; next: string | undefined } | undefined>,
  ): Promise<string[]> {
    const ids: string[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    for (let n = 0; n < MAX_PAGES; n++) {
      opts.signal?.throwIfAborted();
      const page = await fetchPage({ userRoleId: roleId, ...(token !== undefined ? { continuationToken: token } : {}) });
      if (!page) throw new SyncError('transient', `GET ${path} gave no page of assignments`);
      ids.push(...page.ids);
      if (page.next === undefined) return [...new Set(ids)];
      // A token seen before would page forever: the list is not believed.
      if (seen.has(page.next)) throw new SyncError('transient', `GET ${path} repeated a continuation token; the assignment list is not complete`);
      seen.add(page.next);
      token = page.next;
    }
    throw new SyncError('transient', `GET ${path} did not end within ${MAX_PAGES} pages; the assignment list is not complete`);
  }
}

function batches(ids: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += ROLE_ACCOUNT_BATCH) out.push(ids.slice(i, i + ROLE_ACCOUNT_BATCH));
  return out;
}

function signalOf(opts: Signal): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}
