import type { TvUser } from '../model/teamviewer.js';
import { clip } from './mapping.js';
import type { PlanPolicy, SkippedItem } from './types.js';

/*
 * Recycled addresses. A company gives a leaver's address to a newcomer; the IdP gives the newcomer
 * a new id. TeamViewer still holds the leaver's deactivated user under that address, with their
 * groups, roles, devices and connections. Matching it by e-mail and reactivating it would hand all
 * of that to the newcomer, so it is held for a person to decide, unless the policy says otherwise.
 * One rule for the cycle's plan and the fast lane's single-user plan. Pure.
 */

/** A deactivation tvsync applied: the IdP id the TeamViewer user was linked to then, and when. Kept after the link goes. */
export interface DeactivationRecord {
  sourceId: string;
  atMs: number;
}

export type RecycledAddressPolicy = 'hold' | 'reactivate';

export interface RecycledMatch {
  /** The IdP user that has no link and matched `tv` by e-mail. */
  sourceId: string;
  email: string;
  tv: TvUser;
  /** Other IdP ids this sync links to `tv` (the IdP user's own id left out). */
  holders: readonly string[];
  /** tvsync's record of deactivating `tv`, if it did. */
  deactivated?: DeactivationRecord | undefined;
}

export type RecycledVerdict =
  /** Not a recycled address: matched and linked as any other. */
  | { recycled: false }
  /** Held: no reactivation, no link; the skip says why and whose it was. */
  | { recycled: true; held: SkippedItem }
  /** Recycled, but a person approved it (by TeamViewer user id) or the policy reactivates: `note` goes on the operation's message. */
  | { recycled: true; released: 'approved' | 'policy'; note: string };

/**
 * Whether taking over `tv` for a new IdP user would hand over another person's account: it is
 * deactivated, and it was linked to a different IdP id or tvsync deactivated it for a different
 * one. An active TeamViewer user is never recycled (nothing is handed over by reactivating it), nor
 * one whose only history is this same IdP id (the same person back).
 */
export function recycledAddress(match: RecycledMatch, policy: Pick<PlanPolicy, 'recycledAddresses' | 'approvedRecycled'>): RecycledVerdict {
  const { tv, deactivated } = match;
  if (tv.active) return { recycled: false };
  const holders = [...match.holders].filter((id) => id !== match.sourceId).sort();
  const byRecord = deactivated !== undefined && deactivated.sourceId !== match.sourceId ? deactivated : undefined;
  const previous = holders[0] ?? byRecord?.sourceId;
  if (previous === undefined) return { recycled: false };

  const tvEmail = tv.email || tv.userName;
  const when = deactivated
    ? `tvsync deactivated it on ${new Date(deactivated.atMs).toISOString()}${deactivated.sourceId !== previous ? ` (then linked to IdP user ${clip(deactivated.sourceId)})` : ''}`
    : 'it was deactivated outside tvsync';
  const whose = `TeamViewer user ${tv.id} (${tvEmail}) belonged to IdP user ${clip(previous)}; ${when}`;
  if (policy.approvedRecycled?.has(tv.id)) return { recycled: true, released: 'approved', note: `recycled address approved: ${whose}` };
  if (policy.recycledAddresses === 'reactivate')
    return { recycled: true, released: 'policy', note: `recycled address (policy.recycledAddresses: reactivate): ${whose}` };
  return {
    recycled: true,
    held: {
      reason: 'recycled-address',
      sourceId: match.sourceId,
      email: match.email,
      tvUserId: tv.id,
      message: `${match.email} is a recycled address: ${whose}. Reactivating it for the new IdP user ${clip(match.sourceId)} would hand over that person's groups, roles, devices and connections, so it is neither reactivated nor linked; held for approval (tvsync approve), or set policy.recycledAddresses: reactivate.`,
    },
  };
}
