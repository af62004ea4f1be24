import { parseConfig } from '../../src/config/load.js';
import type { TvsyncConfig } from '../../src/config/schema.js';
import { people, writeExport } from './fixtures.js';

export const tenantName = (i: number) => `tenant-${String(i + 1).padStart(3, '0')}`;

/**
 * One deployment for many tenants, as an MSP runs it: a file-source sync per TeamViewer company
 * (one base URL each), `usersEach` people apiece, all on one Redis prefix.
 */
export function tenantsConfig(
  baseUrls: readonly string[],
  opts: { redisUrl: string; prefix: string; token: string; usersEach?: number; fastLane?: boolean },
): TvsyncConfig {
  const usersEach = opts.usersEach ?? 3;
  const syncs = baseUrls.map(
    (baseUrl, i) => `
  - name: ${tenantName(i)}
    source: { type: file, path: ${writeExport(people(usersEach, i * 1000))}, settle: 0s }
    target: { baseUrl: ${baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 4 }
    groups: { enabled: false }
    fastLane: { enabled: ${opts.fastLane ?? true} }`,
  );
  return parseConfig(`redis: { url: "${opts.redisUrl}", prefix: ${opts.prefix} }\nsyncs:${syncs.join('')}\n`, { env: { T: opts.token } });
}
