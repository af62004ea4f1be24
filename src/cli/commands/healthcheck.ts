import { get } from 'node:http';
import { configPath, loadConfig } from '../../config/load.js';
import { CliFailure } from '../exit.js';

export interface HealthcheckOptions {
  config?: string;
}

const TIMEOUT_MS = 5000;

/** /healthz answers a few hundred bytes; more is not read. */
const BODY_LIMIT = 4096;

/**
 * The status of a GET, and the start of its body. node:http rather than fetch: fetch's HTTP client
 * alone adds some 40 MiB and 0.1 s to a process the container starts every 30 s.
 */
function answerOf(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    get(url, { agent: false, signal }, (res) => {
      const status = res.statusCode ?? 0;
      // A healthy answer is its status alone, whatever its body does; a failing one names its reasons.
      if (status >= 200 && status <= 299) {
        resolve({ status, body: '' });
        res.destroy();
        return;
      }
      let body = '';
      const done = () => {
        resolve({ status, body });
        res.destroy();
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length >= BODY_LIMIT) done();
      });
      res.on('end', done);
      res.on('error', done);
    }).on('error', (err) => reject(signal.aborted ? signal.reason : err));
  });
}

/** The fixed reasons a failing /healthz gives anyone (no sync names, no outside text). */
function reasonsOf(body: string): string[] {
  try {
    const parsed: unknown = JSON.parse(body);
    const reasons = parsed && typeof parsed === 'object' && 'reasons' in parsed ? (parsed as { reasons: unknown }).reasons : undefined;
    return Array.isArray(reasons) ? reasons.filter((r): r is string => typeof r === 'string').map((r) => r.slice(0, 200)) : [];
  } catch {
    return [];
  }
}

/**
 * `tvsync healthcheck`: asks this host's tvsync for /healthz. The container runs it every 30 s,
 * so it loads the configuration and nothing else: no logger, no Redis, no IdP or TeamViewer client.
 */
export async function healthcheckCommand(opts: HealthcheckOptions): Promise<void> {
  const config = loadConfig(configPath(opts.config));
  const url = `http://127.0.0.1:${config.http.port}/healthz`;
  const { status, body } = await answerOf(url, TIMEOUT_MS).catch((err: unknown) => {
    throw new CliFailure(`${url} does not answer: ${err instanceof Error ? err.message : String(err)}`);
  });
  if (status < 200 || status > 299) {
    const reasons = reasonsOf(body);
    throw new CliFailure(`${url} answered ${status}${reasons.length ? `: ${reasons.join('; ')}` : ''}`);
  }
  process.stdout.write('ok\n');
}
