import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/load.js';
import { startHttpServer } from '../../src/observe/http.js';
import { TvsyncMetrics } from '../../src/observe/metrics.js';
import { silentLog } from '../support/fixtures.js';

/**
 * docker-compose.yml, .env.example, config/compose.yaml and deploy/kubernetes kept consistent
 * with each other and with the code: ports, probe paths, secret files, the config, the user.
 */
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface ComposeService {
  command: string[];
  entrypoint?: string[];
  secrets?: string[];
  ports?: string[];
  logging?: { driver: string; options: Record<string, string> };
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
  healthcheck?: { test: string[] };
  volumes?: string[];
}
const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService>; secrets: Record<string, { file: string }> };
const configText = read('config/compose.yaml');
const dockerfile = read('Dockerfile');
const envExample = Object.fromEntries(
  read('.env.example')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const k8s = ['configmap', 'secret', 'deployment', 'service', 'servicemonitor'].flatMap((name) =>
  parseAllDocuments(read(`deploy/kubernetes/${name}.yaml`)).map((d) => d.toJS() as { kind: string; metadata: { name: string }; [key: string]: unknown }),
);
const kind = <T>(k: string, name?: string) => k8s.find((d) => d.kind === k && (name === undefined || d.metadata.name === name)) as T;

/** /run/secrets/<name> for every *File key of the config. */
const secretFiles = [...configText.matchAll(/^\s*\w+File:\s*(\S+)/gm)].map((m) => m[1] ?? '');
const secretNames = secretFiles.map((f) => f.replace('/run/secrets/', ''));

/** The config as the container reads it: the secret files stubbed in a directory, the ids from .env.example. */
function parseComposeConfig() {
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-secrets-'));
  for (const name of secretNames)
    writeFileSync(join(dir, name), name === 'redis_url' ? 'redis://:stub-password-0123456789@redis:6379' : `stub-${name}-0123456789abcdef`);
  return parseConfig(configText.replaceAll('/run/secrets/', `${dir}/`), { env: envExample });
}

describe('docker-compose.yml', () => {
  const tvsync = compose.services.tvsync as ComposeService;
  const redis = compose.services.redis as ComposeService;

  it('mounts config/compose.yaml, which parses with the config schema once its secret files are there', () => {
    expect(tvsync.volumes).toContain('./config/compose.yaml:/etc/tvsync/tvsync.yaml:ro');
    const config = parseComposeConfig();
    expect(config.redis.url).toBe('redis://:stub-password-0123456789@redis:6379');
    expect(config.http.metricsToken).toBe('stub-metrics_token-0123456789abcdef');
    expect(config.syncs.map((s) => s.source.type)).toEqual(['entra']);
  });

  it('hands every secret file the config reads through compose secrets, and declares no other', () => {
    expect(secretFiles.length).toBeGreaterThanOrEqual(4);
    for (const file of secretFiles) expect(file).toMatch(/^\/run\/secrets\/[a-z_]+$/);
    expect([...(tvsync.secrets ?? [])].sort()).toEqual([...secretNames].sort());
    expect(Object.keys(compose.secrets).sort()).toEqual([...secretNames, 'redis_password'].sort());
    for (const { file } of Object.values(compose.secrets)) expect(file).toMatch(/^\.\/secrets\/[a-z_]+$/);
    // No secret reaches the container as an environment variable.
    expect(read('docker-compose.yml')).not.toMatch(/TOKEN=|SECRET=|PASSWORD=/);
  });

  it('gives Redis a password from its secret file, and tvsync a URL with it', () => {
    expect(redis.secrets).toEqual(['redis_password']);
    const command = [...(redis.entrypoint ?? []), ...redis.command].join(' ');
    expect(command).toContain('requirepass');
    expect(command).toContain('/run/secrets/redis_password');
    expect(redis.healthcheck?.test.join(' ')).toContain('REDISCLI_AUTH');
    expect(configText).toMatch(/urlFile: \/run\/secrets\/redis_url/);
  });

  it('publishes the HTTP port on 127.0.0.1 unless .env says otherwise, the port of the config and the image', () => {
    const config = parseComposeConfig();
    expect(envExample.TVSYNC_HTTP_BIND).toBe('127.0.0.1');
    expect(tvsync.ports).toEqual([`\${TVSYNC_HTTP_BIND:-127.0.0.1}:\${TVSYNC_HTTP_PORT:-${config.http.port}}:${config.http.port}`]);
    expect(dockerfile).toContain(`EXPOSE ${config.http.port}`);
  });

  it('rotates logs and limits resources of every service', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.logging?.driver, name).toBe('json-file');
      expect(service.logging?.options['max-size'], name).toMatch(/^\d+m$/);
      expect(Number(service.logging?.options['max-file']), name).toBeGreaterThan(1);
      expect(service.deploy?.resources?.limits?.cpus, name).toBeDefined();
      expect(service.deploy?.resources?.limits?.memory, name).toBeDefined();
    }
  });

  it('names in .env.example every variable the config and compose refer to', () => {
    const uncommented = `${configText}\n${read('docker-compose.yml')}`.replace(/(^|\s)#.*$/gm, '');
    const used = new Set([...uncommented.matchAll(/\$\{([A-Z_]+)(?::-[^}]*)?\}/g)].map((m) => m[1] ?? ''));
    expect(used.size).toBeGreaterThanOrEqual(4);
    for (const name of used) expect(Object.keys(envExample), name).toContain(name);
  });

  it('runs a command of the CLI, with the image health check', () => {
    const commands = buildProgram().commands.map((c) => c.name());
    expect(commands).toContain(tvsync.command[0]);
    expect(tvsync.healthcheck?.test).toEqual(['CMD', 'node', 'dist/cli/main.js', 'healthcheck']);
  });
});

describe('deploy/kubernetes', () => {
  interface Container {
    args: string[];
    ports: { name: string; containerPort: number }[];
    livenessProbe: { httpGet: { path: string; port: string } };
    readinessProbe: { httpGet: { path: string; port: string } };
    securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
    volumeMounts: { name: string; mountPath: string }[];
  }
  interface Deployment {
    spec: {
      template: {
        spec: {
          securityContext: { runAsNonRoot: boolean; runAsUser: number };
          containers: Container[];
          volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
        };
      };
    };
  }
  const deployment = kind<Deployment>('Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0] as Container;

  it('holds config/compose.yaml as it is in its ConfigMap, and the ids .env.example names', () => {
    const config = kind<{ data: Record<string, string> }>('ConfigMap', 'tvsync-config');
    expect(config.data['tvsync.yaml']).toBe(configText);
    const env = kind<{ data: Record<string, string> }>('ConfigMap', 'tvsync-env');
    for (const name of [...configText.replace(/(^|\s)#.*$/gm, '').matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1] ?? ''))
      expect(Object.keys(env.data)).toContain(name);
  });

  it('mounts a Secret with exactly the files the config reads, at /run/secrets', () => {
    const secret = kind<{ stringData: Record<string, string>; metadata: { name: string } }>('Secret');
    expect(Object.keys(secret.stringData).sort()).toEqual([...secretNames].sort());
    const volume = pod.volumes.find((v) => v.secret?.secretName === secret.metadata.name);
    expect(container.volumeMounts.find((m) => m.name === volume?.name)?.mountPath).toBe('/run/secrets');
  });

  it('probes /healthz for liveness and /readyz for readiness, routes the HTTP server answers', async () => {
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      log: silentLog,
      metrics: new TvsyncMetrics({ defaultMetrics: false }),
      ready: async () => ({ ready: true, reason: 'ready', checks: [] }),
      syncNames: ['corp'],
      triggerSyncNow: async () => ({ requestedAt: 1 }),
    });
    try {
      for (const path of [container.livenessProbe.httpGet.path, container.readinessProbe.httpGet.path, '/no-such-route']) {
        const answer = await fetch(`http://127.0.0.1:${server.port}${path}`);
        expect(answer.status, path).toBe(path === '/no-such-route' ? 404 : 200);
      }
    } finally {
      await server.close();
    }
  });

  it('uses one port everywhere: the config, the container, the Service and the ServiceMonitor', () => {
    const port = parseComposeConfig().http.port;
    expect(container.ports).toEqual([{ name: 'http', containerPort: port }]);
    expect(container.livenessProbe.httpGet.port).toBe('http');
    const service = kind<{ spec: { ports: { name: string; port: number; targetPort: string }[] } }>('Service');
    expect(service.spec.ports).toEqual([{ name: 'http', port, targetPort: 'http' }]);
    const monitor = kind<{ apiVersion: string; spec: { endpoints: { port: string; path: string; bearerTokenSecret: { name: string; key: string } }[] } }>(
      'ServiceMonitor',
    );
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    const [endpoint] = monitor.spec.endpoints;
    expect(endpoint?.port).toBe('http');
    expect(endpoint?.path).toBe('/metrics');
    // The scrape sends the token the config's http.metricsToken is read from.
    expect(`/run/secrets/${endpoint?.bearerTokenSecret.key}`).toBe(/metricsTokenFile: (\S+)/.exec(configText)?.[1]);
  });

  it('runs a CLI command as a non-root user on a read-only root file system, like the image', () => {
    expect(buildProgram().commands.map((c) => c.name())).toContain(container.args[0]);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(dockerfile).toMatch(/^USER node$/m);
  });
});
