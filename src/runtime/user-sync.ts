import type { Logger } from 'pino';
import { SourceReadError } from '../connectors/source.js';
import { SyncError } from '../model/failure.js';
import type { UserLookup } from '../model/directory.js';
import type { TvGroup, TvUser } from '../model/teamviewer.js';
import { outsideText, scrubSecrets } from '../net/secrets.js';
import { emailKey } from '../plan/mapping.js';
import { exceedsThreshold } from '../plan/threshold.js';
import { operationKey, type OperationResult } from '../plan/report.js';
import { planMemberships, planUserSync, type UserSyncPlan, type UserSyncReport, type UserSyncStep, type UserSyncTrigger } from '../plan/user-sync.js';
import type { ApprovalStore } from '../store/approvals.js';
import type { FastLaneOrigin } from '../observe/provisioning-log.js';
import type { FastLaneStore } from '../store/fast-lane.js';
import { applyGroupOperation } from './apply-group.js';
import { applyUserOperation } from './apply.js';
import { toResult } from './operation-worker.js';
import { recordsFromResults } from '../plan/drift.js';
import { planPolicy, resolveTokenOwner, withTeamViewerRetries, type SyncSides } from './prepare.js';
import { freeSeats } from './company.js';
import { skip } from '../plan/diff.js';

/** What a `syncUser` job carries: who, and what asked for it. */
export interface UserSyncJobData {
  /** IdP id or e-mail. */
  ref: string;
  trigger: UserSyncTrigger;
  feed?: string;
  what?: string;
  /** When the IdP says the change happened, and when tvsync saw it (ms). */
  changedAtMs?: number;
  detectedAtMs?: number;
  dryRun?: boolean;
}

export interface UserSyncDeps {
  sides: SyncSides;
  /** Absent without Redis (a dry run of `tvsync sync-user` may run without it). */
  fastLane?: FastLaneStore;
  approvals?: ApprovalStore;
  log: Logger;
  /** A later attempt of a job whose earlier one may have created the user: look before creating. */
  lookupFirst?: boolean;
  signal?: AbortSignal;
  /** Each TeamViewer write's outcome, as a cycle's operations report theirs (metrics, provisioning log). */
  onResult?: (result: OperationResult, runId: string, via?: FastLaneOrigin) => void | Promise<void>;
}

/** A cycle of the sync is running: the user sync waits for it. */
export class CycleRunning extends Error {
  constructor() {
    super('a cycle of this sync is running; the user sync waits for it');
    this.name = 'CycleRunning';
  }
}

/** A claim outlives any one user sync; a dead worker's claim lapses after it. */
const CLAIM_TTL_MS = 120_000;

/**
 * One person, now: re-read from the IdP, planned with the cycle's rules, applied (unless a dry run)
 * and explained step by step. The IdP read failing means nothing is done (the job retries); a
 * deactivation or member removal passes the protect list, the token owner and the sliding-window
 * threshold. Throws CycleRunning while a cycle of the sync runs, and SyncError/SourceReadError for
 * what the caller retries.
 */
export async function syncOneUser(data: UserSyncJobData, runId: string, deps: UserSyncDeps): Promise<UserSyncReport> {
  const { sides } = deps;
  const dryRun = data.dryRun === true;
  const startedAtMs = sides.now();
  const fastLane = dryRun ? undefined : deps.fastLane;
  if (fastLane && !(await fastLane.claim(runId, Date.now(), CLAIM_TTL_MS))) throw new CycleRunning();
  // A slow IdP or TeamViewer (retries, Retry-After) must not let the claim lapse while this sync still writes.
  const heartbeat = fastLane
    ? setInterval(() => {
        fastLane.renewClaim(runId, Date.now(), CLAIM_TTL_MS).catch(() => undefined);
      }, CLAIM_TTL_MS / 4)
    : undefined;
  heartbeat?.unref();
  try {
    return await run(data, runId, deps, startedAtMs);
  } finally {
    clearInterval(heartbeat);
    await fastLane?.release(runId);
  }
}

async function run(data: UserSyncJobData, runId: string, deps: UserSyncDeps, startedAtMs: number): Promise<UserSyncReport> {
  const { sides } = deps;
  const sync = sides.sync;
  const dryRun = data.dryRun === true;
  const signal = deps.signal;
  const source = sides.source;
  if (!source.readUser) throw new SourceReadError(`the ${source.kind} source cannot read one user on its own`);
  const readUser = (ref: string): Promise<UserLookup> => (source.readUser as NonNullable<typeof source.readUser>)(ref, signal ? { signal } : {});
  const readAtMs = Date.now();
  let lookup = await readUser(data.ref);
  let email = lookup.status === 'not-found' ? (data.ref.includes('@') ? data.ref : undefined) : lookup.user?.email;

  const [firstByEmail, owner] = await Promise.all([email ? findByEmail(sides, email, signal) : Promise.resolve(undefined), resolveTokenOwner(sides, signal)]);
  let byEmail = firstByEmail;
  if (owner.failed)
    throw new SyncError('transient', `the owner of the TeamViewer token could not be looked up (${owner.failed}); no user is changed until it can`);
  // Only for an address with no link of its own: the whole link table is read then (once), not per event.
  let allLinks: Promise<Map<string, string>> | undefined;
  const linkedTo = async (tvUserId: string): Promise<string[]> => {
    allLinks ??= sides.state.loadLinks();
    return [...(await allLinks)].filter(([, tv]) => tv === tvUserId).map(([id]) => id);
  };

  // Who the decision is about: the IdP's id, else the id the operator gave. An address the IdP does
  // not know is never a reason to remove anyone: the person the sync links to it is re-read by id.
  let sourceId = lookup.status === 'not-found' ? undefined : lookup.user?.id;
  if (sourceId === undefined) {
    if (!data.ref.includes('@')) sourceId = data.ref;
    else if (byEmail) {
      const holder = (await linkedTo(byEmail.id))[0];
      if (holder !== undefined) {
        sourceId = holder;
        lookup = await readUser(holder);
        if (lookup.status !== 'not-found' && lookup.user?.email && emailKey(lookup.user.email) !== emailKey(email ?? '')) {
          email = lookup.user.email;
          byEmail = await findByEmail(sides, email, signal);
        }
      }
    }
  }
  const linkedTvId = sourceId === undefined ? undefined : await sides.state.getLink(sourceId);
  let linkedTv: TvUser | undefined;
  if (linkedTvId !== undefined) {
    linkedTv = byEmail?.id === linkedTvId ? byEmail : await withTeamViewerRetries(sides, 'user read', () => sides.client.getUser(linkedTvId), signal);
  }

  // What the cycle learns from seeing everyone, asked of the IdP one person at a time.
  const holders: { sourceId: string; inScope: boolean }[] = [];
  if (byEmail && byEmail.id !== linkedTvId) {
    for (const holder of await linkedTo(byEmail.id)) {
      if (holder === sourceId) continue;
      holders.push({ sourceId: holder, inScope: (await readUser(holder)).status === 'in-scope' });
    }
  }
  let addressHeldBy: string | undefined;
  if (lookup.status !== 'in-scope' && linkedTv?.active) {
    const other = await readUser(linkedTv.email || linkedTv.userName);
    if (other.status === 'in-scope' && other.user.id !== sourceId) addressHeldBy = other.user.id;
  }
  let duplicateOf: string | undefined;
  if (lookup.status === 'in-scope' && !linkedTv && !byEmail && email) {
    const same = await readUser(email);
    if (same.status === 'in-scope' && same.user.id !== sourceId) duplicateOf = same.user.id;
  }
  // Only a deactivated user found by address can be a recycled one: tvsync's record of deactivating it.
  const byEmailDeactivated = byEmail && !byEmail.active && byEmail.id !== linkedTvId ? await sides.state.getDeactivated(byEmail.id) : undefined;

  const nowMs = sides.now();
  const windowMs = sync.fastLane.window;
  const [recentDeactivations, managed, outside, approved, approvedRecycled] = await Promise.all([
    deps.fastLane ? deps.fastLane.removalsWithin('deactivations', Date.now(), windowMs) : Promise.resolve(0),
    sides.state.linkCount(),
    email ? sides.state.getOutsideCompany(emailKey(email)) : Promise.resolve(undefined),
    deps.approvals ? deps.approvals.deactivations() : Promise.resolve(new Set<string>()),
    deps.approvals && byEmail && !byEmail.active ? deps.approvals.recycled() : Promise.resolve(new Set<string>()),
  ]);
  const planWith = (recent: number) =>
    planUserSync({
      ref: data.ref,
      lookup,
      ...(sourceId !== undefined ? { sourceId } : {}),
      ...(linkedTvId !== undefined ? { linked: { tvUserId: linkedTvId, ...(linkedTv ? { tv: linkedTv } : {}) } } : {}),
      ...(byEmail ? { byEmail } : {}),
      byEmailHolders: holders,
      ...(addressHeldBy !== undefined ? { addressHeldBy } : {}),
      ...(duplicateOf !== undefined ? { duplicateOf } : {}),
      ...(byEmailDeactivated ? { byEmailDeactivated } : {}),
      ...(outside ? { outsideCompany: outside } : {}),
      nowMs,
      policy: planPolicy(sync, owner.email, approved, undefined, approvedRecycled),
      deactivations: { recent, managed, threshold: sync.policy.deactivationThreshold, windowMs },
    });
  let plan = planWith(recentDeactivations);
  const report = newReport(data, runId, sync.name, plan, startedAtMs);
  if (dryRun) return dryRunReport(plan, report, data, deps);

  // One writer per person, never from an older read than the last writer's.
  const person = sourceId ?? `ref:${data.ref.toLowerCase()}`;
  const gate = deps.fastLane ? await deps.fastLane.beginWrite(person, runId, readAtMs, PERSON_LOCK_MS) : 'ok';
  if (gate === 'busy') throw new PersonBusy();
  if (gate === 'stale') {
    report.steps.push({ step: 'decision', detail: 'nothing done: a user sync that read the IdP later has written for this person already' });
    return finish(report, data, sides.now(), undefined, deps);
  }
  try {
    // Seats before creates, as in a cycle: with none free the person waits, reported, for a later sync.
    if (plan.operation?.kind === 'createUser' && (await freeSeats(sides, signal)) === 0) {
      const op = plan.operation;
      delete plan.operation;
      plan.skipped = skip('no-free-seat', `${op.email} waits for a free seat: the licence has none left; created once one frees up`, {
        sourceId: op.sourceId,
        email: op.email,
      });
      report.steps.push({ step: 'decision', detail: plan.skipped.message });
    }
    // A deactivation takes its place in the window first; concurrent user syncs then see it.
    let reserved: string | undefined;
    if (deps.fastLane && plan.operation?.kind === 'deactivateUser' && !approved.has(plan.operation.tvUserId)) {
      reserved = `${runId}:${plan.operation.tvUserId}`;
      const count = await deps.fastLane.reserve('deactivations', reserved, Date.now(), windowMs);
      if (count - 1 !== recentDeactivations) {
        plan = planWith(count - 1);
        report.steps.splice(0, report.steps.length, ...plan.steps);
      }
      if (plan.operation?.kind !== 'deactivateUser') {
        await deps.fastLane.unreserve('deactivations', reserved);
        reserved = undefined;
      }
    }
    return await apply(plan, report, { data, deps, runId, approved, reserved, windowMs, nowMs });
  } finally {
    await deps.fastLane?.endWrite(person, runId);
  }
}

/** How long one user sync may hold a person's write lock (it is released as soon as it is done). */
const PERSON_LOCK_MS = 120_000;

/** Another user sync is writing for this person: this one runs again shortly, and re-reads. */
export class PersonBusy extends Error {
  constructor() {
    super('another user sync is writing for this person; this one runs again shortly');
    this.name = 'PersonBusy';
  }
}

function findByEmail(sides: SyncSides, email: string, signal: AbortSignal | undefined): Promise<TvUser | undefined> {
  return withTeamViewerRetries(sides, 'user look-up', () => sides.client.findUserByEmail(email), signal);
}

async function dryRunReport(plan: UserSyncPlan, report: UserSyncReport, data: UserSyncJobData, deps: UserSyncDeps): Promise<UserSyncReport> {
  if (plan.held) report.held.push(plan.held.message);
  if (plan.skipped?.reason === 'recycled-address') report.held.push(plan.skipped.message);
  else if (plan.skipped) report.skipped.push(plan.skipped.message);
  if (plan.operation) report.operations.push({ kind: plan.operation.kind, message: plan.operation.message, status: 'planned' });
  const created = plan.operation?.kind === 'createUser';
  const member = plan.tvUserId ?? (created ? `(new ${plan.email ?? data.ref})` : undefined);
  if (deps.sides.sync.groups.enabled && member !== undefined)
    await syncMemberships(plan, member, {
      deps,
      report,
      dryRun: true,
      windowMs: deps.sides.sync.fastLane.window,
      runId: report.id,
      via: originOf(data),
      onWrite: () => undefined,
    });
  return finish(report, data, deps.sides.now(), undefined, deps);
}

async function apply(
  plan: UserSyncPlan,
  report: UserSyncReport,
  ctx: {
    data: UserSyncJobData;
    deps: UserSyncDeps;
    runId: string;
    approved: ReadonlySet<string>;
    reserved: string | undefined;
    windowMs: number;
    nowMs: number;
  },
): Promise<UserSyncReport> {
  const { data, deps, runId, approved, reserved, windowMs } = ctx;
  const { sides } = deps;
  let wroteAtMs: number | undefined;
  let tvUserId = plan.tvUserId;
  if (plan.held) {
    report.held.push(plan.held.message);
    await deps.fastLane?.hold({
      sourceId: plan.held.sourceId,
      email: plan.held.email,
      tvUserId: plan.held.tvUserId,
      message: plan.held.message,
      atMs: ctx.nowMs,
    });
  } else if (plan.tvUserId !== undefined && plan.operation?.kind !== 'deactivateUser') {
    // No longer leaving (back in scope, enabled again): a held deactivation from before is void.
    await deps.fastLane?.releaseHeldDeactivations([plan.tvUserId]);
  }
  if (plan.skipped?.reason === 'recycled-address' && plan.skipped.tvUserId !== undefined) {
    // Waits for a person, as the cycle's hold does: `tvsync approve --fast-lane` releases it.
    report.held.push(plan.skipped.message);
    await deps.fastLane?.hold({
      kind: 'recycled-address',
      sourceId: plan.skipped.sourceId ?? data.ref,
      email: plan.skipped.email ?? data.ref,
      tvUserId: plan.skipped.tvUserId,
      message: plan.skipped.message,
      atMs: ctx.nowMs,
    });
  } else if (plan.skipped) report.skipped.push(plan.skipped.message);
  if (plan.links.length) await sides.state.applyLinkChanges(plan.links);
  // An approval of a recycled address is used once: by the plan that took the address over.
  if (plan.recycled?.released === 'approved') {
    await deps.approvals?.consumedRecycled([plan.recycled.tvUserId]);
    await deps.fastLane?.releaseHeld([plan.recycled.tvUserId]);
  }

  if (plan.operation) {
    const op = plan.operation;
    let outcome: Awaited<ReturnType<typeof applyUserOperation>>;
    try {
      outcome = await applyUserOperation(op, {
        client: sides.client,
        state: sides.state,
        nowMs: sides.now,
        ...(deps.lookupFirst ? { lookupFirst: true } : {}),
      });
    } catch (err) {
      // Not applied (or not known to be): its place in the window goes back; the retry takes it again.
      if (reserved) await deps.fastLane?.unreserve('deactivations', reserved);
      throw err;
    }
    const result = toResult({ key: operationKey(op), op }, 1, outcome);
    await deps.onResult?.(result, runId, originOf(data));
    await recordWrite(sides, result);
    report.operations.push(entryOf(result));
    if (outcome.status === 'applied') {
      wroteAtMs = Date.now();
      tvUserId = outcome.tvUserId;
      if (op.kind === 'deactivateUser' || op.kind === 'reactivateUser') await deps.fastLane?.releaseHeld([op.tvUserId]);
      // An approval is used once, as a cycle uses it.
      if (op.kind === 'deactivateUser' && approved.has(op.tvUserId)) await deps.approvals?.consumed([op.tvUserId], []);
    } else {
      report.failure = { failureClass: outcome.failureClass, message: outcome.message };
      if (reserved) await deps.fastLane?.unreserve('deactivations', reserved);
    }
  }

  if (sides.sync.groups.enabled && !report.failure && tvUserId !== undefined)
    await syncMemberships(plan, tvUserId, { deps, report, dryRun: false, windowMs, runId, via: originOf(data), onWrite: () => (wroteAtMs = Date.now()) });

  return finish(report, data, sides.now(), wroteAtMs, deps);
}

async function syncMemberships(
  plan: UserSyncPlan,
  tvUserId: string,
  ctx: { deps: UserSyncDeps; report: UserSyncReport; dryRun: boolean; windowMs: number; runId: string; via: FastLaneOrigin; onWrite: () => void },
): Promise<void> {
  const { deps, report, dryRun, windowMs } = ctx;
  const { sides } = deps;
  let teamviewerGroups: TvGroup[];
  try {
    teamviewerGroups = await withTeamViewerRetries(sides, 'group list', () => sides.client.listGroups(deps.signal ? { signal: deps.signal } : {}), deps.signal);
  } catch (err) {
    if (err instanceof SyncError && (err.failureClass === 'forbidden' || err.failureClass === 'unavailable' || err.failureClass === 'not-found')) {
      report.steps.push({ step: 'groups', detail: `TeamViewer refused /Groups (${err.message}); memberships are left to the cycle` });
      return;
    }
    throw err;
  }
  const groupLinks = await sides.state.loadGroupLinks();
  const managedMemberships = teamviewerGroups.filter((g) => [...groupLinks.values()].includes(g.id)).reduce((n, g) => n + g.memberIds.length, 0);
  const [recent, approvedRemovals] = await Promise.all([
    deps.fastLane ? deps.fastLane.removalsWithin('memberRemovals', Date.now(), windowMs) : Promise.resolve(0),
    deps.approvals ? deps.approvals.memberRemovals() : Promise.resolve(new Map<string, number>()),
  ]);
  const members = planMemberships({
    tvUserId,
    ...(plan.email ? { email: plan.email } : {}),
    ...(plan.sourceId !== undefined ? { sourceId: plan.sourceId } : {}),
    wanted: plan.wantedGroups,
    groupsComplete: plan.groupsComplete,
    groupLinks,
    teamviewerGroups,
    keepMemberships: plan.keepMemberships || plan.held !== undefined,
    removals: { recent, managed: managedMemberships, threshold: sides.sync.policy.memberRemovalThreshold, windowMs },
    approvedRemovals,
  });
  report.steps.push(...members.steps);
  report.held.push(...members.held.map((h) => h.message));
  report.skipped.push(...members.skipped.map((s) => s.message));
  const threshold = sides.sync.policy.memberRemovalThreshold;
  for (const op of members.operations) {
    if (dryRun) {
      report.operations.push({ kind: op.kind, message: op.message, status: 'planned' });
      continue;
    }
    // Like a deactivation, a removal takes its place in the window before it is made.
    let reserved: string | undefined;
    if (op.kind === 'removeGroupMembers' && deps.fastLane && !((approvedRemovals.get(op.tvGroupId) ?? 0) > 0)) {
      reserved = `${ctx.runId}:${op.tvGroupId}:${tvUserId}`;
      const count = await deps.fastLane.reserve('memberRemovals', reserved, Date.now(), windowMs);
      if (exceedsThreshold(threshold, count, managedMemberships)) {
        await deps.fastLane.unreserve('memberRemovals', reserved);
        report.held.push(`${op.message}: held for approval, it would be member removal ${count} within the window, over the member-removal threshold`);
        continue;
      }
    }
    const outcome = await applyGroupOperation(op, { client: sides.client, state: sides.state, batchSize: sides.sync.groups.batchSize }).catch(
      async (err: unknown) => {
        if (reserved) await deps.fastLane?.unreserve('memberRemovals', reserved);
        throw err;
      },
    );
    const result = toResult({ key: op.key, op }, 1, outcome);
    await deps.onResult?.(result, ctx.runId, ctx.via);
    await recordWrite(sides, result);
    report.operations.push(entryOf(result));
    if (outcome.status === 'applied') ctx.onWrite();
    else {
      if (reserved) await deps.fastLane?.unreserve('memberRemovals', reserved);
      report.failure ??= { failureClass: outcome.failureClass, message: outcome.message };
    }
  }
}

function newReport(data: UserSyncJobData, runId: string, sync: string, plan: UserSyncPlan, startedAtMs: number): UserSyncReport {
  const report: UserSyncReport = {
    sync,
    id: runId,
    ref: data.ref,
    trigger: data.trigger,
    dryRun: data.dryRun === true,
    scope: plan.scope,
    outcome: 'unchanged',
    steps: [...plan.steps],
    operations: [],
    held: [],
    skipped: [],
    startedAt: new Date(startedAtMs).toISOString(),
    finishedAt: '',
    durationMs: 0,
  };
  if (plan.sourceId !== undefined) report.sourceId = plan.sourceId;
  if (plan.email) report.email = plan.email;
  if (data.feed) report.feed = data.feed;
  if (data.what) report.what = data.what;
  if (data.changedAtMs !== undefined) report.changedAt = new Date(data.changedAtMs).toISOString();
  if (data.changedAtMs !== undefined && data.detectedAtMs !== undefined) report.detectionLagMs = Math.max(0, data.detectedAtMs - data.changedAtMs);
  return report;
}

async function finish(
  report: UserSyncReport,
  data: UserSyncJobData,
  nowMs: number,
  wroteAtMs: number | undefined,
  deps: UserSyncDeps,
): Promise<UserSyncReport> {
  report.finishedAt = new Date(nowMs).toISOString();
  report.durationMs = Math.max(0, nowMs - Date.parse(report.startedAt));
  if (wroteAtMs !== undefined && data.changedAtMs !== undefined) report.latencyMs = Math.max(0, wroteAtMs - data.changedAtMs);
  const statuses = report.operations.map((o) => o.status);
  report.outcome = report.failure
    ? 'failed'
    : statuses.includes('applied')
      ? 'applied'
      : statuses.includes('planned')
        ? 'planned'
        : report.held.length
          ? 'held'
          : report.skipped.length
            ? 'skipped'
            : 'unchanged';
  if (!report.dryRun) await deps.fastLane?.saveReport(report);
  return report;
}

/** A user sync that could not read the IdP or TeamViewer: nothing was done, and the report says why. */
export function failedReport(data: UserSyncJobData, runId: string, sync: string, startedAtMs: number, err: unknown): UserSyncReport {
  const step: UserSyncStep = { step: 'idp', detail: '' };
  let failure: UserSyncReport['failure'];
  if (err instanceof SourceReadError) {
    failure = { failureClass: 'source-read', message: `the IdP could not be read, so nothing was changed: ${outsideText(err.message)}` };
    step.detail = failure.message;
  } else if (err instanceof SyncError) {
    failure = { failureClass: err.failureClass, message: `TeamViewer: ${scrubSecrets(err.message)}` };
    step.step = 'teamviewer';
    step.detail = failure.message;
  } else {
    failure = { failureClass: 'internal', message: scrubSecrets(err instanceof Error ? err.message : String(err)) };
    step.step = 'decision';
    step.detail = failure.message;
  }
  const now = Date.now();
  const report: UserSyncReport = {
    sync,
    id: runId,
    ref: data.ref,
    trigger: data.trigger,
    dryRun: data.dryRun === true,
    scope: 'unknown',
    outcome: 'failed',
    steps: [step],
    operations: [],
    held: [],
    skipped: [],
    startedAt: new Date(startedAtMs).toISOString(),
    finishedAt: new Date(now).toISOString(),
    durationMs: Math.max(0, now - startedAtMs),
    failure,
  };
  if (data.feed) report.feed = data.feed;
  if (data.what) report.what = data.what;
  if (data.changedAtMs !== undefined) report.changedAt = new Date(data.changedAtMs).toISOString();
  return report;
}

function originOf(data: UserSyncJobData): FastLaneOrigin {
  return { lane: 'fast', trigger: data.trigger, ...(data.feed ? { feed: data.feed } : {}) };
}

function entryOf(result: OperationResult): UserSyncReport['operations'][number] {
  const entry: UserSyncReport['operations'][number] = {
    kind: result.kind,
    message: result.message,
    status: result.status === 'applied' ? 'applied' : 'failed',
  };
  if (result.failureClass) entry.failureClass = result.failureClass;
  if (result.tvUserId) entry.tvUserId = result.tvUserId;
  return entry;
}

/** What a user sync's write left, for the next cycle's read to check (as a cycle records its own). */
async function recordWrite(sides: SyncSides, result: OperationResult): Promise<void> {
  if (!sides.written || result.status !== 'applied') return;
  await sides.written.apply(recordsFromResults([result])).catch((err: unknown) => {
    sides.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not record what a write left; the next cycle does not check it');
  });
}
