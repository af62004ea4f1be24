import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import { RequestRateStore } from '../../src/store/request-rate.js';
import { runCycle, startWorker } from '../support/cycle.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

/** The emulator's limit: requests per second beyond which it answers 429 with a Retry-After. */
const LIMIT = 40;
const USERS = 240;

let tv: Awaited<ReturnType<typeof startEmulator>>;
let redis: Redis;
let daemon: Daemon | undefined;
const prefix = testPrefix('adaptive-rate');

beforeAll(async () => {
  tv = await startEmulator();
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await daemon?.stop();
  await tv.emulator.stop();
  await dropPrefix(prefix);
  redis.disconnect();
});

describe('the adaptive request rate against a TeamViewer that limits requests', () => {
  it('starts modestly, settles just below the limit with few 429s, and a later cycle starts from what it learned', async () => {
    const exportDir = writeExport(people(USERS, 30_000));
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${exportDir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", rate: { start: 10, ceiling: 1000 }, concurrency: 16, tokenOwner: owner@corp.example }
`,
      { env: { T: TOKEN } },
    );
    tv.emulator.configure({ rateLimit: { max: LIMIT, windowMs: 1000 } });
    daemon = await startWorker(config);
    const learnedRate = () => new RequestRateStore(redis, prefix, 'corp').load();

    tv.emulator.resetStats();
    const first = await runCycle(daemon);
    const climb = tv.emulator.stats;
    expect(first.outcome, JSON.stringify(climb)).toBe('succeeded');
    expect(tv.emulator.dump().users.filter((u) => u.userName.startsWith('person'))).toHaveLength(USERS);
    // Climbing from 10/s it meets the limit a few times, no more.
    expect(climb.rateLimited, JSON.stringify(climb)).toBeLessThan(climb.requests * 0.1);
    const learned = await learnedRate();
    expect(learned?.throttledAt, 'TeamViewer throttled it at least once').toBeDefined();
    expect(learned?.rate).toBeGreaterThan(LIMIT * 0.6);
    // Where the limiter binds, the rate sits just below the limit; where it did not bind it rose a little past.
    expect(learned?.rate).toBeLessThanOrEqual(LIMIT * 1.25);

    // Every user renamed: a second cycle of writes, from the learned rate.
    writeExport(
      people(USERS, 30_000).map((p) => ({ ...p, displayName: `Renamed ${p.familyName}` })),
      [],
      exportDir,
    );
    tv.emulator.resetStats();
    const second = await runCycle(daemon);
    const steady = tv.emulator.stats;
    expect(second.outcome, JSON.stringify(steady)).toBe('succeeded');
    expect(second.operations.updateUser.applied).toBe(USERS);
    expect(steady.rateLimited, JSON.stringify(steady)).toBeLessThan(steady.requests * 0.05);
    expect((await learnedRate())?.rate).toBeGreaterThan(LIMIT * 0.6);
  });
});
