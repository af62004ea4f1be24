import { readFile, writeFile } from 'node:fs/promises';
import { TeamViewerEmulator, type EmulatorOptions } from './server.js';
import { emulatorStateSchema } from './store.js';

/**
 * Starts an emulator for the CLI: optional state file in, address printed, and on SIGINT or
 * SIGTERM it stops and writes its state out when asked to.
 */
export async function runEmulator(
  opts: EmulatorOptions & { port: number; host: string; stateFile?: string; dumpOnExit?: string },
  log: (line: string) => void,
): Promise<TeamViewerEmulator> {
  const { port, host, stateFile, dumpOnExit, ...options } = opts;
  const emulator = new TeamViewerEmulator(options);
  if (stateFile !== undefined) {
    emulator.load(emulatorStateSchema.parse(JSON.parse(await readFile(stateFile, 'utf8'))));
    log(`loaded state from ${stateFile}`);
  }
  const address = await emulator.start(port, host);
  log(`TeamViewer emulator listening: SCIM ${address.baseUrl}, Web API ${address.webApiBaseUrl}`);
  const shutdown = (signal: NodeJS.Signals): void => {
    process.off('SIGINT', shutdown);
    process.off('SIGTERM', shutdown);
    log(`${signal}: stopping the emulator`);
    void (async () => {
      await emulator.stop();
      if (dumpOnExit !== undefined) {
        await writeFile(dumpOnExit, `${JSON.stringify(emulator.dump(), null, 2)}\n`);
        log(`state written to ${dumpOnExit}`);
      }
    })().catch((err: unknown) => log(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  return emulator;
}
