import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UpstreamBadResponseError } from '../../../src/oci/errors.js';
import { BlobTransfer } from '../../../src/upstream/blob-transfer.js';
import type { UpstreamClient } from '../../../src/upstream/client.js';

/** An upstream whose blob GET answers with `statusCode` and `headers`, recording the offsets asked for. */
function upstream(statusCode: number, headers: Record<string, string>) {
  const offsets: number[] = [];
  const body = Readable.from([Buffer.from('x')]);
  const client = {
    name: 'example.test',
    stats: { requests: 0, errors: 0, bytes: 0, tokenRequests: 0 },
    getBlob: async (_repo: string, _digest: string, offset = 0) => {
      offsets.push(offset);
      return { statusCode, headers, body };
    },
  };
  return { client, offsets, body, transfer: new BlobTransfer(client as unknown as UpstreamClient, 'library/alpine', 'sha256:00') };
}

describe('BlobTransfer', () => {
  it('takes the size from Content-Length on a 200, starting at 0 whatever offset was asked', async () => {
    const u = upstream(200, { 'content-length': '1000' });
    const r = await u.transfer.open(400);
    expect(u.offsets).toEqual([400]);
    expect(r.start).toBe(0);
    expect(r.total).toBe(1000);
  });

  it('takes the start and the whole size from a 206 Content-Range, the size unknown with *', async () => {
    expect(await upstream(206, { 'content-length': '600', 'content-range': 'bytes 400-999/1000' }).transfer.open(400)).toMatchObject({ start: 400, total: 1000 });
    const unknown = await upstream(206, { 'content-range': 'bytes 400-999/*' }).transfer.open(400);
    expect(unknown.start).toBe(400);
    expect(unknown.total).toBeUndefined();
  });

  it('refuses a 206 without a valid Content-Range and drops its body', async () => {
    const u = upstream(206, { 'content-range': 'bytes */1000' });
    await expect(u.transfer.open(400)).rejects.toBeInstanceOf(UpstreamBadResponseError);
    expect(u.body.destroyed).toBe(true);
  });

  it("counts the blob bytes received in the client's stats", () => {
    const u = upstream(200, {});
    u.transfer.received(123);
    u.transfer.received(7);
    expect(u.client.stats.bytes).toBe(130);
  });
});
