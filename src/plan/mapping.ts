import type { DirectoryUser } from '../model/directory.js';

/**
 * How an IdP user becomes a TeamViewer user. Pure: the plan engine and `tvsync plan` rely on it
 * giving the same answer for the same record.
 */

export type MappingSkipReason = 'no-email' | 'invalid-email' | 'no-name';

export interface MappedUser {
  ok: true;
  sourceId: string;
  /** Exactly as the IdP holds it (trimmed): sent as userName and e-mail. */
  email: string;
  /** Lower-cased: what matching compares, since TeamViewer treats addresses case-insensitively. */
  emailKey: string;
  displayName: string;
  active: boolean;
  preferredLanguage?: string;
}

export interface UnmappableUser {
  ok: false;
  sourceId: string;
  email?: string;
  reason: MappingSkipReason;
  message: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

const RUNS_OF_SPACE = /\s{2,}|[\t\n\r\f\v]/;

function clean(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let text = value.trim();
  // Most names need no collapsing; testing first keeps the 100k-user plan cheap.
  if (RUNS_OF_SPACE.test(text)) text = text.replace(/\s+/g, ' ');
  return text === '' ? undefined : text;
}

/** TeamViewer keeps one name: displayName, else name.formatted, else givenName + " " + familyName. */
export function deriveName(user: Pick<DirectoryUser, 'displayName' | 'formattedName' | 'givenName' | 'familyName'>): string | undefined {
  return (
    clean(user.displayName) ??
    clean(user.formattedName) ??
    clean([user.givenName, user.familyName].filter((part) => clean(part) !== undefined).join(' '))
  );
}

// The language codes TeamViewer's Web API knows. How SCIM maps preferredLanguage onto them is not
// documented; sending a code from this list is the safest guess, anything else is left out so the
// create does not fail over a welcome-mail language.
const TEAMVIEWER_LANGUAGES = new Set([
  'bg', 'cs', 'da', 'de', 'el', 'en', 'es', 'fi', 'fr', 'hr', 'hu', 'id', 'it', 'ja', 'ko', 'lt', 'nl', 'no',
  'pl', 'pt', 'ro', 'ru', 'sk', 'sr', 'sv', 'th', 'tr', 'uk', 'vi',
]);
const LANGUAGE_ALIASES: Record<string, string> = { nb: 'no', nn: 'no' };

/** `de-DE`, `de_DE`, `DE` → `de`; Chinese keeps its script/region (`zh_CN`, `zh_TW`); unknown → undefined. */
export function normaliseLanguage(value: string | undefined): string | undefined {
  const text = value?.trim().toLowerCase().replace(/-/g, '_');
  if (!text) return undefined;
  const parts = text.split('_');
  const primary = parts[0] ?? '';
  if (primary === 'zh') {
    const rest = parts.slice(1);
    if (rest.some((p) => p === 'tw' || p === 'hk' || p === 'mo' || p === 'hant')) return 'zh_TW';
    return 'zh_CN';
  }
  const code = LANGUAGE_ALIASES[primary] ?? primary;
  return TEAMVIEWER_LANGUAGES.has(code) ? code : undefined;
}

export function mapDirectoryUser(user: DirectoryUser): MappedUser | UnmappableUser {
  const email = user.email?.trim();
  if (!email) {
    return { ok: false, sourceId: user.id, reason: 'no-email', message: `IdP user ${user.id} has no e-mail address; TeamViewer needs one as userName` };
  }
  if (!EMAIL.test(email)) {
    return { ok: false, sourceId: user.id, email, reason: 'invalid-email', message: `IdP user ${user.id} has "${email}" as e-mail, which is not an address TeamViewer accepts` };
  }
  const displayName = deriveName(user);
  if (!displayName) {
    return { ok: false, sourceId: user.id, email, reason: 'no-name', message: `${email} has no displayName, formatted name, given name or family name; TeamViewer needs a name` };
  }
  const mapped: MappedUser = { ok: true, sourceId: user.id, email, emailKey: emailKey(email), displayName, active: user.active };
  const language = normaliseLanguage(user.preferredLanguage);
  if (language) mapped.preferredLanguage = language;
  return mapped;
}
