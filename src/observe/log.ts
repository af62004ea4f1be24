import pino, { type DestinationStream, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import { secrets as registry, SECRET_KEYS } from '../net/secrets.js';

export type { Logger } from 'pino';

/** Field names pino blanks wherever they appear one level deep, plus request headers. */
const REDACT_PATHS = [
  ...[...SECRET_KEYS].flatMap((key) => [key, `*.${key}`]),
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
];

/** Every secret value of a parsed config (the keys the loader treats as secrets), for scrubbing. */
export function collectSecrets(node: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(node)) for (const item of node) collectSecrets(item, out);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (SECRET_KEYS.has(key) && typeof value === 'string' && value.length >= 4) out.add(value);
      else collectSecrets(value, out);
    }
  }
  return out;
}

/**
 * Field redaction cannot see a secret that slipped into a message or an error text, so every
 * line also passes the process's secret scrubber (configured secrets, obtained access tokens, in
 * every encoded form and as fragments) before it leaves the process.
 */
export function scrubbingStream(secrets: Iterable<string>, target: DestinationStream): DestinationStream {
  for (const secret of secrets) registry.add(secret);
  return {
    write(line: string) {
      target.write(registry.scrub(line));
    },
  };
}

export function createLogger(
  opts: { level?: string; secrets?: Iterable<string>; destination?: DestinationStream; pretty?: boolean; base?: Record<string, unknown> } = {},
): Logger {
  const pretty = opts.pretty ?? (opts.destination === undefined && process.stdout.isTTY === true);
  const target: DestinationStream =
    opts.destination ?? (pretty ? PinoPretty({ colorize: true, translateTime: 'SYS:standard', ignore: 'pid,hostname' }) : pino.destination(1));
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.base ?? { service: 'tvsync' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      serializers: { err: pino.stdSerializers.err },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    scrubbingStream(opts.secrets ?? [], target),
  );
}
