import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROBE = fileURLToPath(new URL('../support/loaded-packages.ts', import.meta.url));
const IDP_SDK = /^@(azure|microsoft|okta)\//;

/** The npm packages loaded in a fresh process, one list per line the probe prints. */
async function loadedPackages(module: string, ...flags: string[]): Promise<string[][]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', PROBE, join(ROOT, module), ...flags], { cwd: ROOT, timeout: 30_000 });
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as string[]);
}

describe('which SDKs a module loads', () => {
  it('loading a config loads zod and yaml, and no IdP SDK or HTTP client', async () => {
    const [config] = await loadedPackages('src/config/load.ts');
    expect(config).toEqual(expect.arrayContaining(['zod', 'yaml']));
    expect(config?.filter((name) => IDP_SDK.test(name) || name === 'axios')).toEqual([]);
  });

  it('the source factory loads an IdP SDK only once a source of that IdP is used', async () => {
    const [imported, created, used] = await loadedPackages('src/connectors/index.ts', '--use-entra');
    expect(imported?.filter((name) => IDP_SDK.test(name))).toEqual([]);
    expect(created?.filter((name) => IDP_SDK.test(name))).toEqual([]);
    expect(used).toEqual(expect.arrayContaining(['@azure/identity', '@microsoft/microsoft-graph-client']));
    expect(used?.filter((name) => name.startsWith('@okta/'))).toEqual([]);
  });

  it('the daemon loads the OpenTelemetry SDK only when traces are exported', async () => {
    const [daemon] = await loadedPackages('src/runtime/daemon.ts');
    expect(daemon).toEqual(expect.arrayContaining(['bullmq', '@opentelemetry/api']));
    expect(daemon?.filter((name) => name === 'bullmq-otel' || /^@opentelemetry\/(sdk|exporter|resources)/.test(name))).toEqual([]);
  });
});
