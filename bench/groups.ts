import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import { writeFileExport } from '../src/connectors/file/manifest.js';
import { Daemon } from '../src/runtime/daemon.js';
import { requestCycle, waitForCycleReport } from '../src/runtime/trigger.js';
import type { CycleReport } from '../src/plan/report.js';
import { BENCH_TOKEN, REDIS_URL, dropPrefix, startEmulatorProcess } from './emulator-process.js';

/**
 * 10,000 users in 500 groups (30,000 memberships: every user in three groups), an initial cycle
 * and then a steady-state cycle with 1% of the memberships changed.
 */
export async function benchGroups() {
  const users = 10_000;
  const groups = 500;
  const emulator = await startEmulatorProcess(0);
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-bench-groups-'));
  const usersJson = JSON.stringify(Array.from({ length: users }, (_, i) => ({ id: `e${i}`, email: `user${i}@bench.example`, displayName: `User ${i}` })));
  const memberships = (churned: boolean) => {
    const rows: { groupId: string; userId: string }[] = [];
    for (let u = 0; u < users; u++) for (let k = 0; k < 3; k++) rows.push({ groupId: `g${(u * 7 + k * 167) % groups}`, userId: `e${u}` });
    if (!churned) return rows;
    // 1% churn: 150 memberships move to another group, i.e. 150 removals and 150 adds.
    for (let i = 0; i < 150; i++) {
      const row = rows[i * 199]!;
      rows[i * 199] = { groupId: `g${(Number(row.groupId.slice(1)) + 250) % groups}`, userId: row.userId };
    }
    return rows;
  };
  const groupsJson = JSON.stringify(Array.from({ length: groups }, (_, g) => ({ id: `g${g}`, name: `Group ${g}` })));
  writeFileExport(dir, { 'users.json': usersJson, 'groups.json': groupsJson, 'memberships.json': JSON.stringify(memberships(false)) });

  const prefix = `tvsync-bench-groups-${process.pid}`;
  const config = parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: bench
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${emulator.baseUrl}, token: "\${T}", requestsPerSecond: 20000, concurrency: 16, tokenOwner: owner@bench.example }
    groups: { batchSize: 100 }
`,
    { env: { T: BENCH_TOKEN } },
  );
  const daemon = await Daemon.start(config, pino({ level: 'silent' }), { scheduler: false, worker: true, runtime: { pollMs: 25 } });
  const cycle = async (): Promise<{ report: CycleReport; ms: number; requests: number }> => {
    await emulator.resetStats();
    const runtime = daemon.runtime('bench');
    const started = process.hrtime.bigint();
    const { requestedAt } = await requestCycle(runtime.queues.cycles, 'bench', 'once');
    const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 900_000, pollMs: 25 });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (report?.outcome !== 'succeeded') throw new Error(`cycle did not succeed: ${JSON.stringify(report?.failure ?? report?.operations)}`);
    return { report, ms, requests: (await emulator.stats()).requests };
  };
  try {
    const initial = await cycle();
    writeFileExport(dir, { 'users.json': usersJson, 'groups.json': groupsJson, 'memberships.json': JSON.stringify(memberships(true)) });
    const steady = await cycle();
    const g = steady.report.groups?.summary;
    return {
      bench: '10,000 users in 500 groups (30,000 memberships), initial then 1% membership churn',
      initialMs: Math.round(initial.ms),
      initialRequests: initial.requests,
      initialGroupsCreated: initial.report.operations.createGroup.applied,
      steadyMs: Math.round(steady.ms),
      steadyRequests: steady.requests,
      steadyMembersAdded: g?.membersAdded,
      steadyMembersRemoved: g?.membersRemoved,
      steadyGroupWrites: steady.report.operations.addGroupMembers.applied + steady.report.operations.removeGroupMembers.applied,
    };
  } finally {
    await daemon.stop();
    await emulator.stop();
    await dropPrefix(prefix);
  }
}
