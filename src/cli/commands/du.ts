import { configOption, defineCommand, noArguments } from '../command.js';
import { formatBytes, formatTable } from '../format.js';

/**
 * `airlock du`: per repository, the bytes its images use, how much of that other repositories
 * share, when it was last pulled, and whether it is pinned.
 */
export const du = defineCommand({
  name: 'du',
  summary: 'what the store holds per repository',
  usage: '[--config FILE]',
  options: { config: configOption },
  async run(values, positionals) {
    noArguments('du', positionals);
    return run(values.config);
  },
});

async function run(configFile: string): Promise<number> {
  const [{ openOfflineJobs }, { scanStore }] = await Promise.all([import('../../app/offline-jobs.js'), import('../../jobs/evict.js')]);
  const jobs = await openOfflineJobs(configFile);
  const access = await jobs.accessTimes();
  const scan = await scanStore(jobs.store, access);
  await jobs.close();
  const repos = new Map<string, Set<string>>();
  for (const u of scan.units) {
    const s = repos.get(u.repo) ?? new Set<string>();
    for (const b of u.blobs) s.add(b);
    repos.set(u.repo, s);
  }
  const users = new Map<string, number>();
  for (const s of repos.values()) for (const b of s) users.set(b, (users.get(b) ?? 0) + 1);
  const rows = [...repos].map(([repo, blobs]) => {
    let size = 0;
    let shared = 0;
    for (const b of blobs) {
      const n = scan.sizes.get(b) ?? 0;
      size += n;
      if ((users.get(b) ?? 0) > 1) shared += n;
    }
    const units = scan.units.filter((u) => u.repo === repo);
    const last = Math.max(0, ...units.map((u) => u.lastAccess));
    return { repo, size, shared, images: units.length, last, pinned: units.some((u) => u.pinned) };
  });
  rows.sort((a, b) => b.size - a.size || (a.repo < b.repo ? -1 : 1));
  process.stdout.write(
    formatTable(
      ['repository', 'images', 'size', 'shared', 'last pulled', 'pinned'],
      rows.map((r) => [r.repo, String(r.images), formatBytes(r.size), formatBytes(r.shared), r.last ? new Date(r.last).toISOString().replace(/\.\d+Z$/, 'Z') : '-', r.pinned ? 'yes' : 'no']),
    ),
  );
  process.stdout.write(`store: ${formatBytes(scan.totalBytes)} in ${scan.sizes.size} blobs, ${scan.units.length} images in ${rows.length} repositories\n`);
  return 0;
}
