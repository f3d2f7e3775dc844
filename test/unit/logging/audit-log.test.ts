import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/logging/audit-log.js';
import { createLogger } from '../../../src/logging/logger.js';

let dir: string;
const logs: Array<Record<string, unknown>> = [];
const logger = createLogger({
  level: 'info',
  destination: new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  }),
});

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'audit-unit-'));
  logs.length = 0;
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const read = async (f: string) => (await readFile(f, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('AuditLog', () => {
  it('writes every concurrent record as one whole line, in order, each resolved once written', async () => {
    const file = path.join(dir, 'sub', 'audit.log');
    const audit = await AuditLog.open(file, logger);
    await Promise.all(Array.from({ length: 200 }, (_, i) => audit.record({ audit: 'login-failed', user: `u${i}`, address: '127.0.0.1', reason: 'x'.repeat(i) })));
    const got = await read(file);
    expect(got.map((l) => l.user)).toEqual(Array.from({ length: 200 }, (_, i) => `u${i}`));
    expect(got.every((l) => typeof l.time === 'string' && l.audit === 'login-failed')).toBe(true);
    await audit.close();
  });

  it('reopens by name after a rename: older lines stay in the renamed file, newer go to a new one', async () => {
    const file = path.join(dir, 'audit.log');
    const audit = await AuditLog.open(file, logger);
    await audit.record({ audit: 'reload', outcome: 'applied' });
    await rename(file, `${file}.1`);
    await audit.reopen();
    await audit.record({ audit: 'reload', outcome: 'refused', error: 'e' });
    expect((await read(`${file}.1`)).map((l) => l.outcome)).toEqual(['applied']);
    expect((await read(file)).map((l) => l.outcome)).toEqual(['refused']);
    await audit.close();
  });

  it('keeps serving when the audit disk is full: counts, logs one error, resolves', async () => {
    let errors = 0;
    const audit = await AuditLog.open('/dev/full', logger, () => errors++);
    await audit.record({ audit: 'reload', outcome: 'applied' });
    await audit.record({ audit: 'reload', outcome: 'applied' });
    expect(errors).toBe(2);
    expect(logs.filter((l) => l.msg === 'could not write the audit log')).toHaveLength(1);
    await audit.close();
  });

  it('refuses a file it cannot open with one line naming it', async () => {
    await expect(AuditLog.open(path.join('/proc', 'audit.log'), logger)).rejects.toThrow(/^audit\.file: cannot open \/proc\/audit\.log: /);
  });
});
