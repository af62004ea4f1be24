import { get } from 'node:http';
import { configPath, loadConfig } from '../../config/load.js';
import { CliFailure } from '../exit.js';

export interface HealthcheckOptions {
  config?: string;
}

const TIMEOUT_MS = 5000;

/**
 * The status of a GET. node:http rather than fetch: fetch's HTTP client alone adds some 40 MiB
 * and 0.1 s to a process the container starts every 30 s. Only the status counts; the body is not read.
 */
function statusOf(url: string, timeoutMs: number): Promise<number> {
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    get(url, { agent: false, signal }, (res) => {
      resolve(res.statusCode ?? 0);
      res.destroy();
    }).on('error', (err) => reject(signal.aborted ? signal.reason : err));
  });
}

/**
 * `tvsync healthcheck`: asks this host's tvsync for /healthz. The container runs it every 30 s,
 * so it loads the configuration and nothing else: no logger, no Redis, no IdP or TeamViewer client.
 */
export async function healthcheckCommand(opts: HealthcheckOptions): Promise<void> {
  const config = loadConfig(configPath(opts.config));
  const url = `http://127.0.0.1:${config.http.port}/healthz`;
  const status = await statusOf(url, TIMEOUT_MS).catch((err: unknown) => {
    throw new CliFailure(`${url} does not answer: ${err instanceof Error ? err.message : String(err)}`);
  });
  if (status < 200 || status > 299) throw new CliFailure(`${url} answered ${status}`);
  process.stdout.write('ok\n');
}
