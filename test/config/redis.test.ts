import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { scrubSecrets } from '../../src/net/secrets.js';
import { describeRedis, explainRedisFailure, isConnectionError } from '../../src/runtime/redis.js';
import { queuePrefix, syncKeys } from '../../src/store/keys.js';
import { configProblems as problems } from '../support/config.js';

const syncs = `
syncs:
  - name: corp
    source: { type: file, path: ./export }
    target: { token: "\${TV_TOKEN}" }
`;

function parse(redis: string, env: Record<string, string> = {}) {
  return parseConfig(`redis:\n${redis}\n${syncs}`, { env: { TV_TOKEN: 'tok-123', ...env }, baseDir: '/etc/tvsync' });
}

describe('redis: one Redis, Sentinels or a Cluster', () => {
  it('Sentinels: the master name, the Sentinels, and the passwords from the environment', () => {
    const config = parse(
      `  sentinel: { name: mymaster, nodes: [10.0.0.1:26379, "sentinel-b:26379"], password: "\${SENTINEL_PW}" }
  password: \${REDIS_PW}
  db: 2`,
      { SENTINEL_PW: 'Sx9q2Lk4711', REDIS_PW: 'Dp7w3Mn0815' },
    );
    expect(config.redis).toEqual({
      sentinel: { name: 'mymaster', nodes: ['10.0.0.1:26379', 'sentinel-b:26379'], password: 'Sx9q2Lk4711' },
      password: 'Dp7w3Mn0815',
      db: 2,
      prefix: 'tvsync',
    });
    // Both passwords are secrets from the moment the config is loaded.
    expect(scrubSecrets('AUTH Dp7w3Mn0815 then Sx9q2Lk4711')).not.toMatch(/0815|4711/);
    expect(describeRedis(config.redis)).toBe('master "mymaster" of Sentinels 10.0.0.1:26379, sentinel-b:26379');
  });

  it('Cluster: the nodes, a password from a file, and a prefix hash-tagged per sync', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-redis-'));
    writeFileSync(join(dir, 'redis-password'), 'Cq5r8Tz9999\n');
    const config = parseConfig(
      `redis:\n  cluster: { nodes: [10.0.0.1:7000, 10.0.0.2:7000] }\n  passwordFile: ${join(dir, 'redis-password')}\n  prefix: hc\n${syncs}`,
      {
        env: { TV_TOKEN: 'tok-123' },
        baseDir: dir,
      },
    );
    expect(config.redis).toEqual({ cluster: { nodes: ['10.0.0.1:7000', '10.0.0.2:7000'] }, password: 'Cq5r8Tz9999', prefix: { base: 'hc', hashTagged: true } });
    expect(scrubSecrets('Cq5r8Tz9999')).not.toContain('9999');
    expect(describeRedis(config.redis)).toBe('Cluster 10.0.0.1:7000, 10.0.0.2:7000');
  });

  it('one Redis keeps the plain prefix and the default URL', () => {
    expect(parse('  prefix: plain').redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'plain' });
  });

  it('refuses two topologies at once, passwords written into the file, and options that do not fit', () => {
    expect(problems(() => parse('  url: redis://r:6379\n  cluster: { nodes: [10.0.0.1:7000] }'))).toEqual([
      'redis.cluster: give one of url, sentinel and cluster, not url and cluster',
    ]);
    expect(problems(() => parse('  sentinel: { name: m, nodes: [s:26379] }\n  cluster: { nodes: [10.0.0.1:7000] }'))).toEqual([
      'redis.cluster: give one of url, sentinel and cluster, not sentinel and cluster',
    ]);
    expect(problems(() => parse('  cluster: { nodes: [10.0.0.1:7000] }\n  password: hunter22'))).toEqual([
      'redis.password: secrets must not be written in the config file; use ${ENV_VAR} or passwordFile',
    ]);
    expect(problems(() => parse('  sentinel: { name: m, nodes: [s:26379], password: hunter22 }'))).toEqual([
      'redis.sentinel.password: secrets must not be written in the config file; use ${ENV_VAR} or passwordFile',
    ]);
    expect(problems(() => parse('  url: redis://r:6379\n  password: ${PW}', { PW: 'Pw6j2Hc0001' }))).toEqual([
      'redis.password: password goes with sentinel or cluster; a url carries its own (redis://user:password@host:port, rediss://)',
    ]);
    expect(problems(() => parse('  cluster: { nodes: [10.0.0.1:7000] }\n  db: 3'))).toEqual([
      'redis.db: db goes with sentinel; a url names its database (redis://host:port/2) and a Cluster has only 0',
    ]);
    expect(problems(() => parse('  cluster: { nodes: [10.0.0.1] }'))).toEqual(['redis.cluster.nodes[0]: expected host:port ([address]:port for IPv6)']);
    expect(problems(() => parse('  cluster: { nodes: [::1:7000] }'))).toEqual(['redis.cluster.nodes[0]: expected host:port ([address]:port for IPv6)']);
    expect(parse('  cluster: { nodes: ["[::1]:7000", redis-a.internal:7000] }').redis.cluster?.nodes).toEqual(['[::1]:7000', 'redis-a.internal:7000']);
    expect(problems(() => parse('  sentinel: { nodes: [s:26379] }'))).toEqual(['redis.sentinel.name: required']);
  });
});

describe('key names', () => {
  it('one Redis and Sentinel keep the names a deployment already has', () => {
    const keys = syncKeys('tvsync', 'corp');
    expect([keys.links, keys.cycle('c1'), keys.fastLane.personLock('p'), keys.provisioningLog.index]).toEqual([
      'tvsync:sync:corp:links',
      'tvsync:sync:corp:cycle:c1',
      'tvsync:sync:corp:fast-lane:person:p',
      'tvsync:sync:corp:provisioning-log:by-email',
    ]);
    expect(queuePrefix('tvsync', 'corp')).toBe('tvsync');
  });

  it('on a Cluster every key of a sync, and its queues, carry the sync as hash tag', () => {
    const prefix = { base: 'tvsync', hashTagged: true } as const;
    const keys = syncKeys(prefix, 'corp');
    const names = [keys.links, keys.epoch, keys.cycleResults('c1'), keys.written.members('g1'), keys.source('delta'), keys.fastLane.applying];
    for (const name of names) expect(/^[^{]*\{([^}]*)\}/.exec(name)?.[1], name).toBe('corp');
    expect(keys.links).toBe('tvsync:sync:{corp}:links');
    // BullMQ keys are `<prefix>:<queue>:<suffix>`: the first hash tag is the sync's.
    expect(queuePrefix(prefix, 'corp')).toBe('tvsync:{corp}');
  });
});

describe('failover errors', () => {
  it('count as Redis being unreachable, not as a command that failed', () => {
    for (const message of [
      "READONLY You can't write against a read only replica.",
      'CLUSTERDOWN The cluster is down',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'MOVED 3999 127.0.0.1:6381',
      'Too many Cluster redirections. Last error: Error: MOVED 3999 127.0.0.1:6381',
      'Failed to refresh slots cache.',
      'All sentinels are unreachable. Retrying from scratch after 10ms.',
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.',
    ]) {
      expect(isConnectionError(new Error(message)), message).toBe(true);
    }
    const allFailed = new Error('Failed to refresh slots cache.');
    allFailed.name = 'ClusterAllFailedError';
    expect(isConnectionError(allFailed)).toBe(true);
    expect(isConnectionError(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(isConnectionError(new Error("CROSSSLOT Keys in request don't hash to the same slot"))).toBe(false);
  });

  it('a refused password names the keys to fix, never the password', () => {
    const config = parse('  sentinel: { name: mymaster, nodes: [s:26379] }\n  password: ${PW}', { PW: 'Rf4k1Vb0123' });
    const failure = explainRedisFailure(config.redis, [new Error('WRONGPASS invalid username-password pair or user is disabled. Rf4k1Vb0123')], 5000);
    expect(failure.kind).toBe('password');
    expect(failure.message).toContain('redis.password');
    expect(failure.message).not.toContain('Rf4k1Vb0123');
    const down = explainRedisFailure(config.redis, [new Error('All sentinels are unreachable. Retrying from scratch after 10ms.')], 5000);
    expect(down.message).toBe(
      'Redis at master "mymaster" of Sentinels s:26379 does not answer (All sentinels are unreachable. Retrying from scratch after 10ms.); start it or fix redis.sentinel',
    );
  });
});
