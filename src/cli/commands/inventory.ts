import { configOption, defineCommand, noArguments } from '../command.js';
import { UsageError } from '../usage-error.js';
import { airlockVersion } from '../../runtime/version.js';

/** `airlock inventory --out FILE`: what this store holds, for `freeze --have` on the connected side. */
export const inventory = defineCommand({
  name: 'inventory',
  summary: "write what the store holds, for the connected side's freeze --have",
  usage: '--out FILE [--sign KEY] [--config FILE]',
  options: {
    config: configOption,
    out: { type: 'string', short: 'o', value: 'FILE', help: 'the inventory to write (atomically; FILE.sig beside it when signed)' },
    sign: { type: 'string', value: 'KEY', help: 'sign it with this private key (airlock keygen)' },
  },
  async run(values, positionals) {
    noArguments('inventory', positionals);
    if (!values.out) throw new UsageError('inventory needs --out FILE');
    const [{ openOfflineJobs }, { writeInventory }, { readSigningKey }, { formatDuration }] = await Promise.all([
      import('../../app/offline-jobs.js'),
      import('../../jobs/inventory.js'),
      import('../../jobs/signature.js'),
      import('../format.js'),
    ]);
    const sign = values.sign === undefined ? undefined : await readSigningKey(values.sign);
    const started = Date.now();
    const jobs = await openOfflineJobs(values.config);
    try {
      const r = await writeInventory(jobs.store, { out: values.out, version: airlockVersion(), sign });
      process.stdout.write(
        `wrote ${r.out}${r.signer ? ` and ${r.out}.sig` : ''}: ${r.blobs} blobs, ${r.repositories} repositories, ${r.tags} tags in ${formatDuration(Date.now() - started)}\n` +
          `inventory ${r.id}${r.signer ? `, signed by ${r.signer}` : ''}\n`,
      );
    } finally {
      await jobs.close();
    }
    return 0;
  },
});
