/**
 * A seeded airlock for the web console's browser tests and the README screenshots: a real
 * upstream (Distribution behind the counting proxy), logins from an htpasswd file with rules (an
 * admin with pull/push/delete everywhere, a viewer limited to library/** and team/**), deletes
 * on, and images that got into the store the way they do on a site: pulled through airlock and
 * pushed into a local name by skopeo.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startAirlock, type RunningAirlock } from './airlock.js';
import { generateImage, generateIndex, type GeneratedImage } from './images.js';
import { skopeoCopy } from './skopeo.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from './upstream.js';

export const ADMIN = { user: 'admin', password: 'admin-pw' } as const;
export const VIEWER = { user: 'viewer', password: 'viewer-pw' } as const;
export const basic = (u: { user: string; password: string }) => `Basic ${Buffer.from(`${u.user}:${u.password}`).toString('base64')}`;

/** Images every site has; `more` adds tool (a ghcr.io index) and web. */
export type SiteImages = Record<'app' | 'vault' | 'big' | 'local', GeneratedImage> & Partial<Record<'tool' | 'web', GeneratedImage>>;

export interface ConsoleSite {
  work: string;
  root: string;
  up: TestUpstream;
  airlock: RunningAirlock;
  img: SiteImages;
  /** skopeo copy of `ref` (a docker:// reference through airlock) into a dir: layout, as `who`. */
  pull(ref: string, who?: { user: string; password: string }): Promise<void>;
  stop(): Promise<void>;
}

export interface SiteOptions {
  /** Size of the layer of library/big, left cold for a fill to watch (default 8 MiB). */
  bigLayer?: number;
  /** Also pull a multi-platform ghcr.io image and a second docker.io one (for screenshots). */
  more?: boolean;
  /** log.level (default warn); at info every request is logged, with its status (RunningAirlock.logs). */
  logLevel?: 'warn' | 'info';
  /** Extra lines of mirror.yml. */
  extra?: string[];
}

export async function startConsoleSite(opts: SiteOptions = {}): Promise<ConsoleSite> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'airlock-console-'));
  const root = path.join(work, 'store');
  let up: TestUpstream | undefined;
  let airlock: RunningAirlock | undefined;
  try {
    // bcrypt cost 4: logins are checked on every Basic request; the tests make many.
    await writeFile(path.join(work, 'htpasswd'), [ADMIN, VIEWER].map((u) => `${u.user}:${bcrypt.hashSync(u.password, 4)}`).join('\n') + '\n');
    up = await startTestUpstream();
    const g = (name: string) => path.join(work, `g-${name}`);
    const img = {} as SiteImages;
    img.app = await generateImage(g('app'), { layers: 2, layerSize: 300_000, format: 'docker', tag: '1.0' });
    img.vault = await generateImage(g('vault'), { layers: 1, layerSize: 100_000, format: 'oci', tag: '1' });
    img.big = await generateImage(g('big'), { layers: 1, layerSize: opts.bigLayer ?? 8 << 20, format: 'oci', tag: '1' });
    img.local = await generateImage(g('local'), { layers: 1, layerSize: 150_000, format: 'oci', tag: '1' });
    await up.push(img.app, 'library/app', '1.0');
    await up.push(img.vault, 'secret/vault', '1');
    await up.push(img.big, 'library/big', '1');
    if (opts.more) {
      const tool = await generateIndex(g('tool'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 400_000, format: 'oci', tag: '2.1' });
      const web = await generateImage(g('web'), { layers: 3, layerSize: 500_000, format: 'docker', tag: '1.27' });
      await up.push(tool, 'org/tool', '2.1');
      await up.push(web, 'library/web', '1.27');
      Object.assign(img, { tool, web });
    }
    const yml = [
      `storage:\n  root: ${root}\n  delete:\n    enabled: true`,
      `log:\n  level: ${opts.logLevel ?? 'warn'}`,
      `audit:\n  file: ${path.join(work, 'audit.log')}`,
      `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  rules:`,
      `    - users: ["${ADMIN.user}"]\n      actions: [pull, push, delete]`,
      `    - users: ["${VIEWER.user}"]\n      repositories: ["library/**", "team/**"]\n      actions: [pull]`,
      'push:\n  repositories: ["team/**"]',
      mirrorUpstreams(up),
      ...(opts.extra ?? []),
      '',
    ].join('\n');
    await writeFile(path.join(work, 'mirror.yml'), yml);
    airlock = await startAirlock(yml);
    const a = airlock;
    let n = 0;
    const pull = async (ref: string, who: { user: string; password: string } = ADMIN) => {
      await skopeoCopy(ref, `dir:${path.join(work, `pulled-${n++}`)}`, { all: true, srcCreds: `${who.user}:${who.password}` });
    };
    await pull(`docker://${a.host}/library/app:1.0`);
    await pull(`docker://${a.host}/secret/vault:1`);
    // A local name, pushed as a site's CI would: two tags of one image.
    for (const tag of ['1', '2']) await skopeoCopy(img.local.source, `docker://${a.host}/team/app:${tag}`, { destCreds: `${ADMIN.user}:${ADMIN.password}` });
    if (opts.more) {
      await pull(`docker://${a.host}/ghcr.io/org/tool:2.1`);
      await pull(`docker://${a.host}/library/web:1.27`, VIEWER);
      await pull(`docker://${a.host}/library/app:1.0`, VIEWER);
    }
    const u = up;
    return {
      work,
      root,
      up: u,
      airlock: a,
      img,
      pull,
      stop: async () => {
        await a.stop();
        await u.stop();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await airlock?.stop().catch(() => undefined);
    await up?.stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}
