/** Reading audit.file back: filtering records and laying them out as a table. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { formatBytes, formatTable } from './format.js';
import { UsageError } from './usage-error.js';

/** One line of the audit log, as written by logging/audit-log.ts (read loosely: older lines may lack fields). */
export interface AuditLine {
  time: string;
  audit: string;
  [field: string]: unknown;
}

export interface AuditFilter {
  /** Epoch ms: only records at or after. */
  since?: number;
  image?: string;
  user?: string;
}

export async function readAudit(file: string, filter: AuditFilter): Promise<{ records: AuditLine[]; skipped: number }> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read the audit log ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const matches = imageMatcher(filter.image);
  const records: AuditLine[] = [];
  let skipped = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    if (text.trim() === '') continue;
    let r: unknown;
    try {
      r = JSON.parse(text);
    } catch {
      skipped++;
      continue;
    }
    if (!isAuditLine(r)) {
      skipped++;
      continue;
    }
    if (filter.since !== undefined && !(Date.parse(r.time) >= filter.since)) continue;
    if (filter.user !== undefined && r.user !== filter.user) continue;
    if (matches && !matches(r)) continue;
    records.push(r);
  }
  return { records, skipped };
}

function isAuditLine(r: unknown): r is AuditLine {
  return typeof r === 'object' && r !== null && typeof (r as AuditLine).audit === 'string' && typeof (r as AuditLine).time === 'string';
}

/**
 * NAME matches the name as asked or as stored (a one-word name also as library/NAME, Docker
 * Hub's spelling); NAME:tag and NAME@digest also need the reference or digest.
 */
function imageMatcher(image: string | undefined): ((r: AuditLine) => boolean) | undefined {
  if (image === undefined) return undefined;
  let name = image;
  let ref: string | undefined;
  const at = image.indexOf('@');
  if (at >= 0) {
    name = image.slice(0, at);
    ref = image.slice(at + 1);
  } else {
    const colon = image.lastIndexOf(':');
    if (colon > image.lastIndexOf('/')) {
      name = image.slice(0, colon);
      ref = image.slice(colon + 1);
    }
  }
  const names = new Set([name, ...(name.includes('/') ? [] : [`library/${name}`])]);
  return (r) => {
    const named = [r.name, r.stored].some((n) => typeof n === 'string' && names.has(n));
    if (!named) return false;
    if (ref === undefined) return true;
    return [r.reference, r.digest, r.tag, r.from, r.to].includes(ref);
  };
}

const short = (d: unknown) => (typeof d === 'string' ? d.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1') : '');
const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

/** The image column: the stored name with its reference. */
function image(r: AuditLine): string {
  const stored = str(r.stored);
  const ref = str(r.reference ?? r.tag);
  if (!ref) return stored;
  return ref.includes(':') ? `${stored}@${short(ref)}` : `${stored}:${ref}`;
}

function detail(r: AuditLine): string {
  const asked = typeof r.name === 'string' && r.name !== r.stored ? `asked as ${r.name}${typeof r.ns === 'string' ? `?ns=${r.ns}` : ''}` : '';
  const parts: string[] = [];
  switch (r.audit) {
    case 'pull':
      parts.push(r.status === 403 ? `denied: ${str(r.reason)}` : `${str(r.cache) || 'served'}${r.status === 304 ? ' (not modified)' : ''}`);
      break;
    case 'delete':
      parts.push(str(r.kind));
      break;
    case 'tag-moved':
      parts.push(`from ${short(r.from)} (upstream ${str(r.upstream)})`);
      break;
    case 'import':
    case 'freeze': {
      const images = Array.isArray(r.images) ? r.images.length : 0;
      parts.push(`${str(r.bundle)}, ${images} images, SHA256SUMS ${short(r.sums)}`);
      if (Array.isArray(r.forced) && r.forced.length) parts.push(`forced past the lists: ${r.forced.join(', ')}`);
      if (typeof r.signer === 'string') parts.push(`signed by ${r.signer}`);
      break;
    }
    case 'load':
      parts.push(`${Array.isArray(r.archives) ? r.archives.map(str).join(', ') : ''}: ${Array.isArray(r.images) ? r.images.map(str).join(', ') : ''}`);
      if (Array.isArray(r.forced) && r.forced.length) parts.push(`forced past the lists: ${r.forced.join(', ')}`);
      break;
    case 'remove':
      parts.push(`${str(r.by)} ${str(r.kind)}${typeof r.bytes === 'number' ? `, ${formatBytes(r.bytes)}` : ''}`);
      break;
    case 'login-failed':
      parts.push(str(r.reason));
      break;
    case 'reload':
      parts.push(str(r.outcome));
      if (typeof r.error === 'string') parts.push(r.error);
      if (Array.isArray(r.restart) && r.restart.length) parts.push(`restart needed for ${r.restart.join(', ')}`);
      break;
  }
  if (asked) parts.push(asked);
  return parts.filter(Boolean).join('; ');
}

/** Client-chosen text (a failed login's user name) never drives the operator's terminal. */
function printable(cell: string): string {
  // eslint-disable-next-line no-control-regex
  return cell.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function auditTable(records: AuditLine[]): string {
  const rows = records.map((r) => [
    r.time.replace(/\.\d{3}Z$/, 'Z'),
    r.audit,
    str(r.user) || (r.address !== undefined ? '-' : ''),
    str(r.address),
    r.audit === 'tag-moved' || r.audit === 'remove' || 'stored' in r ? image(r) : '',
    short(r.audit === 'tag-moved' ? r.to : r.digest),
    detail(r),
  ]);
  return formatTable(['TIME', 'EVENT', 'USER', 'ADDRESS', 'IMAGE', 'DIGEST', 'DETAIL'], rows.map((row) => row.map(printable)));
}
