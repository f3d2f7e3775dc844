/**
 * Audit lines (audit.file) for image-level requests: manifest pulls, pushes and deletes. Written
 * from onSend: it runs before the first byte of any answer (a handler's or the error handler's),
 * so the line is written before the response ends.
 */
import type { AuditLog } from '../../logging/audit-log.js';
import { unencapsulated } from './unencapsulated.js';

export interface AuditOptions {
  audit: AuditLog;
}

export const audit = unencapsulated<AuditOptions>(function audit(app, { audit: log }, next) {
  app.addHook('onSend', async (request, reply, payload) => {
    const status = reply.statusCode;
    const ep = request.asked?.ep;
    if (!ep || (ep.kind !== 'manifest' && ep.kind !== 'blob')) return payload;
    const stored = request.asked?.repository?.storeName;
    const ns = (request.query as { ns?: unknown } | undefined)?.ns;
    const who = {
      ...(request.user !== undefined ? { user: request.user } : {}),
      address: request.ip,
      name: ep.name,
      ...(typeof ns === 'string' ? { ns } : {}),
      stored: stored ?? ep.name,
    };
    const digest = reply.getHeader('docker-content-digest');
    if (ep.kind === 'manifest' && request.method === 'GET' && (status < 300 || status === 304 || status === 403)) {
      await log.record({
        audit: 'pull', ...who, reference: ep.reference, status,
        ...(typeof digest === 'string' ? { digest } : {}),
        ...(request.cacheOutcome ? { cache: request.cacheOutcome } : {}),
        ...(status === 403 ? { reason: errorMessage(payload) } : {}),
      });
    } else if (ep.kind === 'manifest' && request.method === 'PUT' && status === 201 && typeof digest === 'string') {
      await log.record({ audit: 'push', ...who, reference: ep.reference, digest });
    } else if (request.method === 'DELETE' && status === 202) {
      const reference = ep.kind === 'manifest' ? ep.reference : ep.digest;
      const kind = ep.kind === 'blob' ? 'blob' : reference.includes(':') ? 'manifest' : 'tag';
      await log.record({ audit: 'delete', ...who, kind, reference });
    }
    return payload;
  });
  next();
});

/** The message of an OCI error body, for the audit line of a refusal. */
function errorMessage(payload: unknown): string | undefined {
  if (typeof payload !== 'string') return undefined;
  try {
    const m = (JSON.parse(payload) as { errors?: Array<{ message?: unknown }> }).errors?.[0]?.message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}
