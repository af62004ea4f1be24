import { outsideText, secrets } from '../net/secrets.js';
import { OPERATION_KINDS, OPERATION_VERBS, type CycleReport } from '../plan/report.js';
import type { ProvisioningLogEntry } from './provisioning-log.js';

/**
 * The status page: pure functions from plain data to HTML. Every value passes `html` (secrets
 * scrubbed, then escaped); text that came from outside (an IdP's or TeamViewer's message) passes
 * `outside` (cut, scrubbed, escaped). No script: every action is a form POST.
 */

/** What the page shows of one sync (a subset of what `tvsync status --json` gives). */
export interface PageSync {
  sync: string;
  nextCycleAt: string | null;
  every: number;
  quarantined: boolean;
  health: { consecutiveFailures: number; quarantinedUntil?: number; reason?: string; lastOutcome?: string; lastSuccessAt?: number; lastCycleAt?: number };
  pause: { untilMs: number; askedMs: number; appliedMs: number } | null;
  cycles: Record<string, number>;
  operations: Record<string, number>;
  /** Newest first. */
  reports: CycleReport[];
  fastLane: { enabled: boolean; held: { email: string; tvUserId: string; message: string; atMs: number; kind?: 'deactivation' | 'recycled-address' }[] };
}

/** Who is looking: what the page offers them. */
export type PageAccess =
  /** No http.triggerToken: nobody can act from the page. */
  { kind: 'no-token' } | { kind: 'anonymous' } | { kind: 'session'; csrf: string };

export interface LogSearch {
  sync: string;
  email?: string;
  cycleId?: string;
  entries: ProvisioningLogEntry[];
  limit: number;
}

export interface StatusPageView {
  syncs: PageSync[];
  access: PageAccess;
  /** A fixed sentence about the last action (set by the server, never taken from the request). */
  notice?: { ok: boolean; text: string };
  search?: LogSearch;
  /** Sync names for the search form. */
  syncNames: string[];
  nowMs: number;
}

/** Most items of one list shown on the page; the CLI and the provisioning log have the rest. */
export const PAGE_LIST_CAP = 50;
/** Reports shown per sync. */
export const PAGE_REPORTS = 10;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Any value as HTML text or attribute: secrets scrubbed, then escaped. */
export function html(value: unknown): string {
  return secrets.scrub(String(value ?? '')).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Outside text (an IdP's or TeamViewer's message, a quarantine reason): scrubbed, cut and escaped. */
function outside(text: string | undefined, limit = 300): string {
  return html(outsideText(text ?? '', limit));
}

function iso(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '–' : new Date(ms).toISOString().replace('.000Z', 'Z');
}

function duration(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1).replace(/\.0$/, '')} h`;
}

function syncPath(sync: string, action: string): string {
  return `/status/syncs/${html(encodeURIComponent(sync))}/${action}`;
}

function csrfField(access: PageAccess): string {
  return access.kind === 'session' ? `<input type="hidden" name="csrf" value="${html(access.csrf)}">` : '';
}

/** A POST form with one button, or a note saying why there is none. */
function actionForm(access: PageAccess, action: string, label: string, fields: Record<string, string> = {}): string {
  if (access.kind !== 'session') return '';
  const hidden = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${html(name)}" value="${html(value)}">`)
    .join('');
  return `<form method="post" action="${action}" class="inline">${csrfField(access)}${hidden}<button type="submit">${html(label)}</button></form>`;
}

function list<T>(items: readonly T[], total: number, item: (t: T) => string, more: string): string {
  const shown = items.slice(0, PAGE_LIST_CAP);
  const rest = Math.max(total, items.length) - shown.length;
  return `<ul>${shown.map((i) => `<li>${item(i)}</li>`).join('')}${rest > 0 ? `<li class="muted">… ${rest} more ${html(more)}</li>` : ''}</ul>`;
}

function counts(report: CycleReport): string {
  const parts = OPERATION_KINDS.filter(
    (k) => report.operations[k] && (report.operations[k].planned > 0 || report.operations[k].applied > 0 || report.operations[k].failed > 0),
  ).map((k) => {
    const c = report.operations[k];
    return `${OPERATION_VERBS[k]} ${c.applied}/${c.planned}${c.failed ? ` (${c.failed} failed)` : ''}${c.cancelled ? ` (${c.cancelled} cancelled)` : ''}`;
  });
  if (report.adopted) parts.push(`adopted ${report.adopted}`);
  const writes = parts.length ? html(parts.join(' · ')) : '<span class="muted">no writes</span>';
  const s = report.summary;
  return s
    ? `${writes}<div class="muted">in scope ${html(s.inScope)} · TeamViewer ${html(s.teamviewerUsers)} · managed ${html(s.managed)} · unchanged ${html(s.unchanged)}</div>`
    : writes;
}

function reportRow(report: CycleReport): string {
  const failure = report.failure ? `<div class="bad">${html(report.failure.failureClass)}: ${outside(report.failure.message)}</div>` : '';
  const held = heldTotal(report) > 0 ? '<div>held for approval</div>' : '';
  const failures = report.failures.length
    ? `<details><summary>${report.failures.length} failed operation(s)</summary>${list(
        report.failures,
        report.failures.length,
        (f) => `${html(f.failureClass ?? '')} ${html(f.email ?? f.group ?? f.sourceId)}: ${outside(f.message)}`,
        'failures (search the provisioning log)',
      )}</details>`
    : '';
  const skipped = report.skipped.length
    ? `<details><summary>${report.skipped.length} skipped</summary>${list(
        report.skipped,
        report.skipped.length,
        (s) => `${html(s.reason)}: ${outside(s.message)}`,
        'skipped (search the provisioning log)',
      )}</details>`
    : '';
  const notices = report.notices.length
    ? `<ul class="notices">${report.notices
        .slice(0, PAGE_LIST_CAP)
        .map((n) => `<li>${outside(n)}</li>`)
        .join('')}</ul>`
    : '';
  return `<tr>
<td><a href="/status?sync=${html(encodeURIComponent(report.sync))}&amp;cycle=${html(encodeURIComponent(report.cycleId))}#search">${html(report.cycleId)}</a><div class="muted">${html(report.trigger)}</div></td>
<td>${html(report.startedAt)}<div class="muted">${html(duration(report.durationMs))}</div></td>
<td><span class="outcome ${html(report.outcome)}">${html(report.outcome)}</span>${failure}${held}</td>
<td>${counts(report)}${notices}${failures}${skipped}</td>
</tr>`;
}

function heldTotal(report: CycleReport): number {
  return report.held.count + (report.groups?.held.count ?? 0) + (report.groups?.heldMemberRemovals?.groups ?? 0) + (report.recycled?.count ?? 0);
}

/** What the newest report holds for approval, with its Approve button (the same release as `tvsync approve --cycle`). */
function heldSection(sync: PageSync, access: PageAccess): string {
  // The newest cycle that planned: one that failed before planning holds nothing, and leaves the holds before it pending.
  const latest = sync.reports.find((r) => r.summary !== undefined);
  const parts: string[] = [];
  if (latest && heldTotal(latest) > 0) {
    const items: string[] = [];
    if (latest.held.count)
      items.push(
        `<h4>${latest.held.count} deactivation(s)</h4>${list(latest.held.items, latest.held.count, (h) => `${html(h.email)} <span class="muted">${outside(h.message)}</span>`, 'deactivations')}`,
      );
    const groups = latest.groups;
    if (groups?.held.count)
      items.push(
        `<h4>${groups.held.count} group deletion(s)</h4>${list(groups.held.items, groups.held.count, (g) => `${html(g.displayName)} <span class="muted">${outside(g.message)}</span>`, 'group deletions')}`,
      );
    if (groups?.heldMemberRemovals?.count)
      items.push(
        `<h4>${groups.heldMemberRemovals.count} member removal(s) in ${groups.heldMemberRemovals.groups} group(s)</h4>${list(
          groups.heldMemberRemovals.items,
          groups.heldMemberRemovals.groups,
          (g) => `${html(g.displayName)}: ${html(g.members)} member(s) <span class="muted">${outside(g.message)}</span>`,
          'groups',
        )}`,
      );
    if (latest.recycled?.count)
      items.push(
        `<h4>${latest.recycled.count} recycled address(es)</h4><p class="muted">A new IdP user has the address of another person's deactivated TeamViewer user: approving reactivates that user and links it to the new person.</p>${list(
          latest.recycled.items,
          latest.recycled.count,
          (r) => `${html(r.email ?? r.sourceId)} <span class="muted">${outside(r.message)}</span>`,
          'recycled addresses',
        )}`,
      );
    parts.push(`<div class="held" id="held-${html(sync.sync)}">
<p>Cycle <code>${html(latest.cycleId)}</code> held these at the thresholds. Approving releases them to a cycle started now; those no longer needed then are not done.</p>
${items.join('\n')}
${actionForm(access, syncPath(sync.sync, 'approve'), `Approve what cycle ${latest.cycleId} held`, { cycle: latest.cycleId })}
</div>`);
  }
  const fastHeld = sync.fastLane.held;
  if (fastHeld.length) {
    parts.push(`<div class="held" id="held-fast-${html(sync.sync)}">
<p>The fast lane held these at its sliding-window threshold. Approving syncs each person again now (one whose state changed since is not deactivated).</p>
${list(fastHeld, fastHeld.length, (h) => `${html(h.email)} <span class="muted">${html(h.kind === 'recycled-address' ? 'recycled address' : 'deactivation')}, ${html(iso(h.atMs))}: ${outside(h.message)}</span>`, 'held by the fast lane')}
${actionForm(access, syncPath(sync.sync, 'approve'), 'Approve what the fast lane held', { fastLane: 'true' })}
</div>`);
  }
  if (parts.length === 0) return '<p class="muted">Nothing is held for approval.</p>';
  return parts.join('\n');
}

function syncSection(sync: PageSync, view: StatusPageView): string {
  const { access } = view;
  const health = sync.health;
  const quarantine = sync.quarantined
    ? `<p class="bad"><strong>Quarantined</strong> until ${html(iso(health.quarantinedUntil))} after ${html(health.consecutiveFailures)} failed cycle(s): ${outside(health.reason)}. Scheduled cycles are skipped; fix the cause, then press Sync now.</p>`
    : '';
  const pause =
    sync.pause && sync.pause.untilMs > view.nowMs
      ? `<p class="warn">TeamViewer asked for a pause (rate limit): operations resume at ${html(iso(sync.pause.untilMs))} (asked ${html(duration(sync.pause.askedMs))}, waiting ${html(duration(sync.pause.appliedMs))}).</p>`
      : '';
  const waiting = (sync.cycles.waiting ?? 0) + (sync.cycles.delayed ?? 0);
  const opsWaiting = (sync.operations.waiting ?? 0) + (sync.operations.delayed ?? 0);
  const reports = sync.reports.slice(0, PAGE_REPORTS);
  return `<section id="sync-${html(sync.sync)}">
<h2>Sync ${html(sync.sync)}</h2>
<p>Every ${html(duration(sync.every))}; next cycle ${sync.nextCycleAt ? html(sync.nextCycleAt) : 'not scheduled (is a daemon with the scheduler role running?)'}.
Cycles running ${html(sync.cycles.active ?? 0)}, waiting ${html(waiting)}; operations running ${html(sync.operations.active ?? 0)}, waiting ${html(opsWaiting)}${sync.operations.failed ? `, failed ${html(sync.operations.failed)}` : ''}.
Last success ${html(iso(health.lastSuccessAt))}.</p>
${quarantine}${pause}
${actionForm(access, syncPath(sync.sync, 'sync-now'), 'Sync now')}
<h3>Held for approval</h3>
${heldSection(sync, access)}
<h3>Last cycles</h3>
${
  reports.length
    ? `<table><thead><tr><th>Cycle</th><th>Started</th><th>Outcome</th><th>Counts</th></tr></thead><tbody>${reports.map(reportRow).join('\n')}</tbody></table>`
    : '<p class="muted">No cycle has finished yet.</p>'
}
</section>`;
}

function entryRow(sync: string, e: ProvisioningLogEntry): string {
  const who = e.email ?? e.group ?? e.role ?? e.sourceId ?? '';
  const what = e.reason ?? e.failureClass ?? '';
  return `<tr><td>${html(e.at)}</td><td><a href="/status?sync=${html(encodeURIComponent(sync))}&amp;cycle=${html(encodeURIComponent(e.cycleId))}#search">${html(e.cycleId)}</a></td><td>${html(e.kind)}</td><td>${html(e.outcome)}${what ? ` <span class="muted">${html(what)}</span>` : ''}</td><td>${html(who)}</td><td>${outside(e.message)}</td></tr>`;
}

function searchSection(view: StatusPageView): string {
  const s = view.search;
  const options = view.syncNames.map((name) => `<option${s?.sync === name ? ' selected' : ''}>${html(name)}</option>`).join('');
  const form = `<form method="get" action="/status#search" class="search">
<label>Sync <select name="sync">${options}</select></label>
<label>E-mail <input type="text" name="email" value="${html(s?.email ?? '')}" placeholder="ada@example.com"></label>
<label>Cycle <input type="text" name="cycle" value="${html(s?.cycleId ?? '')}"></label>
<button type="submit">Search</button>
</form>`;
  if (!s) return `<section id="search"><h2>Provisioning log</h2>${form}</section>`;
  const criteria = [s.email ? `e-mail ${s.email}` : '', s.cycleId ? `cycle ${s.cycleId}` : ''].filter(Boolean).join(' and ') || 'the newest entries';
  const rows = s.entries.map((e) => entryRow(s.sync, e)).join('\n');
  const table = s.entries.length
    ? `<table><thead><tr><th>At</th><th>Cycle</th><th>Kind</th><th>Outcome</th><th>Who</th><th>Message</th></tr></thead><tbody>${rows}</tbody></table>${
        s.entries.length >= s.limit ? `<p class="muted">The first ${html(s.limit)} entries; <code>tvsync log</code> gives every one.</p>` : ''
      }`
    : '<p class="muted">No entry matches.</p>';
  return `<section id="search"><h2>Provisioning log</h2>${form}<p>Sync ${html(s.sync)}, ${html(criteria)}: ${html(s.entries.length)} entr${s.entries.length === 1 ? 'y' : 'ies'}.</p>${table}</section>`;
}

function accessBar(access: PageAccess): string {
  switch (access.kind) {
    case 'no-token':
      return '<p class="bar">Read-only: approving and Sync now are off because no <code>http.triggerToken</code> is configured. Set one in the config to enable them.</p>';
    case 'anonymous':
      return `<form method="post" action="/status/login" class="bar"><label>Token <input type="password" name="token" autocomplete="current-password" required></label> <button type="submit">Log in</button> <span class="muted">to approve held changes and start a sync (http.triggerToken)</span></form>`;
    case 'session':
      return `<form method="post" action="/status/logout" class="bar">${csrfField(access)}Logged in. <button type="submit">Log out</button></form>`;
  }
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:75em}
h1{font-size:1.4em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-top:.5em}h3{font-size:1.05em}h4{margin:.5em 0 .2em}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}
.muted{color:#666}.bad{color:#a00}.warn{color:#850}.outcome.succeeded{color:#070}.outcome.partial{color:#850}.outcome.failed{color:#a00;font-weight:bold}
.held{border-left:4px solid #c80;padding:.2em .8em;margin:.5em 0;background:#fff8ec}.bar{background:#eef;padding:.5em;border-radius:4px}
.notice{padding:.5em;border-radius:4px}.notice.ok{background:#e8f6e8}.notice.err{background:#fbe9e9}
.inline{display:inline-block;margin:.3em 0}.search label{margin-right:1em}ul{margin:.2em 0}button{cursor:pointer}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)}</title><style>${STYLE}</style></head>
<body>${body}</body></html>
`;
}

/** The whole status page. */
export function renderStatusPage(view: StatusPageView): string {
  const notice = view.notice ? `<p class="notice ${view.notice.ok ? 'ok' : 'err'}" role="status">${html(view.notice.text)}</p>` : '';
  const syncs = view.syncs.length ? view.syncs.map((s) => syncSection(s, view)).join('\n') : '<p>No sync is configured.</p>';
  return page('tvsync status', `<h1>tvsync status</h1>${accessBar(view.access)}${notice}\n${syncs}\n${searchSection(view)}`);
}

/** What a visitor sees when the page needs a login to be read (http.statusPage: login). */
export function renderLoginPage(opts: { tokenConfigured: boolean; failed?: boolean }): string {
  const failed = opts.failed ? '<p class="notice err" role="status">That token is not the one configured.</p>' : '';
  const body = opts.tokenConfigured
    ? `${failed}${accessBar({ kind: 'anonymous' })}`
    : '<p class="bar">This page needs a login, and no <code>http.triggerToken</code> is configured to log in with.</p>';
  return page('tvsync status: log in', `<h1>tvsync status</h1>${body}`);
}

/** A refusal or failure a browser is shown: a fixed sentence made by the server, never an error's text. */
export function renderMessagePage(text: string): string {
  return page(
    'tvsync status',
    `<h1>tvsync status</h1><p class="notice err" role="status">${html(text)}</p><p><a href="/status">Back to the status page</a></p>`,
  );
}
