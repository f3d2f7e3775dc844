/**
 * Fill leases, the objects through which replicas on one bucket agree who fills a blob
 * (mirror/fleet.ts takes and renews them; gc keeps the live ones and the uploads they cover).
 */

/** Who fills a blob, where the others follow it, and until when (epoch ms) nobody may take it over. */
export interface Lease {
  replica: string;
  url: string;
  expires: number;
}

/** The lease's name under `.airlock/fleet/` for the blob with this digest. */
export function leaseName(d: { algorithm: string; hex: string }): string {
  return `leases/${d.algorithm}-${d.hex}`;
}

/** A lease's text as read; undefined when there is none, and a damaged one reads as expired. */
export function parseLease(body: string | undefined): Lease | undefined {
  if (body === undefined) return undefined;
  try {
    const j = JSON.parse(body) as Partial<Lease>;
    if (typeof j.replica === 'string' && typeof j.url === 'string' && typeof j.expires === 'number') return j as Lease;
  } catch {
    // A damaged lease is an expired one.
  }
  return { replica: '', url: '', expires: 0 };
}
