import { useLocation } from 'preact-iso';
import { page } from './api';
import { CopyLine, Loading, mayWrite, Status, TableWrap, useSession } from './components';
import { ago, bytes, count, platformText, shortDigest, when } from './format';
import { useAction, useApi, useTitle } from './hooks';
import { PinButton } from './repository';
import type { Image, ImageConfig } from './types';

/** Artifact types by what people call them. */
function artifactKind(t: string): string {
  if (/cosign\.artifact\.sig|notary\.signature|signature/i.test(t)) return 'Signatures';
  if (/spdx|cyclonedx|sbom|syft/i.test(t)) return 'SBOMs';
  if (/in-toto|attestation|provenance|slsa|sigstore\.bundle|vex/i.test(t)) return 'Attestations';
  return 'Other artifacts';
}

/** A name Kubernetes accepts for the pod and its container. */
function podName(name: string): string {
  const base = name.split('/').pop() ?? 'app';
  return (base.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'app').slice(0, 50);
}

function PullCommands({ image, repository }: { image: string; repository: string }) {
  const { session } = useSession();
  const name = podName(repository);
  // The console over plain HTTP means the registry is too: podman and ctr must be told (docker
  // needs the host under insecure-registries in its daemon.json instead).
  const plain = location.protocol === 'http:';
  const pod = ['apiVersion: v1', 'kind: Pod', 'metadata:', `  name: ${name}`, 'spec:', '  containers:', `    - name: ${name}`, `      image: ${image}`, '      imagePullPolicy: IfNotPresent', ''].join('\n');
  return (
    <section aria-labelledby="pull-h">
      <h2 id="pull-h">Pull it</h2>
      {!session.registry && <p class="muted">The registry's address is not known; replace the host in these commands.</p>}
      {plain && <p class="muted small">This registry answers plain HTTP: docker needs its address under insecure-registries in daemon.json.</p>}
      <h3>docker</h3>
      <CopyLine text={`docker pull ${image}`} label="Copy the docker command" />
      <h3>podman</h3>
      <CopyLine text={`podman pull ${plain ? '--tls-verify=false ' : ''}${image}`} label="Copy the podman command" />
      <h3>containerd (ctr)</h3>
      <CopyLine text={`ctr images pull ${plain ? '--plain-http ' : ''}${image}`} label="Copy the ctr command" />
      <h3>Kubernetes pod</h3>
      <CopyLine text={pod} label="Copy the Kubernetes pod spec" block />
    </section>
  );
}

function Config({ c }: { c: ImageConfig }) {
  const cmdline = (v: string[] | null) => (v && v.length > 0 ? JSON.stringify(v) : '—');
  const labels = Object.entries(c.labels ?? {});
  return (
    <section aria-labelledby="config-h">
      <h2 id="config-h">Configuration</h2>
      <dl class="facts">
        <div>
          <dt>Created</dt>
          <dd>{c.created ?? '—'}</dd>
        </div>
        <div>
          <dt>Platform</dt>
          <dd>{platformText(c)}</dd>
        </div>
        <div>
          <dt>Entrypoint</dt>
          <dd>
            <code>{cmdline(c.entrypoint)}</code>
          </dd>
        </div>
        <div>
          <dt>Command</dt>
          <dd>
            <code>{cmdline(c.cmd)}</code>
          </dd>
        </div>
        <div>
          <dt>User</dt>
          <dd>{c.user || '—'}</dd>
        </div>
        <div>
          <dt>Working directory</dt>
          <dd>{c.workingDir || '—'}</dd>
        </div>
        <div>
          <dt>Config digest</dt>
          <dd>
            <code class="break">{c.digest}</code>
          </dd>
        </div>
      </dl>
      <h3>Environment</h3>
      {c.env.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ul class="plain mono">
          {c.env.map((e) => (
            <li key={e} class="break">
              {e}
            </li>
          ))}
        </ul>
      )}
      <h3>Labels</h3>
      {labels.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <TableWrap label="Labels">
          <table>
            <tbody>
              {labels.map(([k, v]) => (
                <tr key={k}>
                  <th scope="row" class="mono">
                    {k}
                  </th>
                  <td class="break">{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}

function Referrers({ name, groups }: { name: string; groups: Image['referrers'] }) {
  const byKind = new Map<string, { artifactType: string; items: Image['referrers'][number]['items'] }[]>();
  for (const g of groups) byKind.set(artifactKind(g.artifactType), [...(byKind.get(artifactKind(g.artifactType)) ?? []), g]);
  return (
    <section aria-labelledby="referrers-h">
      <h2 id="referrers-h">Referrers</h2>
      {groups.length === 0 && <p class="muted">No signatures, SBOMs or attestations are stored for this image.</p>}
      {[...byKind].map(([kind, gs]) => (
        <div key={kind}>
          <h3>{kind}</h3>
          <ul class="plain">
            {gs.flatMap((g) =>
              g.items.map((r) => (
                <li key={r.digest}>
                  <a href={page('image', { name, ref: r.digest })}>
                    <code>{shortDigest(r.digest)}</code>
                  </a>{' '}
                  <span class="muted small">
                    {g.artifactType} · {bytes(r.size)}
                  </span>
                </li>
              )),
            )}
          </ul>
        </div>
      ))}
    </section>
  );
}

export function ImagePage() {
  const { query } = useLocation();
  const name = query.name ?? '';
  const ref = query.ref ?? '';
  const byDigest = ref.includes(':'); // a tag never has a colon
  const label = byDigest ? `${name}@${shortDigest(ref)}` : `${name}:${ref}`;
  useTitle(label);
  const { session } = useSession();
  const { data, error, loading, reload } = useApi<Image>(name && ref ? 'image' : null, { name, ref });
  const action = useAction();
  if (!name || !ref) return <p>No image named. <a href={page('repositories')}>All repositories</a>.</p>;
  const registry = session.registry || 'airlock.example:5000';
  const pullRef = data ? (byDigest ? `${registry}/${name}@${data.digest}` : `${registry}/${name}:${ref}`) : '';
  return (
    <>
      <p class="crumbs">
        <a href={page('repositories')}>Repositories</a> / <a href={page('repository', { name })}>{name}</a> /
      </p>
      <h1 class="break">{label}</h1>
      {!data && <Loading error={error} loading={loading} />}
      {data && (
        <>
          <section aria-labelledby="digest-h">
            <h2 id="digest-h" class="visually-hidden">
              Digest
            </h2>
            <CopyLine text={data.digest} label="Copy the digest" />
          </section>
          <dl class="facts">
            <div>
              <dt>Kind</dt>
              <dd>{data.kind === 'index' ? `index of ${data.platforms?.length ?? 0} platforms` : 'image manifest'}</dd>
            </div>
            <div>
              <dt>Size</dt>
              <dd>{bytes(data.size)}</dd>
            </div>
            <div>
              <dt>Tags</dt>
              <dd>{data.tags.length ? data.tags.join(', ') : '—'}</dd>
            </div>
            <div>
              <dt>Pulls</dt>
              <dd>{count(data.pulls)}</dd>
            </div>
            <div>
              <dt>Last pulled</dt>
              <dd title={when(data.lastPulled)}>{ago(data.lastPulled)}</dd>
            </div>
            <div>
              <dt>Media type</dt>
              <dd class="break small">{data.mediaType}</dd>
            </div>
          </dl>
          {mayWrite(session) && (
            <p>
              <PinButton name={name} digest={data.digest} pinned={data.pinned} label={label} action={action} done={reload} /> {data.pinned ? 'Pinned: kept out of eviction.' : ''}
            </p>
          )}
          <Status action={action} />
          {data.platforms && (
            <section aria-labelledby="platforms-h">
              <h2 id="platforms-h">Platforms</h2>
              <TableWrap label="Platforms">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Platform</th>
                      <th scope="col">Digest</th>
                      <th scope="col" class="num">
                        Size
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.platforms.map((p) => (
                      <tr key={p.digest}>
                        <th scope="row">
                          <a href={page('image', { name, ref: p.digest })}>{platformText(p.platform)}</a>
                        </th>
                        <td>
                          <code title={p.digest}>{shortDigest(p.digest)}</code>
                        </td>
                        <td class="num">{bytes(p.size)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            </section>
          )}
          {data.layers && (
            <section aria-labelledby="layers-h">
              <h2 id="layers-h">Layers</h2>
              <TableWrap label="Layers">
                <table>
                  <thead>
                    <tr>
                      <th scope="col" class="num">
                        #
                      </th>
                      <th scope="col">Digest</th>
                      <th scope="col" class="wide-only">
                        Media type
                      </th>
                      <th scope="col" class="num">
                        Size
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.layers.map((l, i) => (
                      <tr key={`${i}-${l.digest}`}>
                        <td class="num">{i + 1}</td>
                        <td>
                          <code title={l.digest}>{shortDigest(l.digest)}</code>
                        </td>
                        <td class="small wide-only">{l.mediaType}</td>
                        <td class="num">{bytes(l.size)}</td>
                      </tr>
                    ))}
                  </tbody>
                  <tfoot>
                    <tr>
                      <th scope="row" colSpan={2}>
                        Total
                      </th>
                      <td class="wide-only" />
                      <td class="num">{bytes(data.layers.reduce((a, l) => a + l.size, 0))}</td>
                    </tr>
                  </tfoot>
                </table>
              </TableWrap>
            </section>
          )}
          {data.config && <Config c={data.config} />}
          <Referrers name={name} groups={data.referrers} />
          <PullCommands image={pullRef} repository={name} />
        </>
      )}
    </>
  );
}
