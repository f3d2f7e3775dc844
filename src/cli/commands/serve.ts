import { configOption, defineCommand, noArguments } from '../command.js';

/** A port in use or an address we cannot bind: one clear line. */
class ListenError extends Error {}

/** `airlock serve`: the registry API (and the metrics and fleet ports), until SIGTERM or SIGINT. */
export const serve = defineCommand({
  name: 'serve',
  summary: 'serve the registry API',
  usage: '[--config FILE]',
  options: { config: configOption },
  async run(values, positionals) {
    noArguments('serve', positionals);
    return run(values.config);
  },
});

async function run(configFile: string): Promise<number> {
  // Loaded here, not at the top: `airlock --help` and the other commands do not pay for them.
  const [{ createAirlock }, { loadConfigIsolated: loadConfig }, { createLogger }, { describeStore }] = await Promise.all([
    import('../../app/compose.js'),
    import('../../config/load-isolated.js'),
    import('../../logging/logger.js'),
    import('../../app/store.js'),
  ]);
  const config = await loadConfig(configFile);
  const logger = createLogger({ level: config.log.level });
  const airlock = await createAirlock(config, logger, { serve: true });
  try {
    await airlock.app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new ListenError(`cannot listen on ${config.listen.address}: ${why}`, { cause: e });
  }
  if (airlock.metricsApp && config.metrics.listen) {
    try {
      await airlock.metricsApp.listen({ host: config.metrics.listen.host, port: config.metrics.listen.port });
    } catch (e) {
      await airlock.close();
      throw new ListenError(`cannot listen on ${config.metrics.listen.address} (metrics.listen): ${(e as Error).message}`, { cause: e });
    }
  }
  if (airlock.fleetApp && config.fleet) {
    try {
      await airlock.fleetApp.listen({ host: config.fleet.listen.host, port: config.fleet.listen.port });
    } catch (e) {
      await airlock.close();
      throw new ListenError(`cannot listen on ${config.fleet.listen.address} (fleet.listen): ${(e as Error).message}`, { cause: e });
    }
  }
  logger.info({
    listen: config.listen.address,
    ...describeStore(config).fields,
    ...(config.fleet && airlock.fleetApp ? { fleet: config.fleet.listen.address, advertise: config.fleet.advertise } : {}),
    ...(airlock.readOnly ? { readOnly: true } : {}),
  }, 'airlock serving');
  airlock.startSchedules();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      const deadline = setTimeout(() => {
        logger.warn({ timeoutMs: config.http.shutdownTimeout }, 'shutdown deadline passed; closing remaining connections');
        airlock.app.server.closeAllConnections();
        void airlock.registry.abortFills();
      }, config.http.shutdownTimeout);
      deadline.unref();
      airlock.close().then(
        () => {
          clearTimeout(deadline);
          logger.info('stopped');
          logger.flush();
          resolve(0);
        },
        (e: unknown) => {
          logger.error({ err: e }, 'error while shutting down');
          resolve(1);
        },
      );
    };
    // SIGHUP: new TLS certificate and htpasswd users without dropping a connection; a broken
    // file is refused with one log line and the old ones stay in use.
    // The audit file is reopened first, whatever becomes of the configuration (logrotate).
    const hup = () => {
      airlock.reopenLogs()
        .then(() => loadConfig(configFile))
        .then((next) => airlock.reload(next))
        .then(
          async (restart) => {
            logger.info('configuration reloaded');
            if (restart.length) logger.warn({ keys: restart }, 'these settings changed but need a restart to take effect');
            await airlock.audit?.record({ audit: 'reload', outcome: 'applied', ...(restart.length ? { restart } : {}) });
          },
          async (e: unknown) => {
            logger.error({ err: { message: (e as Error).message } }, 'reload refused; keeping the running configuration');
            await airlock.audit?.record({ audit: 'reload', outcome: 'refused', error: (e as Error).message.split('\n')[0] ?? '' });
          },
        );
    };
    process.on('SIGHUP', hup);
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
