import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DirectorySource } from '../../src/connectors/source.js';
import { PeakMemory } from '../peak-memory.js';

export interface ReadFigures {
  connector: string;
  users: number;
  groups: number;
  pageSize: number;
  requests: number;
  ms: number;
  /** This process, the local fake included. */
  peakRssMb: number;
}

/**
 * Starts the fake IdP on a free loopback port, runs one full read through the connector built
 * for it, and measures wall time and peak memory. The read must find the whole fake directory.
 */
export async function measureRead(opts: {
  connector: string;
  pageSize: number;
  fake: { server: Server; requests: () => number };
  expect: { users: number; groups: number };
  source: (origin: string) => DirectorySource;
}): Promise<ReadFigures> {
  const { server } = opts.fake;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const source = opts.source(origin);
  const memory = new PeakMemory(20);
  try {
    const started = performance.now();
    const read = await source.read({ mode: 'full' });
    const ms = Math.round(performance.now() - started);
    const peak = memory.stop();
    if (read.users.length !== opts.expect.users || read.groups.length !== opts.expect.groups) {
      throw new Error(
        `${opts.connector} read ${read.users.length} users and ${read.groups.length} groups, expected ${opts.expect.users} and ${opts.expect.groups}`,
      );
    }
    return {
      connector: opts.connector,
      users: read.users.length,
      groups: read.groups.length,
      pageSize: opts.pageSize,
      requests: opts.fake.requests(),
      ms,
      peakRssMb: peak.rssMb,
    };
  } finally {
    memory.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
