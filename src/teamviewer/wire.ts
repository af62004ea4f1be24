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
