/**
 * The repository list's page, shared by the index (repo-index.ts, in its worker thread) and the
 * serving thread (index-client.ts), which adds the pull figures from the access records it keeps.
 */
import type { MayPull, Repo, RepoPage, RepoQuery } from '../../http/console-service.js';
import type { Access } from '../../storage/access-times.js';

/**
 * The repositories a list is cut from, in name order, as columns: the names and a few typed
 * arrays cross from the index's thread in a millisecond or two, where ten thousand row objects
 * took 15-25 ms to clone and build.
 */
export interface RowTable {
  names: string[];
  images: Uint32Array;
  tags: Uint32Array;
  sizes: Float64Array;
  /** 1: mirrored. */
  mirrored: Uint8Array;
  /** Index into `upstreamNames` plus one; 0: none. */
  upstreams: Uint16Array;
  upstreamNames: string[];
  pinned: Uint8Array;
}

/** A table's columns, sized for `n` rows. */
export function emptyTable(n: number): RowTable {
  return { names: [], images: new Uint32Array(n), tags: new Uint32Array(n), sizes: new Float64Array(n), mirrored: new Uint8Array(n), upstreams: new Uint16Array(n), upstreamNames: [], pinned: new Uint8Array(n) };
}

/** Pull figures by repository name, from the access records. */
export interface PullFigures {
  pulls(name: string): number;
  lastPulled(name: string): number | null;
}

type Records = ReadonlyMap<string, Readonly<Access>> | undefined;

/** The figures of a repository from its images' access records: pulls since the start, and the last one. */
export function pullFigures(records: (name: string) => Records): PullFigures {
  return {
    pulls: (name) => {
      let n = 0;
      for (const r of records(name)?.values() ?? []) n += r.pulls;
      return n;
    },
    lastPulled: (name) => {
      let last: number | null = null;
      for (const r of records(name)?.values() ?? []) if (r.at > (last ?? 0)) last = r.at;
      return last;
    },
  };
}

/**
 * One page of the table's repositories that `may` allows: names are in order already, other
 * keys sort plain numbers (ties by name), and only the page's rows are built.
 */
export function listPage(t: RowTable, query: RepoQuery, may: MayPull, figures: PullFigures): RepoPage {
  const names = t.names;
  const rows: number[] = [];
  for (let i = 0; i < names.length; i++) if (may(names[i]!)) rows.push(i);
  const desc = query.order === 'desc';
  if (query.sort === 'name') {
    if (desc) rows.reverse();
  } else {
    const key = query.sort;
    const value = (i: number): number => (key === 'size' ? t.sizes[i]! : key === 'images' ? t.images[i]! : key === 'pulls' ? figures.pulls(names[i]!) : (figures.lastPulled(names[i]!) ?? -1));
    const v = new Float64Array(names.length);
    for (const i of rows) v[i] = value(i);
    // Stable on the name order (the row numbers) for equal keys.
    rows.sort((a, b) => (v[a] !== v[b] ? (v[a]! < v[b]! ? -1 : 1) * (desc ? -1 : 1) : a - b));
  }
  const items = rows.slice(query.offset, query.offset + query.limit).map((i): Repo => {
    const name = names[i]!;
    const up = t.upstreams[i]!;
    return {
      name, kind: t.mirrored[i] ? 'mirror' : 'local', upstream: up === 0 ? null : t.upstreamNames[up - 1]!, images: t.images[i]!, tags: t.tags[i]!, size: t.sizes[i]!,
      lastPulled: figures.lastPulled(name), pulls: figures.pulls(name), pinned: t.pinned[i] === 1,
    };
  });
  return { total: rows.length, offset: query.offset, limit: query.limit, items };
}
