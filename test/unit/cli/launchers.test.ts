/** Every shipped way of starting airlock passes the same Node flags (README: memory). */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AIRLOCK_BIN, NODE_FLAGS } from '../../helpers/cli.js';

describe('launchers', () => {
  it('the bin shebang, npm start, the systemd unit and the container all pass the Node flags', async () => {
    const shebang = (await readFile('src/cli/main.ts', 'utf8')).split('\n')[0]!;
    const start = (JSON.parse(await readFile('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
    const unit = (await readFile('systemd/airlock.service', 'utf8')).split('\n').find((l) => l.startsWith('ExecStart='))!;
    const entry = (await readFile('Dockerfile', 'utf8')).split('\n').find((l) => l.startsWith('ENTRYPOINT'))!;
    const flags = NODE_FLAGS.join(' ');
    expect(shebang).toContain(`node ${flags}`);
    expect(start).toContain(`node ${flags} `);
    expect(unit).toContain(`node ${flags} `);
    expect(entry).toContain(`"node", ${NODE_FLAGS.map((f) => `"${f}"`).join(', ')}, `);
    // The shebang is run as env(1) runs it: `env -S` splits the flags off the interpreter.
    expect(shebang.startsWith('#!/usr/bin/env -S node ')).toBe(true);
    const { stdout } = await promisify(execFile)('/usr/bin/env', ['-S', shebang.slice('#!/usr/bin/env -S '.length), AIRLOCK_BIN, '--version']);
    expect(stdout).toMatch(/^airlock \d+\.\d+\.\d+/);
  });
});
