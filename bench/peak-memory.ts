import { readFileSync, writeFileSync } from 'node:fs';

/*
 * On Linux the kernel keeps the process's resident high-water mark (VmHWM), and writing 5 to
 * /proc/self/clear_refs resets it: the true peak, even of synchronous work no timer can interrupt
 * (a plan over a million users). Elsewhere RSS is sampled between tasks only.
 */
function highWaterMark(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function resetHighWaterMark(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return highWaterMark() !== undefined;
  } catch {
    return false;
  }
}

/** Samples RSS and heap while a benchmark runs; sampling keeps going while awaited I/O is in flight. */
export class PeakMemory {
  private rss = process.memoryUsage().rss;
  private heap = process.memoryUsage().heapUsed;
  private readonly timer: NodeJS.Timeout;
  private readonly kernelPeak = resetHighWaterMark();

  constructor(intervalMs = 5) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    const m = process.memoryUsage();
    if (m.rss > this.rss) this.rss = m.rss;
    if (m.heapUsed > this.heap) this.heap = m.heapUsed;
  }

  stop(): { rssMb: number; heapMb: number } {
    this.sample();
    clearInterval(this.timer);
    const rss = Math.max(this.rss, (this.kernelPeak && highWaterMark()) || 0);
    return { rssMb: Math.round(rss / 1048576), heapMb: Math.round(this.heap / 1048576) };
  }
}
