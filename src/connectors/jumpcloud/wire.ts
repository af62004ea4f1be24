import { z } from 'zod';
import type { DirectoryUser } from '../../model/directory.js';
import { SyncError } from '../../model/failure.js';
import { payloadReason } from '../../net/payload.js';

/** JumpCloud's wire formats, only the fields tvsync reads. Unknown fields are ignored. */

/** v2 caps `limit` at 100; v1 pages the same way. */
export const PAGE_SIZE = 100;

/** The v1 `fields` projection: what DirectoryUser needs and no more. */
export const SYSTEM_USER_FIELDS = '_id email firstname lastname displayname suspended password_expired state';

const optionalText = z
  .string()
  .nullish()
  .transform((v) => (v === null || v === undefined || v.trim() === '' ? undefined : v));

export const systemUserSchema = z.object({
  _id: z.string().min(1),
  email: optionalText,
  firstname: optionalText,
  lastname: optionalText,
  displayname: optionalText,
  suspended: z.boolean().nullish(),
  password_expired: z.boolean().nullish(),
  /** ACTIVATED, STAGED or SUSPENDED. */
  state: z.string().nullish(),
});
export type SystemUser = z.output<typeof systemUserSchema>;

/** GET /systemusers (v1): records stay unknown so one bad record does not sink its page. */
export const systemUserListSchema = z.object({
  totalCount: z.number().int().nonnegative(),
  results: z.array(z.unknown()),
});

/** v2 lists are bare arrays; their total travels in the x-total-count header. */
export const v2ListSchema = z.array(z.unknown());

export const userGroupSchema = z.object({
  id: z.string().min(1),
  name: z.string().trim().min(1),
});

const graphObjectSchema = z.object({ id: z.string().min(1), type: z.string() });

/** An edge: `/usergroups/{id}/members` and `/applications/{id}/associations` entries. */
export const graphConnectionSchema = z.object({ to: graphObjectSchema });

/**
 * A traversal result (`/applications/{id}/users|usergroups`, `/usergroups/{id}/membership`): each
 * path is the chain of edges from the start object to this one, so a one-edge path is a direct binding.
 */
export const graphObjectWithPathsSchema = graphObjectSchema.extend({
  paths: z.array(z.array(z.unknown())),
});

/** Enough of any record to know whether it is in scope before validating all of it. */
export const idOfSystemUser = z.object({ _id: z.string().min(1) });
export const idOfUserGroup = z.object({ id: z.string().min(1) });

/** Parses a payload at the edge; a page JumpCloud got wrong fails the read rather than shrinking it. */
export function parsePage<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  throw new SyncError('invalid', `JumpCloud answered ${what} with a page tvsync cannot read (${explain(parsed.error)})`);
}

/** The first few problems of a record JumpCloud got wrong. */
export function explain(error: z.ZodError): string {
  return payloadReason(error, { issues: 3 });
}

/**
 * Inactive unless JumpCloud would let the user sign in: suspended, an expired password (JumpCloud
 * suspends for that too) and state SUSPENDED all deactivate, and so does STAGED, a user who has
 * not been activated yet. A locked account (too many failed logins) is temporary and stays active.
 */
export function toDirectoryUser(user: SystemUser): DirectoryUser {
  const active = !user.suspended && !user.password_expired && user.state !== 'SUSPENDED' && user.state !== 'STAGED';
  return {
    id: user._id,
    ...(user.email !== undefined ? { email: user.email } : {}),
    ...(user.displayname !== undefined ? { displayName: user.displayname } : {}),
    ...(user.firstname !== undefined ? { givenName: user.firstname } : {}),
    ...(user.lastname !== undefined ? { familyName: user.lastname } : {}),
    active,
  };
}

/** Directory Insights asks for at most 10,000 events a page; a smaller page keeps each answer small. */
export const INSIGHTS_PAGE_SIZE = 1000;

/** What every Directory Insights event must carry for the feed to place it; anything less fails the poll. */
export const insightsEventHeadSchema = z.object({
  id: z.string().min(1),
  event_type: z.string().min(1),
  timestamp: z.string().refine((t) => !Number.isNaN(Date.parse(t)), 'expected an RFC 3339 time'),
});

const insightsObjectSchema = z.object({ object_id: z.string().min(1), type: z.string().min(1), name: z.string().nullish() });

/** The parts of an event that say whom it concerns: `resource` (the object changed) and, for association_change, the edge. */
export const insightsEventSchema = insightsEventHeadSchema.extend({
  service: z.string().nullish(),
  success: z.boolean().nullish(),
  resource: z.object({ id: z.string().nullish(), type: z.string().nullish(), name: z.string().nullish() }).nullish(),
  association: z
    .object({
      op: z.string().nullish(),
      connection: z.object({ from: insightsObjectSchema, to: insightsObjectSchema }),
    })
    .nullish(),
  changes: z.array(z.object({ field: z.string() })).nullish(),
});
export type InsightsEvent = z.output<typeof insightsEventSchema>;

/** A 200 that carries an error instead of the event array. */
export const insightsErrorSchema = z.union([z.object({ error: z.unknown() }), z.object({ message: z.string() })]);
