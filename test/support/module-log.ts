/**
 * Preload for a child process (node --import tsx --import test/support/module-log.ts …): appends
 * the URL of every module the process resolves from then on to the file TVSYNC_MODULE_LOG names.
 * Written from the hooks thread as each module resolves, so the list is whole even when the
 * process ends with process.exit.
 */
import { register } from 'node:module';

const file = process.env.TVSYNC_MODULE_LOG;
if (!file) throw new Error('set TVSYNC_MODULE_LOG to the file the resolved modules go to');
const hooks = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { file } });
