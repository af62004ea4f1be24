import { context, diag, DiagLogLevel, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import type { Telemetry } from 'bullmq';
import { outsideText, registerSecret, webhookUrlSecrets } from '../net/secrets.js';
import type { Logger } from './log.js';

/** The `telemetry.traces` block of the config, as the schema gives it. */
export interface TracesConfig {
  enabled?: boolean | undefined;
  endpoint?: string | undefined;
  serviceName: string;
  sampleRatio: number;
}

export interface TracingSettings {
  /** Where spans are POSTed (OTLP over HTTP, JSON). */
  url: string;
  serviceName: string;
  sampleRatio: number;
}

/** The OTLP default for HTTP, used when tracing is switched on without an endpoint. */
const DEFAULT_OTLP_TRACES_URL = 'http://localhost:4318/v1/traces';

/**
 * Whether and where to export traces: off unless the config or the standard OTEL_ variables name an
 * endpoint (or the config switches them on). OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none win,
 * as every OpenTelemetry SDK does; `enabled: false` in the config wins over the environment.
 */
export function tracingSettings(config: TracesConfig, env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (config.enabled === false) return undefined;
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return undefined;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes('none')) return undefined;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const url =
    config.endpoint ??
    (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || undefined) ??
    // The generic endpoint is a base to which each signal appends its path (the OTLP exporter spec).
    (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined) ??
    (config.enabled ? DEFAULT_OTLP_TRACES_URL : undefined);
  if (url === undefined) return undefined;
  return { url, serviceName: env.OTEL_SERVICE_NAME?.trim() || config.serviceName, sampleRatio: config.sampleRatio };
}

/** `k1=v1,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS): the values are credentials as far as tvsync knows. */
function registerHeaderSecrets(list: string | undefined): void {
  for (const pair of (list ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at < 0) continue;
    const value = pair.slice(at + 1).trim();
    try {
      registerSecret(decodeURIComponent(value));
    } catch {
      registerSecret(value);
    }
  }
}

export interface Tracing {
  settings: TracingSettings;
  /** Sends what is buffered (a CLI command ending, a test reading its spans). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

let running: { tracing: Tracing; telemetry: Telemetry } | undefined;

/** How often an export failure is logged at most: a collector that is down must not flood the log. */
const EXPORT_WARNING_EVERY_MS = 60_000;

/**
 * Registers the process's tracer provider and exporter. Spans of the queue (bullmq-otel), of the
 * cycle and of each SCIM request then reach the collector; without this, the OpenTelemetry API
 * tvsync calls is a no-op. The SDK is loaded only here, so a deployment without traces never loads it.
 */
export async function startTracing(settings: TracingSettings, log: Logger): Promise<Tracing> {
  if (running) return running.tracing;
  const [
    { OTLPTraceExporter },
    { resourceFromAttributes },
    { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler },
    { BullMQOtel },
  ] = await Promise.all([
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-node'),
    import('bullmq-otel'),
  ]);
  // Another start may have finished while the SDK loaded.
  const started: { tracing: Tracing } | undefined = currentTracing();
  if (started) return started.tracing;
  // An endpoint may carry its credential as a webhook URL does (a password, a key in the query).
  for (const part of webhookUrlSecrets(settings.url)) registerSecret(part);
  registerHeaderSecrets(process.env.OTEL_EXPORTER_OTLP_HEADERS);
  registerHeaderSecrets(process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS);
  let warnedAt = Number.NEGATIVE_INFINITY;
  diag.setLogger(
    {
      error: (message: string, ...args: unknown[]) => {
        const now = Date.now();
        if (now - warnedAt < EXPORT_WARNING_EVERY_MS) return;
        warnedAt = now;
        // The exporter's messages may quote the collector's answer or its headers: scrubbed.
        log.warn({ err: outsideText([message, ...args.map(String)].join(' '), 300) }, 'traces could not be exported; retrying with the next batch');
      },
      warn: () => {},
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { logLevel: DiagLogLevel.ERROR, suppressOverrideMessage: true },
  );
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.url, timeoutMillis: 10_000 }), { scheduledDelayMillis: 1000 })],
  });
  provider.register();
  const tracing: Tracing = {
    settings,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      if (running?.tracing !== tracing) return;
      running = undefined;
      await provider.shutdown();
      trace.disable();
      context.disable();
      diag.disable();
    },
  };
  running = { tracing, telemetry: withoutJobResults(new BullMQOtel({ tracerName: 'tvsync.queue' })) };
  log.info({ endpoint: outsideText(settings.url, 200), sampleRatio: settings.sampleRatio }, 'exporting traces over OTLP');
  return tracing;
}

type QueueSpan = ReturnType<Telemetry['tracer']['startSpan']>;

/**
 * The queue's telemetry records each job's return value on its span ("job completed"): for tvsync
 * that is a report or an operation outcome, full of addresses and names, and traces leave the
 * company. Those values are dropped; failure texts are scrubbed like every outside text.
 */
function withoutJobResults(telemetry: Telemetry): Telemetry {
  const clean = (attributes: Record<string, unknown> | undefined) =>
    attributes &&
    Object.fromEntries(
      Object.entries(attributes)
        .filter(([key]) => key !== 'bullmq.job.result')
        .map(([key, value]) => [key, typeof value === 'string' && key.includes('reason') ? outsideText(value, 300) : value]),
    );
  const wrap = (span: QueueSpan): QueueSpan => ({
    setSpanOnContext: (ctx) => span.setSpanOnContext(ctx),
    setAttribute: (key, value) => span.setAttribute(key, value),
    setAttributes: (attributes) => span.setAttributes(attributes),
    addEvent: (name, attributes) => span.addEvent(name, clean(attributes) as typeof attributes),
    recordException: (exception, time) => span.recordException(typeof exception === 'string' ? outsideText(exception, 300) : exception, time),
    end: () => span.end(),
  });
  return {
    ...telemetry,
    contextManager: telemetry.contextManager,
    tracer: { startSpan: (name, options, ctx) => wrap(telemetry.tracer.startSpan(name, options, ctx)) },
  };
}

function currentTracing(): { tracing: Tracing } | undefined {
  return running;
}

export function tracingStarted(): boolean {
  return running !== undefined;
}

/**
 * The queue's telemetry for Queue and Worker options: with it, adding a job carries the caller's
 * trace into the job, and processing it continues that trace. Nothing while tracing is off.
 */
export function queueTelemetry(): { telemetry?: Telemetry } {
  return running ? { telemetry: running.telemetry } : {};
}

const tracer = () => trace.getTracer('tvsync');

/** Runs `fn` as a span of its own (a child of the active one): the root of a "sync now" press. */
export async function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Names the active span (a job the queue's telemetry opened) after what tvsync does in it. */
export function annotateActiveSpan(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}
