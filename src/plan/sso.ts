import { emailKey } from './mapping.js';

/*
 * SSO health: which company users TeamViewer does not sign in through SSO, and which break-glass
 * addresses the exclusion list still lacks. Pure: the lists are read by the runtime.
 */

/** TeamViewer's names of the Web API `sso_status` values 0-6. */
export const SSO_STATUS_NAMES = ['Unknown', 'Active', 'EmailExcluded', 'NotValidated', 'CompanyExcluded', 'UserGroupExcluded', 'NotIncluded'] as const;
export type SsoStatusName = (typeof SSO_STATUS_NAMES)[number];

/** Users listed by name in a report; the counts cover everyone. */
export const SSO_LIST_CAP = 200;

export interface SsoUserInput {
  email: string;
  active: boolean;
  ssoStatus?: number;
}

export interface SsoHealth {
  /** `off`: the token may not read what this needs (one line in `detail`); users are synced all the same. */
  status: 'checked' | 'off';
  detail?: string;
  /** Active company users whose SSO status is not Active, per status name (break-glass addresses left out). */
  notActive: Partial<Record<string, number>>;
  /** The first SSO_LIST_CAP of them. */
  users: { email: string; status: string }[];
  breakGlass?: BreakGlassOutcome;
}

export interface BreakGlassOutcome {
  domainId?: string;
  /** Added to the exclusion list by this cycle. */
  added: string[];
  /** On the exclusion list already. */
  present: string[];
  /** On the inclusion list: never put on both lists, reported instead. */
  onInclusionList: string[];
  /** Why nothing could be done (no domain, no permission, a failed read or write). */
  detail?: string;
}

export function ssoStatusName(status: number | undefined): string {
  if (status === undefined) return 'Unknown';
  return SSO_STATUS_NAMES[status] ?? `status-${status}`;
}

/** Active users whose status is not Active, counted per status; deactivated users sign in nowhere and are left out. */
export function summariseSso(users: readonly SsoUserInput[], breakGlass: readonly string[], cap = SSO_LIST_CAP): Pick<SsoHealth, 'notActive' | 'users'> {
  const expected = new Set(breakGlass.map(emailKey));
  const notActive: Record<string, number> = {};
  const listed: SsoHealth['users'] = [];
  const sorted = [...users].sort((a, b) => emailKey(a.email).localeCompare(emailKey(b.email)));
  for (const user of sorted) {
    if (!user.active || user.ssoStatus === 1 || expected.has(emailKey(user.email))) continue;
    const status = ssoStatusName(user.ssoStatus);
    notActive[status] = (notActive[status] ?? 0) + 1;
    if (listed.length < cap) listed.push({ email: user.email, status });
  }
  return { notActive, users: listed };
}

/**
 * Which break-glass addresses to add to the exclusion list: those not on it yet, and never one that
 * is on the inclusion list (an address on both lists causes errors in TeamViewer). Nothing is ever
 * planned for removal.
 */
export function planBreakGlass(
  breakGlass: readonly string[],
  lists: { exclusion: readonly string[]; inclusion: readonly string[] },
): { add: string[]; present: string[]; onInclusionList: string[]; includedGroups: string[] } {
  const excluded = new Set(lists.exclusion.map(emailKey));
  const included = new Set(lists.inclusion.map(emailKey));
  // The lists take user groups too: whether an address is included through one cannot be told here.
  const includedGroups = lists.inclusion.filter((entry) => !entry.includes('@'));
  const add: string[] = [];
  const present: string[] = [];
  const onInclusionList: string[] = [];
  const seen = new Set<string>();
  for (const address of breakGlass) {
    const key = emailKey(address);
    if (seen.has(key)) continue;
    seen.add(key);
    if (included.has(key)) onInclusionList.push(address);
    else if (excluded.has(key)) present.push(address);
    else add.push(address);
  }
  return { add, present, onInclusionList, includedGroups };
}

/** The lines a person must read in the report: the feature off, or break-glass addresses that could not be kept. */
export function ssoNotices(health: SsoHealth): string[] {
  const lines: string[] = [];
  if (health.status === 'off' && health.detail) lines.push(health.detail);
  const glass = health.breakGlass;
  if (glass?.detail) lines.push(glass.detail);
  if (glass && glass.onInclusionList.length > 0) {
    lines.push(
      `Break-glass ${glass.onInclusionList.length === 1 ? 'address' : 'addresses'} ${glass.onInclusionList.join(', ')} ` +
        'on the SSO inclusion list: not put on the exclusion list too (never both lists); take them off the inclusion list.',
    );
  }
  return lines;
}
