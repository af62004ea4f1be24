import { secrets } from '../net/secrets.js';

/**
 * What every command prints with --json: one object whose `syncs` holds an entry per sync the
 * command covered, each naming its `sync`. One sync or many, a script reads it the same way.
 */
export interface JsonOutput<Entry extends { sync: string }> {
  syncs: Entry[];
}

export function printJson<Entry extends { sync: string }>(out: JsonOutput<Entry>): void {
  process.stdout.write(`${JSON.stringify(secrets.scrubDeep(out), null, 2)}\n`);
}
