import { describe, expect, it } from 'vitest';
import { startTracing } from '../../src/observe/traces.js';
import { capturedLogger, expectNoLeak } from '../support/leaks.js';

describe('starting the trace exporter', () => {
  it('logs the endpoint without the credentials its URL carries (a password, a token in the query)', async () => {
    const password = 'otlp-pass-word';
    const key = 'ApiKey0123456789abcdef';
    const { lines, log } = capturedLogger();
    const tracing = await startTracing({ url: `http://tvsync:${password}@127.0.0.1:9/v1/traces?api-key=${key}`, serviceName: 'tvsync', sampleRatio: 1 }, log);
    try {
      expect(lines.join('\n')).toContain('exporting traces over OTLP');
      expectNoLeak(password, lines.join('\n'));
      expectNoLeak(key, lines.join('\n'));
    } finally {
      await tracing.shutdown();
    }
  });
});
