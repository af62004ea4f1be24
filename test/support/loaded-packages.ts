/**
 * Child-process probe: which npm packages a module loads. Run as
 *   node --import tsx test/support/loaded-packages.ts <module> [--use-entra]
 * It prints one JSON line with the packages loaded by importing <module>. With --use-entra, two
 * more: after <module>'s createSource made an entra source, and after that source was first used.
 */
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MessageChannel } from 'node:worker_threads';

const urls = new Set<string>();
const { port1, port2 } = new MessageChannel();
port1.on('message', (url: string) => urls.add(url));
port1.unref();
// Every module resolved from here on is reported back over the port.
const hooks = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  port.postMessage(result.url);
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { port: port2 }, transferList: [port2] });

async function packages(): Promise<string[]> {
  // Messages from the hooks thread arrive asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const names = [...urls].flatMap((url) => {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    return match?.[1] ? [match[1]] : [];
  });
  return [...new Set(names)].sort();
}

const [target, flag] = process.argv.slice(2);
if (!target) throw new Error('usage: loaded-packages.ts <module> [--use-entra]');
const loaded = (await import(pathToFileURL(target).href)) as Record<string, unknown>;
console.log(JSON.stringify(await packages()));

if (flag === '--use-entra') {
  const createSource = loaded.createSource as (config: unknown, deps: unknown) => { lookupGroups(ids: string[]): Promise<unknown> };
  const { pino } = await import('pino');
  const { MemoryStateStore } = await import('../../src/store/memory-state.js');
  const { entraSourceConfigSchema } = await import('../../src/connectors/entra/config.js');
  const config = entraSourceConfigSchema.parse({
    type: 'entra',
    tenantId: 'tid',
    clientId: 'cid',
    clientSecret: 'not-a-secret',
    scope: { mode: 'groups', groupIds: ['g1'] },
  });
  const source = createSource(config, { state: new MemoryStateStore(), log: pino({ level: 'silent' }) });
  console.log(JSON.stringify(await packages()));
  // Asking about no group sends no request, but builds the source.
  await source.lookupGroups([]);
  console.log(JSON.stringify(await packages()));
}
