import type { Logger } from 'pino';
import { initialRate, limiterFor, nextRate, type RateLimits, type RateState } from '../net/adaptive-rate.js';
import type { ResponseInfo } from '../net/response-info.js';
import type { RequestRateStore } from '../store/request-rate.js';

/** What the governor sets: BullMQ's worker limiter, read again at each fetch of a job. */
export interface LimitedWorker {
  opts: { limiter?: { max: number; duration: number } };
}

/** Latencies kept per window for the median: enough to be steady, bounded at any rate. */
const LATENCY_SAMPLE = 512;

/**
 * The edge of the adaptive rate: counts TeamViewer's answers, asks the pure controller once per
 * window, shares the result through Redis with the other replicas of the sync, and sets the
 * operation worker's limiter to it. Logs a change only when the rate falls or has grown by a
 * quarter since the last line, so a steady climb does not flood the log.
 */
export class RequestRateGovernor {
  private state: RateState;
  private answers = 0;
  private throttled = 0;
  private latencies: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private worker: LimitedWorker | undefined;
  private loggedRate: number;
  private ticking = false;

  constructor(
    private readonly deps: {
      store: RequestRateStore;
      limits: RateLimits;
      log: Logger;
      windowMs?: number;
      /** Called with every rate in force (the metric). */
      onRate?: (rate: number) => void;
    },
  ) {
    this.state = initialRate(deps.limits);
    this.loggedRate = this.state.rate;
  }

  get rate(): number {
    return this.state.rate;
  }

  /** Starts from the rate learned before (by this or another replica), else from the configured start. */
  async load(): Promise<void> {
    const learned = await this.deps.store.load().catch(() => undefined);
    this.state = initialRate(this.deps.limits, learned);
    this.loggedRate = this.state.rate;
    this.deps.onRate?.(this.state.rate);
  }

  limiter(): { max: number; duration: number } {
    return limiterFor(this.state.rate);
  }

  /** Sets `worker`'s limiter from now on and starts deciding once per window. */
  attach(worker: LimitedWorker): void {
    this.worker = worker;
    worker.opts.limiter = this.limiter();
    this.timer ??= setInterval(() => void this.tick(), this.deps.windowMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  observe(info: Pick<ResponseInfo, 'status' | 'ms'>): void {
    if (info.status === 429) {
      this.throttled++;
      return;
    }
    this.answers++;
    if (this.latencies.length < LATENCY_SAMPLE) this.latencies.push(info.ms);
    else this.latencies[this.answers % LATENCY_SAMPLE] = info.ms;
  }

  /** One window: decide, share, apply. Exposed for tests; the timer calls it. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const window = {
        answers: this.answers,
        throttled: this.throttled,
        allowed: (this.state.rate * (this.deps.windowMs ?? 1000)) / 1000,
        ...(this.latencies.length ? { medianMs: median(this.latencies) } : {}),
      };
      this.answers = 0;
      this.throttled = 0;
      this.latencies = [];
      const base = this.state.rate;
      const decision = nextRate(this.state, window, this.deps.limits);
      // Another replica may have learned something since: the shared rate wins over a rise of ours.
      const shared = await this.deps.store.apply(base, decision.state).catch(() => decision.state);
      this.state = { ...decision.state, ...shared };
      if (this.worker) this.worker.opts.limiter = this.limiter();
      this.deps.onRate?.(this.state.rate);
      this.logChange(decision.reason);
    } finally {
      this.ticking = false;
    }
  }

  private logChange(reason: string): void {
    const rate = this.state.rate;
    if (rate < this.loggedRate) this.deps.log.info({ rate: round(rate), was: round(this.loggedRate) }, `request rate lowered to ${round(rate)}/s: ${reason}`);
    else if (rate >= this.loggedRate * 1.25)
      this.deps.log.info({ rate: round(rate), was: round(this.loggedRate) }, `request rate raised to ${round(rate)}/s: ${reason}`);
    else return;
    this.loggedRate = rate;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function round(rate: number): number {
  return Math.round(rate * 10) / 10;
}
