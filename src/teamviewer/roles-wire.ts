import { z } from 'zod';

/*
 * The Web API v1 user-role answers tvsync reads (field names as TeamViewer's PowerShell module reads
 * them), parsed at the edge. Extra fields are dropped; what tvsync decides on is required.
 */

export const userRoleSchema = z.object({
  Id: z.string().min(1),
  Name: z.string(),
});

/** GET /userroles: the company's roles. A 200 without the list is not taken for "no roles". */
export const userRolesListSchema = z.object({ Roles: z.array(userRoleSchema) });

const continuation = z.string().min(1).nullish();

/** GET /userroles/assignments/usergroups?userRoleId=: one page of the user groups holding a role. */
export const roleGroupAssignmentsSchema = z.object({
  AssignedToGroups: z.array(z.union([z.string().min(1), z.number()]).transform(String)),
  ContinuationToken: continuation,
});

/** GET /userroles/assignments/account?userRoleId=: one page of the accounts holding a role (ids with the `u` prefix). */
export const roleAccountAssignmentsSchema = z.object({
  AssignedToUsers: z.array(z.string().min(1)),
  ContinuationToken: continuation,
});

/** An assign or unassign answer: empty (204) or a body that is not an error. */
export const roleWriteAnswerSchema = z.unknown().refine((body) => !(body !== null && typeof body === 'object' && ('error' in body || 'error_code' in body)), {
  message: 'an answer without an error',
});
