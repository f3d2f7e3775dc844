/** Manifest GETs by tag and by digest and HEADs by tag from filled mirrors, under closed-loop load. */
import { load } from '../lib/clients.js';
import { both } from '../lib/compare.js';
import type { Mirror, Who } from '../lib/mirrors.js';

export async function warmManifestCases(warm: Record<Who, Mirror>, indexDigest: string): Promise<void> {
  await both('warm manifest GET by tag, 32 connections', 'req/s', 'higher', '≥ 10', (who) => load(warm[who], '/v2/bench/multi/manifests/v1', 'GET'));
  await both('warm manifest GET by digest, 32 connections', 'req/s', 'higher', '≥ 1.5', (who) => load(warm[who], `/v2/bench/multi/manifests/${indexDigest}`, 'GET'));
  await both('warm manifest HEAD by tag, 32 connections', 'req/s', 'higher', '≥ 10', (who) => load(warm[who], '/v2/bench/multi/manifests/v1', 'HEAD'));
}
