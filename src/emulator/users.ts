import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { SCIM_USER_SCHEMA, SSO_USER_SCHEMA } from '../model/teamviewer.js';
import { MethodNotAllowed, ScimError } from './errors.js';
import {
  attributeObject,
  attributePath,
  compare,
  invalidValue,
  listReply,
  nonEmpty,
  parseBody,
  parseFilter,
  patchBodySchema,
  readJsonBody,
  requirePatchSchema,
  requireSchema,
  requireText,
  type PatchOperation,
  type Reply,
  type ResourceContext,
} from './protocol.js';
import type { EmulatorStore, EmulatorUser } from './store.js';

/* /Users as TeamViewer documents it: one name, an address that never changes, no deletion. */

const nameSchema = z.object({
  formatted: z.string().optional(),
  givenName: z.string().optional(),
  familyName: z.string().optional(),
});
const emailsSchema = z.array(z.object({ value: z.string(), primary: z.boolean().optional() }));
const userBodySchema = z.object({
  schemas: z.array(z.string()),
  userName: z.string().optional(),
  displayName: z.string().optional(),
  name: nameSchema.optional(),
  emails: emailsSchema.optional(),
  active: z.boolean().optional(),
  password: z.string().optional(),
  preferredLanguage: z.string().optional(),
  [SSO_USER_SCHEMA]: z.object({ ssoCustomerId: z.string().optional() }).optional(),
});
type UserBody = z.infer<typeof userBodySchema>;
/** `name` filters like displayName: TeamViewer keeps a single name. */
const USER_FILTER_ATTRIBUTES: ReadonlySet<string> = new Set(['username', 'emails.value', 'displayname', 'name']);

/** /Users, and /Users/{id} when an id is given. */
export function usersResource(ctx: ResourceContext, req: IncomingMessage, method: string, id: string | undefined, query: URLSearchParams): Promise<Reply> {
  return id === undefined ? users(ctx, req, method, query) : oneUser(ctx, req, method, id);
}

async function users(ctx: ResourceContext, req: IncomingMessage, method: string, query: URLSearchParams): Promise<Reply> {
  if (method === 'GET') {
    if (query.has('filter')) ctx.countFilteredRead();
    return listReply(filterUsers(ctx.store(), query.get('filter')), query, ctx.pageSizeMax(), renderUser);
  }
  if (method !== 'POST') throw new MethodNotAllowed('GET, POST');
  const body = parseBody(userBodySchema, await readJsonBody(req));
  requireSchema(body.schemas, SCIM_USER_SCHEMA);
  const userName = requiredEmail(body);
  const displayName = requiredName(body);
  const ssoCustomerId = body[SSO_USER_SCHEMA]?.ssoCustomerId;
  const user = ctx.store().createUser({
    userName,
    displayName,
    active: body.active ?? true,
    ...(body.preferredLanguage !== undefined && { preferredLanguage: body.preferredLanguage }),
    ...(ssoCustomerId !== undefined && { ssoCustomerId }),
    ...(body.password !== undefined && { password: body.password }),
  });
  ctx.countWrite();
  return { status: 201, body: renderUser(user) };
}

async function oneUser(ctx: ResourceContext, req: IncomingMessage, method: string, id: string): Promise<Reply> {
  if (method === 'DELETE') {
    throw new MethodNotAllowed('GET, PUT, PATCH', "Users can't be deleted; deactivate them (active: false)");
  }
  const user = ctx.store().user(id);
  if (!user) throw new ScimError(404, `User ${id} not found`);
  if (method === 'GET') return { status: 200, body: renderUser(user) };
  if (method === 'PUT') {
    const body = parseBody(userBodySchema, await readJsonBody(req));
    requireSchema(body.schemas, SCIM_USER_SCHEMA);
    if (body.userName !== undefined) assertUnchanged('userName', body.userName, user);
    const address = body.emails === undefined ? undefined : primaryEmail(body.emails);
    if (address !== undefined) assertUnchanged('emails', address, user);
    const displayName = requiredName(body);
    // A full replace: an omitted active takes its create default.
    return userWritten(ctx, ctx.store().updateUser(id, { displayName, active: body.active ?? true }));
  }
  if (method === 'PATCH') {
    const body = parseBody(patchBodySchema, await readJsonBody(req));
    requirePatchSchema(body.schemas);
    return userWritten(ctx, ctx.store().updateUser(id, patchedUser(user, body.Operations)));
  }
  throw new MethodNotAllowed('GET, PUT, PATCH');
}

function userWritten(ctx: ResourceContext, user: Readonly<EmulatorUser>): Reply {
  ctx.countWrite();
  return { status: 200, body: renderUser(user) };
}

function filterUsers(store: EmulatorStore, filterText: string | null): readonly Readonly<EmulatorUser>[] {
  if (filterText === null) return store.userList;
  const filter = parseFilter(filterText, USER_FILTER_ATTRIBUTES);
  const byEmail = filter.attribute === 'username' || filter.attribute === 'emails.value';
  const read = (user: Readonly<EmulatorUser>): string => (byEmail ? user.userName : user.displayName);
  if (filter.op === 'eq' && byEmail) {
    const candidate = store.userByEmail(filter.value);
    return candidate && candidate.userName === filter.value ? [candidate] : [];
  }
  return store.userList.filter((user) => compare(filter.op, read(user), filter.value));
}

/** The primary address, else the first one. */
function primaryEmail(emails: z.infer<typeof emailsSchema>): string | undefined {
  return nonEmpty((emails.find((email) => email.primary === true) ?? emails[0])?.value);
}

/** userName wins over emails, as TeamViewer documents. */
function requiredEmail(body: UserBody): string {
  const address = nonEmpty(body.userName) ?? (body.emails === undefined ? undefined : primaryEmail(body.emails));
  if (address === undefined) throw invalidValue('An e-mail address (userName or emails) is required');
  if (!/^[^\s@]+@[^\s@]+$/.test(address)) throw invalidValue(`"${address}" is not an e-mail address`);
  return address;
}

/** TeamViewer keeps one name: displayName, else name.formatted, else given and family name. */
function requiredName(body: UserBody): string {
  const parts = [body.name?.givenName, body.name?.familyName].map(nonEmpty).filter((part) => part !== undefined);
  const name = nonEmpty(body.displayName) ?? nonEmpty(body.name?.formatted) ?? nonEmpty(parts.join(' '));
  if (name === undefined) throw invalidValue('A name (displayName or name) is required');
  return name;
}

/** TeamViewer's split of its single name: at the first space; no space, no parts. */
function splitName(name: string): [given: string, family: string] | undefined {
  const space = name.indexOf(' ');
  return space < 0 ? undefined : [name.slice(0, space), name.slice(space + 1)];
}

/** A one-word name counts as a given name when only one part is replaced. */
function withNamePart(name: string, part: 0 | 1, value: string): string {
  const parts = splitName(name) ?? [name, ''];
  parts[part] = value;
  return parts.filter((text) => text !== '').join(' ');
}

function assertUnchanged(attribute: string, value: string, user: Readonly<EmulatorUser>): void {
  if (value.trim() !== user.userName) {
    const detail = `${attribute} can't be changed: a user keeps the e-mail address it was created with`;
    throw new ScimError(400, detail, 'mutability');
  }
}

function patchedUser(user: Readonly<EmulatorUser>, operations: readonly PatchOperation[]): UserDraft {
  const draft: UserDraft = { displayName: user.displayName, active: user.active };
  for (const operation of operations) {
    if (operation.op.toLowerCase() !== 'replace') {
      throw new ScimError(400, `Unsupported PATCH op "${operation.op}": only replace is supported`, 'invalidSyntax');
    }
    if (operation.path !== undefined) replaceUserAttribute(draft, user, operation.path, operation.value);
    else {
      for (const [key, value] of Object.entries(attributeObject(operation.value))) {
        replaceUserAttribute(draft, user, key, value);
      }
    }
  }
  return draft;
}

interface UserDraft {
  displayName: string;
  active: boolean;
}

function replaceUserAttribute(draft: UserDraft, user: Readonly<EmulatorUser>, path: string, value: unknown): void {
  const attribute = attributePath(path, SCIM_USER_SCHEMA).toLowerCase();
  const createOnly = new ScimError(400, `${path} can only be set when the user is created`, 'mutability');
  if (attribute.startsWith(SSO_USER_SCHEMA.toLowerCase())) throw createOnly;
  if (attribute === 'emails' || attribute.startsWith('emails.') || attribute.startsWith('emails[')) {
    assertUnchanged('emails', emailValue(value), user);
    return;
  }
  switch (attribute) {
    case 'displayname':
    case 'name.formatted':
      draft.displayName = requireText(path, value);
      return;
    case 'name.givenname':
      draft.displayName = withNamePart(draft.displayName, 0, requireText(path, value));
      return;
    case 'name.familyname':
      draft.displayName = withNamePart(draft.displayName, 1, requireText(path, value));
      return;
    case 'name':
      for (const [key, part] of Object.entries(attributeObject(value))) {
        replaceUserAttribute(draft, user, `name.${key}`, part);
      }
      return;
    case 'active':
      if (typeof value !== 'boolean') throw invalidValue('active must be a boolean');
      draft.active = value;
      return;
    case 'username':
      assertUnchanged('userName', requireText(path, value), user);
      return;
    case 'id':
      if (value !== user.id) throw new ScimError(400, 'id is read-only', 'mutability');
      return;
    case 'preferredlanguage':
    case 'password':
      throw createOnly;
    default:
      throw new ScimError(400, `Unknown or unsupported attribute "${path}"`, 'invalidPath');
  }
}

/** The address an emails operation asks for; '' when it asks for none, which is a change too. */
function emailValue(value: unknown): string {
  if (typeof value === 'string') return value;
  const emails = emailsSchema.safeParse(value);
  return (emails.success ? primaryEmail(emails.data) : undefined) ?? '';
}

function renderUser(user: Readonly<EmulatorUser>): unknown {
  const parts = splitName(user.displayName);
  return {
    schemas: [SCIM_USER_SCHEMA],
    id: user.id,
    userName: user.userName,
    displayName: user.displayName,
    name: { formatted: user.displayName, givenName: parts?.[0] ?? null, familyName: parts?.[1] ?? null },
    emails: [{ value: user.userName, primary: true }],
    active: user.active,
  };
}
