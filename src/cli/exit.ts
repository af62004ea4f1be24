import type { CycleReport } from '../plan/report.js';

/** Exit codes: 0 done, 1 the work failed (IdP, TeamViewer, Redis), 2 the configuration or the call is wrong, 3 a cycle ran but some operations failed. */
export const EXIT = { ok: 0, failed: 1, usage: 2, partial: 3 } as const;

/** A failure a command reports as it is, with the exit code it ends the process with. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

/** For commands that print cycle reports: 1 if a cycle failed, else 3 if some operations failed, else 0. */
export function exitCodeOf(reports: CycleReport[]): number {
  if (reports.some((r) => r.outcome === 'failed')) return EXIT.failed;
  if (reports.some((r) => r.outcome === 'partial')) return EXIT.partial;
  return EXIT.ok;
}
