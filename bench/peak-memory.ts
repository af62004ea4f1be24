/** Samples RSS and heap while a benchmark runs; sampling keeps going while awaited I/O is in flight. */
export class PeakMemory {
  private rss = process.memoryUsage().rss;
  private heap = process.memoryUsage().heapUsed;
  private readonly timer: NodeJS.Timeout;

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
    return { rssMb: Math.round(this.rss / 1048576), heapMb: Math.round(this.heap / 1048576) };
  }
}
