// `etcdesk-node`: etcd's command line. Flags and ETCD_* variables as etcd
// 3.4 (unknown flag or bad value: etcd's message and exit 2).
import { StorageError } from '../backend/storage-error';
import { FlagError, parseArgs, usage } from '../cluster';
import { createLogger } from '../support/logger';
import { CLUSTER_VERSION, SERVER_VERSION } from './http-endpoints';
import { startIdleGc } from './idle-gc';
import { snapshotCommand } from './snapshot-restore';
import { startNode, type RunningNode } from './start';

export const ETCDESK_VERSION = '0.1.0';

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'snapshot') return snapshotCommand(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs(argv, env);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`${e.message}\n${usage()}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  if (parsed.version) {
    process.stdout.write(`etcd Version: ${SERVER_VERSION}\nEtcdesk Version: ${ETCDESK_VERSION}\nAPI Version: ${CLUSTER_VERSION.slice(0, 3)}\nNode Version: ${process.version}\n`);
    return 0;
  }
  const log = createLogger(parsed.config.logLevel);
  for (const w of parsed.warnings) log.warn(w);
  let running: RunningNode;
  try {
    running = await startNode(parsed.config, { logger: log });
  } catch (e) {
    if (e instanceof StorageError) fatal('failed to start', e);
    else log.error('failed to start', { error: (e as Error).message });
    return 1;
  }
  // the CLI owns its process, so it may tune the process's GC (an embedding app keeps its own policy)
  const idleGc =
    env.ETCDESK_IDLE_GC === '0'
      ? undefined
      : startIdleGc({
          onCollect: (r) => log.debug('idle full GC', { took: `${r.ms.toFixed(0)}ms`, heap_before: r.heapBefore, heap_after: r.heapAfter }),
          onTrimYoung: (r) => log.debug('idle young-generation trim', { before: r.before, after: r.after }),
        });
  void running.closed.then(() => idleGc?.stop());
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('received signal; shutting down', { signal: sig });
      running.stop().then(
        () => resolve(running.node.fatalError ? 1 : 0),
        () => resolve(1),
      );
    };
    void running.closed.then(() => {
      const failure = running.node.fatalError;
      if (failure) {
        // etcd's lg.Fatal: the line, then a non-zero exit
        fatal('storage failed; member stopped', failure);
        resolve(1);
      } else if (!stopping) {
        log.warn('member closed (removed from the cluster); exiting');
        resolve(0);
      }
    });
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}

/** etcd's zap fatal line (the Logger has no fatal level: nothing but the CLI may end the process). */
function fatal(msg: string, e: StorageError): void {
  process.stderr.write(JSON.stringify({ level: 'fatal', ts: new Date().toISOString(), msg, error: e.message, path: e.path }) + '\n');
}
