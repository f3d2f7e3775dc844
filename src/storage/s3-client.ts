/** The S3 driver's configuration and its SDK client (the SDK is used for everything but blob bodies). */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface S3DriverConfig {
  /** http(s)://host:port of an S3 API (radosgw, MinIO, AWS); empty for AWS's own. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix of the layout (Distribution's `rootdirectory`), without leading or trailing '/'. */
  prefix: string;
  accessKey?: string;
  secretKey?: string;
  forcePathStyle: boolean;
  /** Multipart part size (≥ 5 MiB). */
  partSize: number;
}

/** The SDK client for a bucket's endpoint and credentials. */
export function createS3Client(config: S3DriverConfig): S3Client {
  // The SDK warns on Node 20 (multi-line, on stderr, at every command) that its releases after
  // January 2027 will need Node 22. package.json pins a release that supports Node 20; the
  // warning is about future upgrades, which the README's dependency table notes.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const keepAlive = { keepAlive: true, maxSockets: 256 };
  return new S3Client({
    endpoint: config.endpoint || undefined,
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    credentials: config.accessKey && config.secretKey ? { accessKeyId: config.accessKey, secretAccessKey: config.secretKey } : undefined,
    // Checksums only where S3 requires them: object stores other than AWS (radosgw, older
    // MinIO) refuse the newer default trailing checksums; digests are verified by airlock.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 4,
    requestHandler: new NodeHttpHandler({ httpAgent: new HttpAgent(keepAlive), httpsAgent: new HttpsAgent(keepAlive), connectionTimeout: 10_000, requestTimeout: 120_000 }),
  });
}
