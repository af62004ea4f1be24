import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/** A client span around one HTTP exchange; a no-op while traces are off. */
export interface RequestSpan {
  /** The answer's status, or the failure's code when none came (ETIMEDOUT, ECONNRESET). */
  end(outcome: { status: number } | { code: string }): void;
}

/** The host of the last base URL seen: one client sends thousands of requests to the same one. */
let lastHost: { baseUrl: string; host: string } | undefined;

function hostOf(baseUrl: string): string {
  if (lastHost?.baseUrl === baseUrl) return lastHost.host;
  let host = '';
  try {
    host = new URL(baseUrl).host;
  } catch {
    // A base URL the config accepted always parses; the attribute is only left out otherwise.
  }
  lastHost = { baseUrl, host };
  return host;
}

/**
 * Opens the span of one request to an outside API, as a child of the active span (the operation
 * job or the cycle). It names the route template, never the concrete path: paths and queries carry
 * e-mail addresses and ids, and traces leave the company. No header is ever recorded.
 */
export function startRequestSpan(system: string, method: string, route: string, baseUrl: string): RequestSpan {
  const host = hostOf(baseUrl);
  const span = trace.getTracer('tvsync').startSpan(`${method} ${route}`, {
    kind: SpanKind.CLIENT,
    attributes: { 'http.request.method': method, 'url.template': route, 'server.address': host, 'tvsync.api': system },
  });
  return {
    end(outcome) {
      if ('status' in outcome) {
        span.setAttribute('http.response.status_code', outcome.status);
        if (outcome.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR, message: String(outcome.status) });
      } else {
        span.setAttribute('error.type', outcome.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code });
      }
      span.end();
    },
  };
}
