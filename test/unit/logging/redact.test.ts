/**
 * Credentials never reach a log line: the logger airlock runs with, writing real lines, read back.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logging/logger.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(l);
        lines.push(JSON.parse(l) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { log: createLogger({ level: 'info', destination: sink }), lines, raw };
}

const SECRET = 'hunter2-s3cr3t';

describe('log redaction', () => {
  it('censors credentials at the top level, nested at any depth, and in any letter case', () => {
    const { log, lines, raw } = capture();
    log.info({ authorization: `Bearer ${SECRET}`, password: SECRET, url: '/v2/x/manifests/latest', status: 401 }, 'top');
    log.info({ upstream: { name: 'hub', request: { headers: { Authorization: `Basic ${SECRET}`, Cookie: SECRET, accept: 'json' } } } }, 'nested');
    log.info({ creds: [{ token: SECRET }, { access_token: SECRET, refresh_token: SECRET }], s3: { accessKey: SECRET, secretKey: SECRET } }, 'arrays');
    expect(raw.join('\n')).not.toContain(SECRET);
    expect(lines[0]).toMatchObject({ authorization: '[redacted]', password: '[redacted]', url: '/v2/x/manifests/latest', status: 401, msg: 'top' });
    expect(lines[1]!.upstream).toEqual({ name: 'hub', request: { headers: { Authorization: '[redacted]', Cookie: '[redacted]', accept: 'json' } } });
    expect(lines[2]!.creds).toEqual([{ token: '[redacted]' }, { access_token: '[redacted]', refresh_token: '[redacted]' }]);
  });

  it("censors a child logger's bindings, and leaves the caller's objects as they were", () => {
    const { log, lines, raw } = capture();
    const headers = { authorization: `Bearer ${SECRET}`, host: 'registry.local' };
    const fields = { headers, attempt: 2 };
    log.child({ reqId: 'req-1', token: SECRET }).info(fields, 'child');
    expect(raw.join('\n')).not.toContain(SECRET);
    expect(lines[0]).toMatchObject({ reqId: 'req-1', token: '[redacted]', headers: { authorization: '[redacted]', host: 'registry.local' }, attempt: 2 });
    expect(headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(fields.headers).toBe(headers);
  });

  it('keeps an error an error (message, stack) while censoring what it carries', () => {
    const { log, lines, raw } = capture();
    const err = Object.assign(new Error('upstream refused the login'), { code: 'DENIED', password: SECRET });
    log.error({ err }, 'failed');
    log.error(err, 'failed as the first argument');
    expect(raw.join('\n')).not.toContain(SECRET);
    for (const line of lines) {
      const e = line.err as Record<string, unknown>;
      expect(e.message).toBe('upstream refused the login');
      expect(e.stack).toMatch(/upstream refused the login\n\s+at /);
      expect(e).toMatchObject({ type: 'Error', code: 'DENIED', password: '[redacted]' });
    }
    expect(err.password).toBe(SECRET);
  });

  it('logs bytes and cyclic objects without walking them forever', () => {
    const { log, lines } = capture();
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    log.info({ body: Buffer.alloc(1 << 20), cyclic }, 'odd shapes');
    expect(lines[0]!.msg).toBe('odd shapes');
    expect((lines[0]!.cyclic as Record<string, unknown>).name).toBe('loop');
  });
});
