import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { SCIM_GROUP_SCHEMA } from '../model/teamviewer.js';
import { MethodNotAllowed, ScimError } from './errors.js';
import {
  QUOTED,
  attributeObject,
  attributePath,
  compare,
  listReply,
  parseBody,
  parseFilter,
  parseValue,
  patchBodySchema,
  readJsonBody,
  requirePatchSchema,
  requireSchema,
  requireText,
  unquote,
  type PatchOperation,
  type Reply,
  type ResourceContext,
} from './protocol.js';
import type { EmulatorStore, GroupChange, StoredGroup } from './store.js';

/* /Groups as Entra's and Okta's TeamViewer apps use it (TeamViewer publishes no group contract). */

const memberRefsSchema = z.array(z.object({ value: z.string().min(1) }));
const groupBodySchema = z.object({
  schemas: z.array(z.string()),
  displayName: z.string(),
  members: memberRefsSchema.optional(),
});
const GROUP_FILTER_ATTRIBUTES: ReadonlySet<string> = new Set(['displayname']);
const MEMBER_PATH_PATTERN = new RegExp(String.raw`^members\s*\[\s*value\s+eq\s+${QUOTED}\s*\]$`, 'i');

/** /Groups, and /Groups/{id} when an id is given. */
export function groupsResource(ctx: ResourceContext, req: IncomingMessage, method: string, id: string | undefined, query: URLSearchParams): Promise<Reply> {
  return id === undefined ? groups(ctx, req, method, query) : oneGroup(ctx, req, method, id, query);
}

async function groups(ctx: ResourceContext, req: IncomingMessage, method: string, query: URLSearchParams): Promise<Reply> {
  if (method === 'GET') {
    const render = groupRenderer(query);
    if (query.has('filter')) ctx.countFilteredRead();
    return listReply(filterGroups(ctx.store(), query.get('filter')), query, ctx.pageSizeMax(), render);
  }
  if (method !== 'POST') throw new MethodNotAllowed('GET, POST');
  const body = parseBody(groupBodySchema, await readJsonBody(req));
  requireSchema(body.schemas, SCIM_GROUP_SCHEMA);
  const drop = ctx.dropWrites();
  const asked = memberIds(body.members ?? []);
  const group = ctx.store().createGroup(requireText('displayName', body.displayName), drop.groupMembers ? [] : asked);
  ctx.countWrite();
  const answer = renderGroup({ ...group, members: new Set(asked) }, true);
  // Answered as if kept, then forgotten: a SCIM server's "200 and nothing stored".
  if (drop.groupCreate) ctx.store().deleteGroup(group.id);
  return { status: 201, body: answer };
}

async function oneGroup(ctx: ResourceContext, req: IncomingMessage, method: string, id: string, query: URLSearchParams): Promise<Reply> {
  if (method === 'DELETE') {
    if (!ctx.store().deleteGroup(id)) throw new ScimError(404, `Group ${id} not found`);
    ctx.countWrite();
    return { status: 204 };
  }
  const group = ctx.store().group(id);
  if (!group) throw new ScimError(404, `Group ${id} not found`);
  if (method === 'GET') return { status: 200, body: groupRenderer(query)(group) };
  if (method !== 'PATCH') throw new MethodNotAllowed('GET, PATCH, DELETE');
  const body = parseBody(patchBodySchema, await readJsonBody(req));
  requirePatchSchema(body.schemas);
  const changes = body.Operations.flatMap((operation) => groupChanges(operation, id));
  ctx.store().changeGroup(id, ctx.dropWrites().groupMembers ? changes.filter((change) => change.kind === 'rename') : changes);
  ctx.countWrite();
  // Like Entra's reference service: a group PATCH answers 204, so big groups are not echoed back.
  return { status: 204 };
}

function filterGroups(store: EmulatorStore, filterText: string | null): readonly StoredGroup[] {
  if (filterText === null) return store.groupList;
  const filter = parseFilter(filterText, GROUP_FILTER_ATTRIBUTES);
  if (filter.op === 'eq') {
    const candidate = store.groupByName(filter.value);
    return candidate && candidate.displayName === filter.value ? [candidate] : [];
  }
  return store.groupList.filter((group) => compare(filter.op, group.displayName, filter.value));
}

function renderGroup(group: StoredGroup, withMembers: boolean): unknown {
  return {
    schemas: [SCIM_GROUP_SCHEMA],
    id: group.id,
    displayName: group.displayName,
    ...(withMembers && { members: Array.from(group.members, (value) => ({ value })) }),
  };
}

function groupRenderer(query: URLSearchParams): (group: StoredGroup) => unknown {
  const excluded = (query.get('excludedAttributes') ?? '').split(',').map((name) => name.trim().toLowerCase());
  const withMembers = !excluded.includes('members');
  return (group) => renderGroup(group, withMembers);
}

const memberIds = (refs: z.infer<typeof memberRefsSchema>): string[] => refs.map((ref) => ref.value);

function groupChanges(operation: PatchOperation, groupId: string): GroupChange[] {
  const op = operation.op.toLowerCase();
  if (op === 'remove') return [groupRemoval(operation.path, operation.value)];
  if (op !== 'add' && op !== 'replace') {
    throw new ScimError(400, `Unsupported PATCH op "${operation.op}"`, 'invalidSyntax');
  }
  if (operation.path !== undefined) return groupAssignment(op, operation.path, operation.value, groupId);
  return Object.entries(attributeObject(operation.value)).flatMap(([key, value]) => groupAssignment(op, key, value, groupId));
}

function groupAssignment(op: 'add' | 'replace', path: string, value: unknown, groupId: string): GroupChange[] {
  switch (attributePath(path, SCIM_GROUP_SCHEMA).toLowerCase()) {
    case 'displayname':
      return [{ kind: 'rename', displayName: requireText(path, value) }];
    case 'members':
      return [{ kind: op === 'add' ? 'add' : 'set', memberIds: memberIds(parseValue(memberRefsSchema, value, path)) }];
    case 'id':
      // Okta repeats the group id in its rename PATCH.
      if (value !== groupId) throw new ScimError(400, 'id is read-only', 'mutability');
      return [];
    default:
      throw new ScimError(400, `Unknown or unsupported attribute "${path}"`, 'invalidPath');
  }
}

function groupRemoval(path: string | undefined, value: unknown): GroupChange {
  if (path === undefined) throw new ScimError(400, 'A remove operation needs a path', 'noTarget');
  const attribute = attributePath(path, SCIM_GROUP_SCHEMA);
  const single = MEMBER_PATH_PATTERN.exec(attribute)?.[1];
  if (single !== undefined) return { kind: 'remove', memberIds: [unquote(single)] };
  if (attribute.toLowerCase() !== 'members') throw new ScimError(400, `Can't remove "${path}"`, 'invalidPath');
  // Without a value, RFC 7644 removes every member.
  if (value === undefined) return { kind: 'set', memberIds: [] };
  return { kind: 'remove', memberIds: memberIds(parseValue(memberRefsSchema, value, path)) };
}
