import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { openRedis, RedisUnavailable } from '../../src/runtime/redis.js';
import { runCli } from '../support/cli.js';
import { silentLog, TOKEN, writeConfig, writeExport } from '../support/fixtures.js';
import { NO_REDIS_SERVER, RedisServer, haveRedisServer, startSilentServer } from '../support/redis-server.js';

const PASSWORD = 'redis-pass-0123456789';
// Random-looking, as a real one is: the scrubber also redacts 8-character runs of a secret, so a
// password holding a word ("password") would blank that word in every message too.
const WRONG = 'q7Xz-wr0ng-Kp42';

function configFor(url: string) {
  return parseConfig(
    `redis: { url: "${url}", prefix: tvsync-url-test }
syncs:
  - name: corp
    source: { type: file, path: ${writeExport([])} }
    target: { baseUrl: "http://127.0.0.1:9", token: "\${T}" }
`,
    { env: { T: TOKEN } },
  );
}

async function failure(promise: Promise<unknown>): Promise<RedisUnavailable> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RedisUnavailable);
  return err as RedisUnavailable;
}

describe.skipIf(!haveRedisServer)(`a redis.url that Redis refuses${NO_REDIS_SERVER}`, () => {
  let plain: RedisServer;
  let locked: RedisServer;
  beforeAll(async () => {
    [plain, locked] = await Promise.all([RedisServer.start({ args: ['--databases', '4'] }), RedisServer.start({ password: PASSWORD })]);
  });
  afterAll(async () => {
    await Promise.all([plain?.kill(), locked?.kill()]);
  });

  const badDb = () => `redis://127.0.0.1:${plain.port}/7`;
  const wrongPassword = () => `redis://:${WRONG}@127.0.0.1:${locked.port}`;
  const noPassword = () => `redis://127.0.0.1:${locked.port}`;

  it('a database the server does not have is named as such, not silently database 0', async () => {
    const err = await failure(openRedis(badDb(), 3000));
    expect(err.kind).toBe('database');
    expect(err.message).toBe(
      `Redis at redis://127.0.0.1:${plain.port}/7 has no database 7 (ERR DB index is out of range); use a database number the server has (0-15 unless its "databases" setting says more)`,
    );
    // The daemon would otherwise run on database 0 of a server shared with something else.
    const daemonErr = await failure(Daemon.start(configFor(badDb()), silentLog, { scheduler: true, worker: true }));
    expect(daemonErr.message).toBe(err.message);
  });

  it('a wrong or missing password is named as such, with the password redacted', async () => {
    const wrong = await failure(openRedis(wrongPassword(), 3000));
    expect(wrong.kind).toBe('password');
    expect(wrong.message).toMatch(
      new RegExp(`^Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${locked.port} refused the user name or password in redis\\.url \\(WRONGPASS`),
    );
    expect(wrong.message).not.toContain(WRONG);
    const missing = await failure(openRedis(noPassword(), 3000));
    expect(missing.kind).toBe('password');
    expect(missing.message).toContain('requires a password and redis.url gives none (NOAUTH');

    const daemonErr = await failure(Daemon.start(configFor(wrongPassword()), silentLog, { scheduler: true, worker: true }));
    expect(daemonErr.message).toBe(wrong.message);
    // The right password works.
    const ok = await openRedis(`redis://:${PASSWORD}@127.0.0.1:${locked.port}`, 3000);
    expect(await ok.ping()).toBe('PONG');
    ok.disconnect();
  });

  it('CLI commands say the same, exit 1', async () => {
    const env = { TVSYNC_TEST_TOKEN: TOKEN };
    for (const [url, expected] of [
      [badDb(), 'has no database 7 (ERR DB index is out of range)'],
      [wrongPassword(), 'refused the user name or password in redis.url (WRONGPASS'],
    ] as const) {
      const config = writeConfig({ exportDir: writeExport([]), baseUrl: 'http://127.0.0.1:9', redisUrl: url });
      const run = await runCli(['status', '--config', config], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(expected);
      expect(run.stderr).not.toContain(WRONG);
    }
  });
});

describe('a Redis that accepts connections and never answers', () => {
  it('is reported within the time, not waited for', async () => {
    const silent = await startSilentServer();
    try {
      // A hang would outlast the test's timeout.
      const err = await failure(openRedis(silent.url, 1000));
      expect(err.kind).toBe('unreachable');
      expect(err.message).toBe(`Redis at ${silent.url} accepts connections but does not answer within 1 s; is it overloaded or something else on that port?`);
    } finally {
      await silent.close();
    }
  });

  it('a refused connection is "does not answer", with the cause', async () => {
    const err = await failure(openRedis('redis://127.0.0.1:1', 2000));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toBe('Redis at redis://127.0.0.1:1 does not answer (connect ECONNREFUSED 127.0.0.1:1); start it or fix redis.url');
  });
});
