import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand, UploadPartCopyCommand, type CompletedPart } from '@aws-sdk/client-s3';
import type { S3Bucket } from './s3-bucket.js';
import { copySource, copyStep } from './s3-copy.js';

/** One multipart upload: parts in order, then complete (or abort). */
export class MultipartWriter {
  #uploadId: Promise<string> | undefined;
  readonly #parts: CompletedPart[] = [];
  #next = 1;

  constructor(private readonly driver: S3Bucket, readonly key: string) {}

  #id(): Promise<string> {
    this.#uploadId ??= this.driver.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.driver.bucket, Key: this.key }))
      .then((r) => {
        if (!r.UploadId) throw new Error('the object store started a multipart upload without an id');
        return r.UploadId;
      });
    return this.#uploadId;
  }

  /** Uploads a part: the next one in call order, or number `n` (parts running at once). */
  async part(body: Buffer, n?: number): Promise<void> {
    const PartNumber = n ?? this.#next++;
    const UploadId = await this.#id();
    const r = await this.driver.client.send(new UploadPartCommand({ Bucket: this.driver.bucket, Key: this.key, UploadId, PartNumber, Body: body, ContentLength: body.length }));
    this.#parts.push({ PartNumber, ETag: r.ETag });
  }

  async copyPart(fromKey: string, size: number): Promise<void> {
    const source = copySource(this.driver.bucket, fromKey);
    const UploadId = await this.#id();
    const step = copyStep(size);
    for (let at = 0; at < size; at += step) {
      const PartNumber = this.#next++;
      const r = await this.driver.client.send(new UploadPartCopyCommand({
        Bucket: this.driver.bucket, Key: this.key, UploadId, PartNumber, CopySource: source,
        CopySourceRange: `bytes=${at}-${Math.min(size, at + step) - 1}`,
      }));
      this.#parts.push({ PartNumber, ETag: r.CopyPartResult?.ETag });
    }
  }

  get started(): boolean {
    return this.#uploadId !== undefined;
  }

  async complete(): Promise<void> {
    const UploadId = await this.#id();
    const Parts = [...this.#parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    await this.driver.client.send(new CompleteMultipartUploadCommand({ Bucket: this.driver.bucket, Key: this.key, UploadId, MultipartUpload: { Parts } }));
  }

  async abort(): Promise<void> {
    if (!this.#uploadId) return;
    const UploadId = await this.#uploadId.catch(() => undefined);
    if (!UploadId) return;
    await this.driver.client.send(new AbortMultipartUploadCommand({ Bucket: this.driver.bucket, Key: this.key, UploadId })).catch(() => undefined);
  }
}
