import { load, selectSyncs } from '../context.js';
import { EXIT } from '../exit.js';
import { renderValidation, validateSyncs } from '../validate.js';

export interface ValidateOptions {
  config?: string;
  sync?: string;
}

/** `tvsync validate`: tests the connection to each sync's IdP and TeamViewer; writes nothing. */
export async function validateCommand(opts: ValidateOptions): Promise<void> {
  const { config, log } = load(opts.config);
  const results = await validateSyncs(config, selectSyncs(config, opts.sync), { log });
  process.stdout.write(`${renderValidation(results)}\n`);
  process.exitCode = results.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
}
