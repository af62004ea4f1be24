import { z } from 'zod';
import { SCIM_LIST_SCHEMA, type TvGroup, type TvUser } from '../model/teamviewer.js';

/*
 * What TeamViewer sends back, parsed at the edge. Unknown extra fields are allowed (and dropped);
 * only the fields tvsync relies on are required.
 */

const scimEmail = z.object({
  value: z.string(),
  primary: z.boolean().nullish(),
});

export const scimUserSchema = z.object({
  id: z.string().min(1),
  userName: z.string().min(1),
  displayName: z.string().nullish(),
  name: z.object({ formatted: z.string().nullish() }).nullish(),
  emails: z.array(scimEmail).nullish(),
  // Required: a user whose state is unknown must not reach the planner, which decides (de)activation on it.
  active: z.boolean(),
});

/** /Groups has no published contract; only an id and a name are required, members may be absent. */
export const scimGroupSchema = z.object({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  displayName: z.string(),
  members: z.array(z.object({ value: z.union([z.string(), z.number()]).transform(String) })).nullish(),
});

/**
 * One page of a SCIM list (RFC 7644 §3.4.2, and TeamViewer's documented answer): the ListResponse
 * schema and totalResults are required, so a 200 that carries an error or anything else is never
 * read as an empty list. Resources may be absent only on a page with nothing in it.
 */
export function listResponseSchema<T extends z.ZodType>(item: T) {
  return z.object({
    schemas: z.array(z.string()).refine((list) => list.includes(SCIM_LIST_SCHEMA), `must name ${SCIM_LIST_SCHEMA}`),
    totalResults: z.number().int().nonnegative(),
    Resources: z.array(item).nullish(),
  });
}

/*
 * The user list's pages are read 100,000 items at a time, and a schema library's general walk costs
 * more than the request. So each page is first checked by hand, field by field, against the same
 * rules as the schemas above; anything that does not pass (a missing field, a wrong type) goes
 * through the schema, which rejects it and names what is wrong. The hand check never accepts what
 * the schema would refuse, and gives the same value the schema would.
 */

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isOptionalString(value: unknown): value is string | null | undefined {
  return value === undefined || value === null || typeof value === 'string';
}

function isOptionalBoolean(value: unknown): value is boolean | null | undefined {
  return value === undefined || value === null || typeof value === 'boolean';
}

/** A SCIM user as scimUserSchema parses it, or undefined for the schema to look at. */
export function quickScimUser(value: unknown): ScimUserWire | undefined {
  if (!isPlain(value)) return undefined;
  const { id, userName, displayName, name, emails, active } = value;
  if (typeof id !== 'string' || id.length < 1 || typeof userName !== 'string' || userName.length < 1 || typeof active !== 'boolean') return undefined;
  if (!isOptionalString(displayName)) return undefined;
  const user: ScimUserWire = { id, userName, active };
  if (displayName !== undefined) user.displayName = displayName;
  if (name === null) user.name = null;
  else if (name !== undefined) {
    if (!isPlain(name) || !isOptionalString(name.formatted)) return undefined;
    user.name = name.formatted === undefined ? {} : { formatted: name.formatted };
  }
  if (emails === null) user.emails = null;
  else if (emails !== undefined) {
    if (!Array.isArray(emails)) return undefined;
    const list: { value: string; primary?: boolean | null }[] = [];
    for (const email of emails as unknown[]) {
      if (!isPlain(email) || typeof email.value !== 'string' || !isOptionalBoolean(email.primary)) return undefined;
      list.push(email.primary === undefined ? { value: email.value } : { value: email.value, primary: email.primary });
    }
    user.emails = list;
  }
  return user;
}

/** A page of a SCIM list as listResponseSchema(item) parses it, or undefined for the schema to look at. */
export function quickListPage<T>(
  body: unknown,
  item: (value: unknown) => T | undefined,
): { schemas: string[]; totalResults: number; Resources?: T[] | null } | undefined {
  if (!isPlain(body)) return undefined;
  const { schemas, totalResults, Resources } = body;
  if (!Array.isArray(schemas) || !schemas.every((s) => typeof s === 'string') || !schemas.includes(SCIM_LIST_SCHEMA)) return undefined;
  if (typeof totalResults !== 'number' || !Number.isSafeInteger(totalResults) || totalResults < 0) return undefined;
  const page: { schemas: string[]; totalResults: number; Resources?: T[] | null } = { schemas: [...(schemas as string[])], totalResults };
  if (Resources === null) page.Resources = null;
  else if (Resources !== undefined) {
    if (!Array.isArray(Resources)) return undefined;
    const items: T[] = new Array(Resources.length);
    for (let i = 0; i < Resources.length; i++) {
      const parsed = item(Resources[i]);
      if (parsed === undefined) return undefined;
      items[i] = parsed;
    }
    page.Resources = items;
  }
  return page;
}

export const scimErrorSchema = z.object({
  schemas: z.array(z.string()).optional(),
  status: z.union([z.string(), z.number()]).optional(),
  scimType: z.string().optional(),
  detail: z.string().optional(),
});

export const webApiErrorSchema = z.object({
  error: z.string(),
  error_description: z.string().optional(),
  error_code: z.union([z.string(), z.number()]).optional(),
});

/** GET /api/v1/account: the account the script token belongs to. */
export const webApiAccountSchema = z.object({
  userid: z.union([z.string(), z.number()]).transform(String).optional(),
  email: z.string().min(1),
  name: z.string().optional(),
});

export type ScimUserWire = z.infer<typeof scimUserSchema>;
export type ScimGroupWire = z.infer<typeof scimGroupSchema>;

export function toTvUser(wire: ScimUserWire): TvUser {
  const emails = wire.emails ?? [];
  const email = (emails.find((e) => e.primary === true) ?? emails[0])?.value ?? wire.userName;
  return {
    id: wire.id,
    userName: wire.userName,
    email,
    displayName: wire.displayName ?? wire.name?.formatted ?? '',
    active: wire.active,
  };
}

/** `members` absent is read as no members: TeamViewer's group contract does not say when it is sent. */
export function toTvGroup(wire: ScimGroupWire): TvGroup {
  return {
    id: wire.id,
    displayName: wire.displayName,
    memberIds: (wire.members ?? []).map((m) => m.value),
  };
}
