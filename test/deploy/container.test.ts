import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/load.js';

/**
 * No Docker engine runs where the tests run, so the container files are checked against the code
 * instead: entry point, commands, port, health check, config path, signals, Redis settings.
 */
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const dockerfile = read('Dockerfile');
const compose = parse(read('docker-compose.yml')) as {
  services: {
    redis: { command: string[]; entrypoint?: string[] };
    tvsync: { command: string[]; environment: Record<string, string>; volumes: string[]; ports: string[]; stop_grace_period: string };
  };
};
const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; engines: { node: string } };
const commands = buildProgram().commands.map((c) => c.name());
const defaults = parseConfig('syncs:\n  - name: x\n    source: { type: file, path: . }\n    target: { token: "${T}" }\n', { env: { T: 'token' } });

function instruction(name: string): string {
  const line = dockerfile.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`Dockerfile has no ${name}`);
  return line.slice(name.length + 1);
}

describe('Dockerfile and docker-compose.yml agree with the code', () => {
  it('the entry point is the compiled CLI that package.json names, run under tini', () => {
    const entry = JSON.parse(instruction('ENTRYPOINT')) as string[];
    expect(entry.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(entry.at(-1)).toBe(pkg.bin.tvsync);
    expect(pkg.bin.tvsync).toBe('dist/cli/main.js');
    expect(existsSync(new URL('src/cli/main.ts', root))).toBe(true);
    const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
  });

  it('the default command, the compose command and the health check are real commands', () => {
    const cmd = JSON.parse(instruction('CMD')) as string[];
    expect(commands).toContain(cmd[0]);
    expect(commands).toContain(compose.services.tvsync.command[0]);
    const health = instruction('HEALTHCHECK');
    const healthCmd = JSON.parse(health.slice(health.indexOf('CMD ') + 4)) as string[];
    expect(healthCmd.slice(0, 2)).toEqual(['node', pkg.bin.tvsync]);
    expect(commands).toContain(healthCmd[2]);
    expect(read('src/cli/commands/healthcheck.ts')).toContain('/healthz`');
    expect(read('src/observe/http.ts')).toContain("'/healthz'");
  });

  it('exposes and publishes the configured HTTP port, on localhost unless asked otherwise', () => {
    expect(instruction('EXPOSE')).toBe(String(defaults.http.port));
    expect(compose.services.tvsync.ports).toEqual([`\${TVSYNC_HTTP_BIND:-127.0.0.1}:\${TVSYNC_HTTP_PORT:-${defaults.http.port}}:${defaults.http.port}`]);
  });

  it('reads the config where compose mounts it', () => {
    expect(dockerfile).toContain('TVSYNC_CONFIG=/etc/tvsync/tvsync.yaml');
    expect(compose.services.tvsync.environment.TVSYNC_CONFIG).toBe('/etc/tvsync/tvsync.yaml');
    expect(compose.services.tvsync.volumes.some((v) => v.split(':')[1] === '/etc/tvsync/tvsync.yaml')).toBe(true);
  });

  it('runs an LTS Node as a non-root user, with production dependencies only', () => {
    const images = [...dockerfile.matchAll(/^FROM node:(\d+)-/gm)].map((m) => Number(m[1]));
    expect(images.length).toBe(2);
    for (const major of images) expect([22, 24]).toContain(major);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain('npm ci --omit=dev');
    expect(pkg.engines.node).toBe('>=20.19.0');
  });

  it('gives running jobs longer than the shutdown grace, and Redis persistence with noeviction', () => {
    expect(Number.parseInt(compose.services.tvsync.stop_grace_period, 10) * 1000).toBeGreaterThan(defaults.runtime.shutdownGrace);
    const redis = [...(compose.services.redis.entrypoint ?? []), ...compose.services.redis.command].join(' ');
    expect(redis).toContain('--maxmemory-policy noeviction');
    expect(redis).toContain('--appendonly yes');
  });
});
