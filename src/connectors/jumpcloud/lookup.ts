import type { DirectoryGroupRef, DirectoryUser, UserLookup } from '../../model/directory.js';
import { SyncError } from '../../model/failure.js';
import { SourceReadError } from '../source.js';
import { readAfter, type FetchPage, type Get } from './client.js';
import type { JumpcloudSourceConfig } from './config.js';
import {
  PAGE_SIZE,
  SYSTEM_USER_FIELDS,
  explain,
  graphObjectWithPathsSchema,
  parsePage,
  systemUserListSchema,
  systemUserSchema,
  toDirectoryUser,
  userGroupSchema,
  v2ListSchema,
} from './wire.js';

/**
 * One person, read now, with the full read's scope rule: in application mode a member of a user
 * group bound directly to the application (any member through nested groups when nestedGroups,
 * else a direct one), or bound to it directly when includeDirectUserBindings; in groups mode a
 * member of a listed group. The groups named are those the full read would list the user in.
 */

/** JumpCloud object ids are 24 hexadecimal digits. */
const OBJECT_ID = /^[0-9a-f]{24}$/i;

export async function lookupUser(get: Get, config: JumpcloudSourceConfig, ref: string, signal?: AbortSignal): Promise<UserLookup> {
  const wanted = ref.trim();
  const found = wanted.includes('@') ? await byEmail(get, wanted, signal) : await byId(get, wanted, signal);
  if ('why' in found) return found;
  const { user } = found;
  const inactive = user.active ? '' : '; inactive in JumpCloud (suspended, password expired, or not yet activated)';

  const { scope } = config;
  const memberOf = await listAll(get, `/v2/users/${encodeURIComponent(user.id)}/memberof`, `groups of user ${user.id}`, config.maxPages, signal);
  // The full read counts /membership (any path) with nestedGroups, else /members (a one-edge path).
  const counted = new Set(
    memberOf.flatMap((raw) => {
      const entry = graphObjectWithPathsSchema.safeParse(raw);
      if (!entry.success) throw new SourceReadError(`JumpCloud's groups of user ${user.id} hold an entry tvsync cannot read (${explain(entry.error)})`);
      const { id, type, paths } = entry.data;
      return type === 'user_group' && (config.nestedGroups || paths.some((p) => p.length === 1)) ? [id] : [];
    }),
  );
  const via = config.nestedGroups ? 'a member (directly or through nested groups)' : 'a direct member';

  if (scope.mode === 'groups') {
    const inScope = [...new Set(scope.groupIds)].filter((id) => counted.has(id));
    if (inScope.length === 0) return { status: 'out-of-scope', user, why: `not ${via} of the listed user groups (${scope.groupIds.join(', ')})` };
    const groups = await named(get, inScope, signal);
    return { status: 'in-scope', user, groups, groupsComplete: true, why: `${via} of user group ${list(groups)}${inactive}` };
  }

  const app = scope.applicationId;
  const boundPath = `/v2/applications/${encodeURIComponent(app)}/usergroups`;
  const bound = (await listAll(get, boundPath, `user groups bound to application ${app}`, config.maxPages, signal)).flatMap((raw) => {
    const entry = graphObjectWithPathsSchema.safeParse(raw);
    if (!entry.success)
      throw new SourceReadError(`JumpCloud's user groups bound to application ${app} hold an entry tvsync cannot read (${explain(entry.error)})`);
    return entry.data.type === 'user_group' && entry.data.paths.some((p) => p.length === 1) ? [entry.data.id] : [];
  });
  const inScope = [...new Set(bound)].filter((id) => counted.has(id));
  if (inScope.length > 0) {
    const groups = await named(get, inScope, signal);
    return { status: 'in-scope', user, groups, groupsComplete: true, why: `${via} of user group ${list(groups)}, bound to application ${app}${inactive}` };
  }
  if (scope.includeDirectUserBindings) {
    const apps = await listAll(get, `/v2/users/${encodeURIComponent(user.id)}/applications`, `applications of user ${user.id}`, config.maxPages, signal);
    const direct = apps.some((raw) => {
      const entry = graphObjectWithPathsSchema.safeParse(raw);
      if (!entry.success) throw new SourceReadError(`JumpCloud's applications of user ${user.id} hold an entry tvsync cannot read (${explain(entry.error)})`);
      return entry.data.type === 'application' && entry.data.id === app && entry.data.paths.some((p) => p.length === 1);
    });
    if (direct)
      return { status: 'in-scope', user, groups: [], groupsComplete: true, why: `bound directly to application ${app}, in no bound user group${inactive}` };
    return { status: 'out-of-scope', user, why: `not ${via} of a user group bound to application ${app}, nor bound to it directly` };
  }
  return { status: 'out-of-scope', user, why: `not ${via} of a user group bound to application ${app}` };
}

type Found = { user: DirectoryUser } | { status: 'not-found'; why: string };

function toUser(data: unknown, what: string): DirectoryUser {
  const parsed = systemUserSchema.safeParse(data);
  if (!parsed.success) throw new SourceReadError(`JumpCloud answered ${what} with a record tvsync cannot read (${explain(parsed.error)})`);
  return toDirectoryUser(parsed.data);
}

async function byId(get: Get, id: string, signal?: AbortSignal): Promise<Found> {
  if (!OBJECT_ID.test(id)) return { status: 'not-found', why: `"${id}" is neither a JumpCloud user id (24 hexadecimal digits) nor an e-mail address` };
  const path = `/systemusers/${encodeURIComponent(id)}`;
  try {
    const { data } = await get(path, { fields: SYSTEM_USER_FIELDS }, signal);
    return { user: toUser(data, `GET ${path}`) };
  } catch (err) {
    if (err instanceof SyncError && err.failureClass === 'not-found') return { status: 'not-found', why: `JumpCloud has no user ${id} (HTTP 404)` };
    throw err;
  }
}

/**
 * One exact match of the address, compared without case; none only when neither the address as
 * given nor its lower-case form is held (whether `$eq` ignores case is not documented).
 */
async function byEmail(get: Get, email: string, signal?: AbortSignal): Promise<Found> {
  const found = await searchEmail(get, email, signal);
  if ('user' in found || email.toLowerCase() === email) return found;
  return searchEmail(get, email.toLowerCase(), signal);
}

async function searchEmail(get: Get, email: string, signal?: AbortSignal): Promise<Found> {
  const { data } = await get('/systemusers', { limit: 2, skip: 0, sort: '_id', fields: SYSTEM_USER_FIELDS, filter: `email:$eq:${email}` }, signal);
  const page = parsePage(systemUserListSchema, data, 'GET /systemusers');
  if (page.results.length !== Math.min(page.totalCount, 2)) {
    throw new SourceReadError(`JumpCloud announced ${page.totalCount} users with that address and sent ${page.results.length}`);
  }
  const users = page.results.map((raw) => toUser(raw, 'GET /systemusers'));
  const exact = users.filter((u) => u.email?.toLowerCase() === email.toLowerCase());
  // A filter JumpCloud ignored would list others: only an exact answer is taken.
  if (exact.length !== users.length)
    throw new SourceReadError('JumpCloud answered the search by e-mail with users of other addresses; the answer is not taken');
  if (page.totalCount > 1) throw new SourceReadError(`JumpCloud holds ${page.totalCount} users with that address; name the user by id`);
  const [user] = exact;
  return user ? { user } : { status: 'not-found', why: 'JumpCloud has no user with that e-mail address' };
}

/** Every entry of a v2 list, counts checked; a list that moved while read is not taken. */
async function listAll(get: Get, path: string, what: string, maxPages: number, signal?: AbortSignal): Promise<unknown[]> {
  const fetchPage: FetchPage = async (skip) => {
    const { data, total } = await get(path, { limit: PAGE_SIZE, skip }, signal);
    return { items: parsePage(v2ListSchema, data, `GET ${path}`), ...(total !== undefined ? { total } : {}) };
  };
  const first = await fetchPage(0);
  const rest = await readAfter(first, fetchPage, (items) => items, what, maxPages);
  if (rest.drifted) throw new SourceReadError(`JumpCloud's ${what} changed while read; ask again`);
  return [...first.items, ...rest.kept];
}

/** The groups' names, as the full read lists them; a group gone or malformed meanwhile leaves the answer unsure. */
async function named(get: Get, ids: string[], signal?: AbortSignal): Promise<DirectoryGroupRef[]> {
  return Promise.all(
    ids.map(async (id) => {
      const path = `/v2/usergroups/${encodeURIComponent(id)}`;
      let data: unknown;
      try {
        ({ data } = await get(path, {}, signal));
      } catch (err) {
        if (err instanceof SyncError && err.failureClass === 'not-found')
          throw new SourceReadError(`user group ${id} was deleted while the user was read; ask again`);
        throw err;
      }
      const group = userGroupSchema.safeParse(data);
      if (!group.success) throw new SourceReadError(`JumpCloud's user group ${id} cannot be read (${explain(group.error)})`);
      return { id, name: group.data.name };
    }),
  );
}

const list = (groups: DirectoryGroupRef[]) => groups.map((g) => `"${g.name}"`).join(', ');
