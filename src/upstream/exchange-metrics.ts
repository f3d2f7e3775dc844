/**
 * Counts each HTTP exchange with the upstream (each attempt, its redirects included): requests
 * and errors in the client's stats, and the status (or 'error') and time to headers reported for
 * the metrics' histogram.
 */
import type { Step, UpstreamStats } from './step.js';

export type ExchangeReport = (status: number | 'error', seconds: number) => void;

export function exchangeMetrics(stats: UpstreamStats, report: ExchangeReport): Step {
  return (next) => async (req) => {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      stats.requests++;
      const r = await next(req);
      report(r.res.statusCode, seconds());
      return r;
    } catch (e) {
      report('error', seconds());
      stats.errors++;
      throw e;
    }
  };
}
