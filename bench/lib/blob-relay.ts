import { createRequire } from 'node:module';
import { NODE_FLAGS } from '../../test/helpers/cli.js';
import type { Radosgw } from './fleet.js';
import { splitHost, startListening, type RelayProcess } from './relay.js';

const require = createRequire(import.meta.url);

/**
 * The floor under a Node replica of a fleet: a bare HTTP relay in its own process that streams
 * each blob GET from the bucket (a presigned URL, kept per key; undici's body piped into the
 * response, as airlock does) and forwards everything else (manifests, the API root) to a
 * replica. No framework, no access checks, no store logic, no logging: what moving the bytes
 * from the bucket to the client costs Node by itself on this machine, with airlock's Node flags.
 */
export function startBlobRelay(replica: string, gw: Radosgw, bucket: string, prefix: string): Promise<RelayProcess> {
  const [rHost, rPort] = splitHost(replica);
  const script = `
    const http = require('node:http');
    const { Agent, request } = require(${JSON.stringify(require.resolve('undici'))});
    const { S3Client, GetObjectCommand } = require(${JSON.stringify(require.resolve('@aws-sdk/client-s3'))});
    const { getSignedUrl } = require(${JSON.stringify(require.resolve('@aws-sdk/s3-request-presigner'))});
    const s3 = new S3Client({ endpoint: ${JSON.stringify(gw.endpoint)}, region: ${JSON.stringify(gw.region)}, forcePathStyle: true,
      credentials: { accessKeyId: ${JSON.stringify(gw.accessKey)}, secretAccessKey: ${JSON.stringify(gw.secretKey)} } });
    const bodies = new Agent({ keepAliveTimeout: 30000 });
    const forward = new http.Agent({ keepAlive: true });
    const urls = new Map();
    const BLOB = /^\\/v2\\/.+\\/blobs\\/sha256:([a-f0-9]{64})$/;
    const server = http.createServer(async (req, res) => {
      try {
        const m = req.method === 'GET' ? BLOB.exec(req.url) : null;
        if (!m) {
          const p = http.request({ host: ${JSON.stringify(rHost)}, port: ${rPort}, path: req.url, method: req.method, headers: req.headers, agent: forward }, (pr) => {
            res.writeHead(pr.statusCode, pr.headers);
            pr.pipe(res);
          });
          p.on('error', () => res.destroy());
          req.pipe(p);
          return;
        }
        const key = ${JSON.stringify(prefix)} + '/docker/registry/v2/blobs/sha256/' + m[1].slice(0, 2) + '/' + m[1] + '/data';
        let url = urls.get(key);
        if (!url) urls.set(key, (url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: ${JSON.stringify(bucket)}, Key: key }), { expiresIn: 3600 })));
        const r = await request(url, { dispatcher: bodies });
        if (r.statusCode !== 200) {
          r.body.resume();
          res.writeHead(502).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': r.headers['content-length'], 'docker-content-digest': 'sha256:' + m[1] });
        r.body.pipe(res);
      } catch {
        res.destroy();
      }
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  // airlock's own Node flags: the floor under a replica started as the launchers start one.
  return startListening(script, 'the blob relay', { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }, NODE_FLAGS);
}
