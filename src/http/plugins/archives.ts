/**
 * Image archives over HTTP, for the console and scripts: a streamed download of images as one
 * archive `docker load` reads (`GET <ui.path>/api/archive?image=…`), and an upload of an archive
 * (`POST <ui.path>/api/archive`, the `airlock load` of a file). Under the registry's own rules: a
 * download needs pull on each image's stored repository (and the allow and deny lists); an
 * upload needs push on every name the archive would write, and only names a push could create
 * (local: push.repositories), judged on the stored names before anything is published.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../logging/audit-log.js';
import type { ImageSource } from '../../mirror/image-source.js';
import { imageTarget } from '../../mirror/router.js';
import { DeniedError, NameInvalidError, UnsupportedError } from '../../oci/errors.js';
import { parseImageReference, type ManifestReference } from '../../oci/reference.js';

/** Under the console's API prefix (plugins/ui.ts registers this plugin there). */
export const ARCHIVE_ROUTE = '/archive';
const MAX_IMAGES = 100;
/**
 * What an upload must declare. Never a type a cross-site page may send without a CORS preflight
 * (text/plain, a form's): with one of those, a page the operator visits could load an archive
 * using the credentials the browser holds for this registry.
 */
const UPLOAD_TYPES = new Set(['application/x-tar', 'application/gzip', 'application/x-gzip', 'application/octet-stream']);

export interface ArchiveImage {
  storeName: string;
  ref: ManifestReference;
  /** As the client wrote it: the name written into the archive. */
  label: string;
}

export interface ArchiveService {
  /**
   * The images as one archive: resolves (rejecting with a 404 OciError for an image the store
   * lacks) before the first byte, so a refusal is a clean error; then the stream.
   */
  save(images: ArchiveImage[], opts: { format: 'docker' | 'oci'; platform?: string }): Promise<Readable>;
  /** Loads the archive at `file`; `authorize` sees every stored name before anything is published. */
  load(file: string, opts: { name?: string; authorize(images: ReadonlyArray<{ name: string; tag: string }>): Promise<void> }): Promise<{ images: Array<{ name: string; tag: string; digest: string }>; forced: string[] }>;
  /** Where uploads are spooled before they are read (beside the store's own temp files). */
  spoolDir(): Promise<string>;
  /** The most bytes an upload may spool (storage.maxSize); unset: no bound. */
  maxUpload?: number;
}

export interface ArchivesOptions {
  registry: ImageSource;
  archives: ArchiveService;
  /** Set when the store is read-only: uploads are refused with it (405 UNSUPPORTED). */
  readOnly?: string;
  audit?: AuditLog;
  /** The default registry, for names without one (defaultUpstream). */
  defaultRegistry: string;
}

/** A malformed request: 400 with code UNSUPPORTED (error-handler.ts). */
function bad(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

function actor(request: FastifyRequest): { user?: string; address: string } {
  return { ...(request.user !== undefined ? { user: request.user } : {}), address: request.ip };
}

function queryList(request: FastifyRequest, key: string): string[] {
  const v = (request.query as Record<string, string | string[] | undefined>)[key];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export const archives: FastifyPluginCallback<ArchivesOptions> = function archives(app, { registry, archives: service, readOnly, defaultRegistry, audit }, next) {
  app.get(ARCHIVE_ROUTE, async (request, reply) => {
    request.endpoint = 'archive';
    await app.auth.identify(request, 'log in to download images', true);
    const wanted = queryList(request, 'image');
    const [format = 'docker'] = queryList(request, 'format');
    const [platform] = queryList(request, 'platform');
    if (wanted.length === 0) throw bad('name the images: ?image=alpine:3.20&image=…');
    if (wanted.length > MAX_IMAGES) throw bad(`at most ${MAX_IMAGES} images in one archive`);
    if (format !== 'docker' && format !== 'oci') throw bad(`format is docker or oci, not ${JSON.stringify(format)}`);
    const images: ArchiveImage[] = [];
    for (const label of wanted) {
      let r;
      try {
        r = parseImageReference(label, defaultRegistry);
      } catch (e) {
        throw new NameInvalidError(`invalid image reference ${JSON.stringify(label)}: ${(e as Error).message}`);
      }
      // Judged on the stored name, as a pull of the same reference is.
      const repository = await registry.resolve(imageTarget(r, defaultRegistry));
      registry.admit(repository);
      if (!app.auth.mayPull(request, repository.storeName)) throw new DeniedError(`you may not pull ${repository.storeName}`);
      images.push({ storeName: repository.storeName, label, ref: r.digest ? { kind: 'digest', digest: r.digest } : { kind: 'tag', tag: r.tag ?? 'latest' } });
    }
    const body = await service.save(images, { format, ...(platform ? { platform } : {}) });
    await audit?.record({ audit: 'save', ...actor(request), images: images.map((i) => i.label), format });
    reply.header('content-type', 'application/x-tar');
    reply.header('content-disposition', `attachment; filename="images-${format}.tar"`);
    reply.header('cache-control', 'no-store');
    return reply.send(body);
  });

  app.post(ARCHIVE_ROUTE, async (request, reply) => {
    request.endpoint = 'archive';
    await app.auth.identify(request, 'log in to upload images', false);
    if (readOnly) throw new UnsupportedError(readOnly);
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!UPLOAD_TYPES.has(type)) throw Object.assign(new Error(`send the archive as Content-Type: application/x-tar (or application/gzip), not ${JSON.stringify(type || 'none')}`), { statusCode: 415 });
    if (!request.body) throw bad('send the archive as the request body');
    const [name] = queryList(request, 'name');
    const max = service.maxUpload;
    const tooLarge = () => Object.assign(new Error(`the upload is larger than ${max} bytes, the store's limit (storage.maxSize)`), { statusCode: 413 });
    if (max !== undefined && Number(request.headers['content-length'] ?? 0) > max) throw tooLarge();
    const spool = path.join(await service.spoolDir(), `upload-${randomBytes(8).toString('hex')}.tar`);
    try {
      let n = 0;
      // Counted as it spools: a body without a length must not fill the disk either.
      const bounded = new Transform({
        transform(chunk: Buffer, _enc, done) {
          n += chunk.length;
          if (max !== undefined && n > max) done(tooLarge());
          else done(null, chunk);
        },
      });
      await pipeline(request.body as Readable, bounded, createWriteStream(spool, { flags: 'wx' }));
      const r = await service.load(spool, {
        ...(name ? { name } : {}),
        authorize: async (loaded) => {
          for (const img of loaded) {
            // Only names a push could create, with the pusher's rights: an upload must not make a
            // mirrored repository local, which would shadow the upstream for every client.
            const repository = await registry.resolve({ name: img.name }, { create: true });
            if (!repository.local || repository.storeName !== img.name) throw new DeniedError(`${img.name} is mirrored from an upstream; archives load only into names pushes go to (push.repositories)`);
            if (!app.auth.mayPush(request, img.name)) throw new DeniedError(`you may not push to ${img.name}`);
          }
        },
      });
      await audit?.record({ audit: 'load', ...actor(request), archives: ['(upload)'], images: r.images.map((i) => `${i.name}:${i.tag}`), forced: r.forced });
      reply.code(201);
      return { images: r.images };
    } finally {
      await rm(spool, { force: true });
    }
  });
  next();
};
