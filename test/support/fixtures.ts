import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { writeFileExport } from '../../src/connectors/file/manifest.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { TeamViewerEmulator, type EmulatorOptions } from '../../src/emulator/server.js';

export const TOKEN = 'test-token-0123456789';
export const OWNER = 'owner@corp.example';

export const silentLog = pino({ level: 'silent' });

export async function startEmulator(opts: Partial<EmulatorOptions> = {}) {
  const emulator = new TeamViewerEmulator({ tokens: [TOKEN], owner: { email: OWNER, name: 'Token Owner' }, ...opts });
  const address = await emulator.start(0);
  return { emulator, ...address };
}

/** A file-source export directory with these users (and groups, when given), with its manifest. */
export function writeExport(users: DirectoryUser[], groups: { id: string; name: string; members: string[] }[] = [], dir?: string): string {
  const target = dir ?? mkdtempSync(join(tmpdir(), 'tvsync-export-'));
  writeFileExport(target, { 'users.json': JSON.stringify(users), 'groups.json': JSON.stringify(groups) });
  return target;
}

export function people(n: number, from = 0): DirectoryUser[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { id: `emp-${String(i).padStart(6, '0')}`, email: `person${i}@corp.example`, givenName: 'Person', familyName: String(i), active: true };
  });
}

/** A config file for one file-source sync against the given TeamViewer base URL. */
export function writeConfig(opts: { exportDir: string; baseUrl: string; prefix?: string; extra?: string; syncName?: string; redisUrl?: string }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-config-'));
  const path = join(dir, 'tvsync.yaml');
  writeFileSync(
    path,
    `redis:
  url: ${opts.redisUrl ?? 'redis://127.0.0.1:6379'}
  prefix: ${opts.prefix ?? `t${process.pid}`}
log:
  level: warn
syncs:
  - name: ${opts.syncName ?? 'corp'}
    source: { type: file, path: ${opts.exportDir}, settle: 0s }
    target:
      baseUrl: ${opts.baseUrl}
      token: \${TVSYNC_TEST_TOKEN}
      requestsPerSecond: 500
      concurrency: 8
${opts.extra ?? ''}`,
  );
  return path;
}
