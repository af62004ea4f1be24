import { configPath, loadConfig } from '../../config/load.js';
import { CliFailure } from '../exit.js';

export interface HealthcheckOptions {
  config?: string;
}

/**
 * `tvsync healthcheck`: asks this host's tvsync for /healthz. The container runs it every 30 s,
 * so it loads the configuration and nothing else: no logger, no Redis, no IdP or TeamViewer client.
 */
export async function healthcheckCommand(opts: HealthcheckOptions): Promise<void> {
  const config = loadConfig(configPath(opts.config));
  const url = `http://127.0.0.1:${config.http.port}/healthz`;
  const answer = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch((err: unknown) => {
    throw new CliFailure(`${url} does not answer: ${err instanceof Error ? err.message : String(err)}`);
  });
  if (!answer.ok) throw new CliFailure(`${url} answered ${answer.status}`);
  process.stdout.write('ok\n');
}
