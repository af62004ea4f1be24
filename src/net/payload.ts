import type { z } from 'zod';

/**
 * Why an outside payload failed its schema, in a few words for a log line or a report: where in
 * the record (its key path, or `root` for the record as a whole) and what was wrong there.
 */
export function describeIssue(issue: z.core.$ZodIssue, root = 'record'): string {
  return `${issue.path.join('.') || root}: ${issue.message}`;
}

/** The first `issues` problems of a failed parse, joined. */
export function payloadReason(error: z.ZodError, opts: { issues?: number; root?: string } = {}): string {
  const described = error.issues.slice(0, opts.issues ?? 1).map((issue) => describeIssue(issue, opts.root));
  return described.length > 0 ? described.join('; ') : 'does not match the expected shape';
}
