import { scrubSecrets } from '../../net/secrets.js';
import { describeRedis, openRedis, RedisUnavailable } from '../../runtime/redis.js';
import { previewGroups, readAndPlan } from '../../runtime/prepare.js';
import { buildSyncSides } from '../../runtime/wiring.js';
import { groupPhaseInput } from '../../plan/group-input.js';
import { previewRoles } from '../../runtime/roles.js';
import { load, selectSyncs } from '../context.js';
import { printJson } from '../json.js';
import { renderGroupPhase, renderPlan, renderRolePhase } from '../render-plan.js';

export interface PlanOptions {
  config?: string;
  sync?: string;
  json?: boolean;
}

/** `tvsync plan`: reads the IdP and TeamViewer and prints what a cycle would do; writes nothing. */
export async function planCommand(opts: PlanOptions): Promise<void> {
  const { config, log } = load(opts.config);
  const syncs = selectSyncs(config, opts.sync);
  const redis = await openRedis(config.redis, 2000).catch((err: unknown) => {
    const unreachable = !(err instanceof RedisUnavailable) || err.kind === 'unreachable';
    log.warn(
      { redis: describeRedis(config.redis), problem: err instanceof Error ? err.message : String(err) },
      `${unreachable ? 'Redis does not answer' : 'Redis refuses the connection'}: planning without links (matching by e-mail only)`,
    );
    return undefined;
  });
  try {
    const results = [];
    for (const sync of syncs) {
      // Someone is waiting at the terminal: a short retry, not the daemon's patient one.
      const sides = buildSyncSides(sync, {
        ...(redis ? { redis } : {}),
        prefix: config.redis.prefix,
        log,
        readBackoff: { attempts: 3, baseMs: 500, capMs: 2000 },
      });
      const prepared = await readAndPlan(sides);
      const groups = await previewGroups(sides, prepared);
      const roles = await previewRoles(sides, prepared, groups, groupPhaseInput(prepared.directory, { emails: true }));
      results.push({ sync: sync.name, plan: prepared.plan, groups, ...(roles ? { roles } : {}) });
      const roleText = roles ? `${renderRolePhase(roles)}\n\n` : '';
      if (!opts.json) process.stdout.write(scrubSecrets(`${renderPlan(sync.name, prepared.plan)}\n\n${renderGroupPhase(groups)}\n\n${roleText}`));
    }
    if (opts.json) printJson({ syncs: results });
  } finally {
    redis?.disconnect();
  }
}
