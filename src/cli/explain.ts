import { ConfigError } from '../config/load.js';
import { SourceReadError } from '../connectors/source.js';
import { SyncError } from '../model/failure.js';
import { CliFailure, EXIT } from './exit.js';

/** One sentence a person can act on, for any failure a command meets. */
export function explain(err: unknown): { message: string; exitCode: number } {
  if (err instanceof ConfigError) return { message: err.message, exitCode: EXIT.usage };
  if (err instanceof CliFailure) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof SourceReadError) return { message: `the IdP read failed, nothing was changed: ${err.message}`, exitCode: EXIT.failed };
  if (err instanceof SyncError) {
    const hint =
      err.failureClass === 'unauthorised'
        ? ' (check the TeamViewer script token and its permissions: User management, view/create/edit users, and user groups)'
        : err.failureClass === 'transient'
          ? ' (is the TeamViewer base URL right and reachable?)'
          : '';
    return { message: `TeamViewer: ${err.message}${hint}; nothing was changed`, exitCode: EXIT.failed };
  }
  return { message: err instanceof Error ? err.message : String(err), exitCode: EXIT.failed };
}
