import { access, writeFile } from 'node:fs/promises';
import { defineCommand } from '../command.js';
import { UsageError } from '../usage-error.js';

/** `airlock keygen --out NAME`: an ed25519 key pair for signing bundles and inventories. */
export const keygen = defineCommand({
  name: 'keygen',
  summary: 'write an ed25519 key pair for signing bundles',
  usage: '--out NAME',
  options: {
    out: { type: 'string', short: 'o', value: 'NAME', help: 'writes NAME.key (private, mode 0600) and NAME.pub' },
  },
  async run(values, positionals) {
    if (positionals.length) throw new UsageError(`keygen takes no arguments, got "${positionals.join(' ')}"`);
    if (!values.out) throw new UsageError('keygen needs --out NAME (writes NAME.key and NAME.pub)');
    const { generateSigningKey } = await import('../../jobs/signature.js');
    const k = generateSigningKey();
    const write = async (file: string, body: string, mode: number) => {
      try {
        // wx: an existing key is never overwritten (it may be the one the sites trust).
        await writeFile(file, body, { flag: 'wx', mode });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new UsageError(code === 'EEXIST' ? `${file} exists; keygen never overwrites a key` : `cannot write ${file}: ${(e as Error).message}`);
      }
    };
    for (const f of [`${values.out}.key`, `${values.out}.pub`]) if (await exists(f)) throw new UsageError(`${f} exists; keygen never overwrites a key`);
    await write(`${values.out}.key`, k.privatePem, 0o600);
    await write(`${values.out}.pub`, k.publicPem, 0o644);
    process.stdout.write(
      `wrote ${values.out}.key (private: keep it on the connected side) and ${values.out}.pub (copy it to the sites)\n` +
        `key ${k.id}\n`,
    );
    return 0;
  },
});

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}
