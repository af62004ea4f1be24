import type { DirectoryIssue, DirectoryUser } from '../../src/model/directory.js';
import type { TvUser } from '../../src/model/teamviewer.js';
import type { PlanInput } from '../../src/plan/diff.js';
import type { DeactivationRecord } from '../../src/plan/recycled.js';
import type { OutsideCompanyRecord } from '../../src/plan/types.js';
import { seededRandom } from '../../src/emulator/faults.js';

/**
 * A large, seeded user-plan input in which every rule of the plan has its cases: links that hold,
 * links to gone TeamViewer users, matches by e-mail (free, relinked, held by a present user,
 * recycled, approved), duplicates in case and Unicode form, unmappable records, outside-company
 * addresses, removals (protected, approved, held by the fast lane, over the threshold), directory
 * issues and repeated ids. The same seed gives the same input.
 */
export function generatedPlanInput(seed: number, users: number, opts: { blocked?: 'incomplete' | 'teamviewer-empty' } = {}): PlanInput {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (p: number) => random() < p;
  const nowMs = 1_700_000_000_000;

  const directory: DirectoryUser[] = [];
  let teamviewer: TvUser[] = [];
  const links = new Map<string, string>();
  const outsideCompany = new Map<string, OutsideCompanyRecord>();
  const deactivatedByTvsync = new Map<string, DeactivationRecord>();
  const issues: DirectoryIssue[] = [];
  const protect: string[] = [];
  const approvedDeactivations = new Set<string>();
  const heldByFastLane = new Set<string>();
  const approvedRecycled = new Set<string>();
  let tokenOwnerEmail: string | undefined;

  const names = (i: number): Partial<DirectoryUser> =>
    pick<Partial<DirectoryUser>>([
      { displayName: `User ${i}` },
      { displayName: `  User   ${i} ` },
      { givenName: 'User', familyName: String(i) },
      { formattedName: `User\t${i}` },
      { givenName: ' ', familyName: `${i}` },
      { displayName: `Ünïcødé ${i}` },
    ]);
  const language = () => pick([undefined, undefined, 'de-DE', 'EN', 'zh_Hant_TW', 'xx', ' nb ']);
  const tvName = (i: number) => pick([`User ${i}`, `User ${i}`, `Old ${i}`, `User ${i} `]);
  const tvUser = (id: string, email: string, name: string, active = true): TvUser => {
    const user: TvUser = { id, userName: email, email, displayName: name, active };
    if (chance(0.05)) user.email = '';
    teamviewer.push(user);
    return user;
  };
  const person = (id: string, email: string | undefined, i: number, active = true): DirectoryUser => {
    const user: DirectoryUser = { id, active, ...names(i) };
    if (email !== undefined) user.email = email;
    const lang = language();
    if (lang !== undefined) user.preferredLanguage = lang;
    directory.push(user);
    return user;
  };

  for (let i = 0; i < users; i++) {
    const email = chance(0.02) ? `usér${i}@corp.example` : `user${i}@corp.example`;
    const sourceId = `idp-${i}`;
    const tvId = `u${100_000_000 + i}`;
    const roll = random();
    if (roll < 0.55) {
      // Linked, mostly unchanged; some renamed, disabled or re-enabled.
      const tvActive = !chance(0.04);
      tvUser(tvId, chance(0.03) ? email.toUpperCase() : email, tvName(i), tvActive);
      links.set(sourceId, tvId);
      person(sourceId, email, i, !chance(0.04));
    } else if (roll < 0.58) {
      // Linked to a TeamViewer user that is gone.
      links.set(sourceId, tvId);
      person(sourceId, email, i);
    } else if (roll < 0.6) {
      // The IdP changed the address (or only its case, or its Unicode form).
      tvUser(tvId, email, `User ${i}`);
      links.set(sourceId, tvId);
      person(sourceId, pick([`changed${i}@corp.example`, email.toUpperCase(), email.normalize('NFD')]), i);
    } else if (roll < 0.68) {
      // Not linked; TeamViewer holds the address, perhaps linked to another IdP id.
      const tv = tvUser(tvId, pick([email, email.toUpperCase(), ` ${email}`]), tvName(i), !chance(0.4));
      const holder = random();
      if (holder < 0.3) {
        links.set(`idp-old-${i}`, tvId);
        if (chance(0.3)) person(`idp-old-${i}`, `other${i}@corp.example`, i);
      } else if (holder < 0.4) deactivatedByTvsync.set(tvId, { sourceId: pick([`idp-old-${i}`, sourceId]), atMs: nowMs - 86_400_000 });
      if (!tv.active && chance(0.3)) approvedRecycled.add(tvId);
      person(sourceId, email, i, !chance(0.1));
    } else if (roll < 0.76) {
      // New in the IdP; some inactive, some owned outside the company.
      const user = person(sourceId, email, i, !chance(0.1));
      if (chance(0.1)) outsideCompany.set(email.toLowerCase(), { atMs: nowMs - pick([1000, 3 * 86_400_000]), message: `owned by another company ${i}` });
      if (chance(0.02)) user.id = `idp-${i - 1}`;
    } else if (roll < 0.79) {
      // Two IdP users with one address, in different case or Unicode form.
      person(sourceId, email, i);
      person(`idp-dup-${i}`, pick([email.toUpperCase(), email.normalize('NFD'), ` ${email}`]), i);
      if (chance(0.5)) {
        tvUser(tvId, email, `User ${i}`);
        links.set(sourceId, tvId);
      }
    } else if (roll < 0.82) {
      // Records that cannot be mapped; some linked.
      const bad = pick<DirectoryUser>([
        { id: sourceId, active: true, displayName: 'No Mail' },
        { id: sourceId, active: true, email: '  ', displayName: 'Blank Mail' },
        { id: sourceId, active: true, email: 'not an address', displayName: 'Bad Mail' },
        { id: sourceId, active: true, email },
        { id: sourceId, active: true, email, displayName: 'x'.repeat(300) },
        { id: `${sourceId}-${'i'.repeat(1100)}`, active: true, email, displayName: 'Long Id' },
      ]);
      directory.push(bad);
      if (chance(0.5)) {
        if (chance(0.7)) tvUser(tvId, email, `User ${i}`);
        links.set(bad.id, tvId);
      }
    } else if (roll < 0.95) {
      // Left the scope: the link remains; TeamViewer's user active, inactive or gone.
      const state = random();
      if (state < 0.8) tvUser(tvId, email, `User ${i}`);
      else if (state < 0.9) tvUser(tvId, email, `User ${i}`, false);
      links.set(sourceId, tvId);
      if (chance(0.05)) links.set(`idp-alias-${i}`, tvId);
      if (chance(0.05)) issues.push({ kind: 'user', objectId: sourceId, reason: 'unreadable' });
      if (chance(0.02)) protect.push(pick([email, email.toUpperCase()]));
      if (chance(0.02)) approvedDeactivations.add(tvId);
      if (chance(0.02)) heldByFastLane.add(tvId);
      if (tokenOwnerEmail === undefined && chance(0.01)) tokenOwnerEmail = email.toUpperCase();
    } else {
      // TeamViewer users the sync does not manage; a few repeat an address.
      tvUser(tvId, chance(0.05) ? `user${i - 1}@corp.example` : `manual${i}@corp.example`, `Manual ${i}`, chance(0.8));
    }
  }
  // A list's order does not matter to the plan; shuffled, so that no rule relies on it.
  for (let i = teamviewer.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [teamviewer[i], teamviewer[j]] = [teamviewer[j] as TvUser, teamviewer[i] as TvUser];
  }
  if (opts.blocked === 'teamviewer-empty') teamviewer = [];
  const removals = Math.max(1, Math.floor(users * 0.13));

  return {
    directory: {
      users: directory,
      complete: opts.blocked !== 'incomplete',
      ...(opts.blocked === 'incomplete' ? { incompleteReason: 'page 7 failed' } : {}),
      issues,
    },
    teamviewer,
    links,
    outsideCompany,
    deactivatedByTvsync,
    nowMs,
    policy: {
      protect,
      ...(tokenOwnerEmail !== undefined ? { tokenOwnerEmail } : {}),
      threshold: { maxCount: chance(0.5) ? removals * 2 : Math.floor(removals / 2), maxPercent: 100, minCountForPercent: 0 },
      outsideCompanyRetryMs: 86_400_000,
      approvedDeactivations,
      heldByFastLane,
      recentDeactivations: pick([0, 0, 5]),
      recycledAddresses: pick(['hold', 'hold', 'reactivate'] as const),
      approvedRecycled,
      ...(chance(0.3) ? { ssoCustomerId: 'sso-1' } : {}),
    },
  };
}
