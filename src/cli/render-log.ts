import type { ProvisioningLogEntry } from '../observe/provisioning-log.js';

/** Widths of the longest kind (removeGroupMembers) and outcome (cancelled), so columns line up. */
const KIND_WIDTH = 18;
const OUTCOME_WIDTH = 9;

/** Second precision reads better in a terminal; the stored entry keeps the milliseconds. */
function shortTime(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

function show(value: string | boolean | undefined): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value ?? '?');
}

/** "displayName "Jane Doe" → "Jane Q. Doe", active true → false" for the fields a write touched. */
function changes(entry: ProvisioningLogEntry): string {
  const after = entry.after;
  if (!after) return '';
  const parts: string[] = [];
  if (after.displayName !== undefined) parts.push(`displayName ${show(entry.before?.displayName)} → ${show(after.displayName)}`);
  if (after.active !== undefined) parts.push(`active ${show(entry.before?.active)} → ${show(after.active)}`);
  return parts.join(', ');
}

/** Who an entry is about: the user's address, else the group, else the ids a skip names. */
function subject(entry: ProvisioningLogEntry): string {
  if (entry.email) return entry.email;
  if (entry.group) return `group ${JSON.stringify(entry.group)}`;
  if (entry.sourceGroupId ?? entry.tvGroupId) return `group ${entry.sourceGroupId ?? entry.tvGroupId}`;
  return '-';
}

/** Members shown per entry; the JSON form has them all. */
const MEMBERS_SHOWN = 10;

/** "members a@corp.example, u123 and 4 more": whom a membership operation added or removed. */
function memberList(entry: ProvisioningLogEntry): string {
  const members = entry.members ?? [];
  if (members.length === 0) return '';
  const shown = members.slice(0, MEMBERS_SHOWN).map((m) => m.email ?? m.sourceId ?? m.tvUserId);
  const more = members.length > MEMBERS_SHOWN ? ` and ${members.length - MEMBERS_SHOWN} more` : '';
  return `members ${shown.join(', ')}${more}`;
}

/** The provisioning log as text, one line per entry, in the order given (the log reads newest first). */
export function renderLogEntries(entries: ProvisioningLogEntry[]): string {
  return entries
    .map((entry) => {
      const cause = entry.failureClass ?? entry.reason;
      const columns = [
        shortTime(entry.at),
        entry.cycleId,
        entry.kind.padEnd(KIND_WIDTH),
        entry.outcome.padEnd(OUTCOME_WIDTH),
        subject(entry),
        cause ? `${cause}: ${entry.message}` : entry.message,
      ];
      // Only updates and renames show before → after: a create has no before, and for (re)activation the kind says it.
      const diff = entry.kind === 'updateUser' || entry.kind === 'renameGroup' ? changes(entry) : '';
      if (diff) columns.push(`(${diff})`);
      const who = memberList(entry);
      if (who) columns.push(`(${who})`);
      if (entry.adopted) columns.push('(adopted)');
      if (entry.via) columns.push(`(fast lane: ${entry.via.feed ?? entry.via.trigger})`);
      return columns.join('  ').trimEnd();
    })
    .join('\n');
}
