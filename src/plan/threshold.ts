/**
 * The one threshold rule for removals: user deactivations, group deletions and member removals
 * are each held for approval when a cycle would take away too many at once. Pure.
 */

export interface RemovalThreshold {
  /** Hold the removals when there are more than this many… */
  maxCount: number;
  /** …or when they are more than this share (%) of what the sync manages… */
  maxPercent: number;
  /** …provided there are more than this many (so 1 of 3 users does not trip the percentage). */
  minCountForPercent: number;
}

/**
 * Whether `count` unapproved removals of `managed` managed objects exceed the threshold.
 * `alsoCounted` are removals of the same cycle already made elsewhere that count towards the
 * absolute limit (user deactivations, for group deletions).
 */
export function exceedsThreshold(threshold: RemovalThreshold, count: number, managed: number, alsoCounted = 0): boolean {
  const overCount = count > 0 && alsoCounted + count > threshold.maxCount;
  const overPercent = count > threshold.minCountForPercent && count * 100 > threshold.maxPercent * Math.max(managed, 1);
  return overCount || overPercent;
}

/** " (12.5% of 80 managed users)" for a notice; empty when nothing is managed. */
export function shareOf(count: number, managed: number, what: string): string {
  return managed > 0 ? ` (${((count * 100) / managed).toFixed(1)}% of ${managed} managed ${what})` : '';
}
