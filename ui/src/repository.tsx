import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { apiUrl, page, request } from './api';
import { Confirm, Loading, mayWrite, Status, TableWrap, useSession } from './components';
import { ago, bytes, shortDigest, when } from './format';
import { useAction, useApi, useTitle, type Action } from './hooks';
import type { Repository } from './types';

interface Pending {
  what: string;
  ref: string;
  label: string;
}

/** Pin or unpin one manifest: kept out of eviction while pinned. */
export function PinButton(props: { name: string; digest: string; pinned: boolean; label: string; action: Action; done: () => void }) {
  const toggle = () =>
    props.action.run(props.pinned ? `Unpin ${props.label}` : `Pin ${props.label}`, async () => {
      if (props.pinned) await request('DELETE', 'pin', { query: { name: props.name, digest: props.digest } });
      else await request('POST', 'pin', { json: { name: props.name, digest: props.digest } });
      props.done();
      return props.pinned ? `Unpinned ${props.label}.` : `Pinned ${props.label}: kept out of eviction.`;
    });
  return (
    <button type="button" aria-pressed={props.pinned} disabled={props.action.busy} onClick={() => void toggle()}>
      {props.pinned ? `Unpin` : `Pin`}
      <span class="visually-hidden"> {props.label}</span>
    </button>
  );
}

function ArchiveLink({ name, tags }: { name: string; tags: string[] }) {
  const [format, setFormat] = useState<'docker' | 'oci'>('docker');
  const href = apiUrl('archive', { image: tags.map((t) => `${name}:${t}`), format });
  return (
    <div class="archive row">
      <label for="archive-format">Format</label>
      <select id="archive-format" value={format} onChange={(e) => setFormat(e.currentTarget.value as 'docker' | 'oci')}>
        <option value="docker">docker load</option>
        <option value="oci">OCI layout</option>
      </select>
      {tags.length > 0 ? (
        <a class="button primary" href={href} download>
          Download {tags.length} {tags.length === 1 ? 'image' : 'images'} as an archive
        </a>
      ) : (
        <span class="muted">Select tags to download them as one archive.</span>
      )}
    </div>
  );
}

export function RepositoryPage() {
  const { query } = useLocation();
  const name = query.name ?? '';
  useTitle(name || 'Repository');
  const { session } = useSession();
  const { data, error, loading, reload } = useApi<Repository>(name ? 'repository' : null, { name });
  const action = useAction();
  const [pending, setPending] = useState<Pending | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const write = mayWrite(session);

  const remove = (p: Pending) =>
    action.run(`Delete ${p.label}`, async () => {
      await request('DELETE', 'image', { query: { name, ref: p.ref } });
      setSelected((s) => new Set([...s].filter((t) => t !== p.ref)));
      reload();
      return `Deleted ${p.label}.`;
    });

  if (!name) return <p>No repository named. <a href={page('repositories')}>All repositories</a>.</p>;
  const toggle = (tag: string, on: boolean) => setSelected((s) => (on ? new Set(s).add(tag) : new Set([...s].filter((t) => t !== tag))));
  const selectedTags = data ? data.tags.map((t) => t.tag).filter((t) => selected.has(t)) : [];
  return (
    <>
      <p class="crumbs">
        <a href={page('repositories')}>Repositories</a> /
      </p>
      <h1 class="break">{name}</h1>
      {!data && <Loading error={error} loading={loading} />}
      {data && (
        <>
          <dl class="facts">
            <div>
              <dt>Source</dt>
              <dd>{data.kind === 'local' ? 'local (pushed here)' : `mirror of ${data.upstream ?? 'an upstream'}`}</dd>
            </div>
            <div>
              <dt>Size</dt>
              <dd>{bytes(data.size)}</dd>
            </div>
            <div>
              <dt>Tags</dt>
              <dd>{data.tags.length}</dd>
            </div>
            {data.pinned && (
              <div>
                <dt>Pinned</dt>
                <dd>yes</dd>
              </div>
            )}
          </dl>
          <Status action={action} />
          <h2>Tags</h2>
          {data.tags.length === 0 ? (
            <p class="muted">No tags.</p>
          ) : (
            <TableWrap label="Tags">
              <table>
                <thead>
                  <tr>
                    <th scope="col">
                      <span class="visually-hidden">Select</span>
                    </th>
                    <th scope="col">Tag</th>
                    <th scope="col" class="wide-only">
                      Digest
                    </th>
                    <th scope="col" class="num">
                      Size
                    </th>
                    <th scope="col">Last pulled</th>
                    <th scope="col">Pinned</th>
                    {session.canDelete && (
                      <th scope="col">
                        <span class="visually-hidden">Delete</span>
                      </th>
                    )}
                  </tr>
                </thead>
                <tbody>
                  {data.tags.map((t) => (
                    <tr key={t.tag}>
                      <td>
                        <input type="checkbox" aria-label={`Select ${t.tag}`} checked={selected.has(t.tag)} onChange={(e) => toggle(t.tag, e.currentTarget.checked)} />
                      </td>
                      <th scope="row">
                        <a href={page('image', { name, ref: t.tag })}>{t.tag}</a>
                      </th>
                      <td class="wide-only">
                        <code title={t.digest}>{shortDigest(t.digest)}</code>
                      </td>
                      <td class="num">{bytes(t.size)}</td>
                      <td title={when(t.lastPulled)}>{ago(t.lastPulled)}</td>
                      <td>{write ? <PinButton name={name} digest={t.digest} pinned={t.pinned} label={`${name}:${t.tag}`} action={action} done={reload} /> : t.pinned ? 'pinned' : ''}</td>
                      {session.canDelete && (
                        <td>
                          <button type="button" class="danger" disabled={action.busy} aria-label={`Delete tag ${t.tag}`} onClick={() => setPending({ what: 'tag', ref: t.tag, label: `${name}:${t.tag}` })}>
                            Delete
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )}
          {data.tags.length > 0 && <ArchiveLink name={name} tags={selectedTags} />}
          {data.untagged.length > 0 && (
            <>
              <h2>Untagged images</h2>
              <TableWrap label="Untagged images">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Digest</th>
                      <th scope="col" class="num">
                        Size
                      </th>
                      <th scope="col">Last pulled</th>
                      {session.canDelete && (
                        <th scope="col">
                          <span class="visually-hidden">Delete</span>
                        </th>
                      )}
                    </tr>
                  </thead>
                  <tbody>
                    {data.untagged.map((m) => (
                      <tr key={m.digest}>
                        <th scope="row">
                          <a href={page('image', { name, ref: m.digest })}>
                            <code>{shortDigest(m.digest)}</code>
                            <span class="visually-hidden"> {m.digest}</span>
                          </a>
                        </th>
                        <td class="num">{bytes(m.size)}</td>
                        <td title={when(m.lastPulled)}>{ago(m.lastPulled)}</td>
                        {session.canDelete && (
                          <td>
                            <button type="button" class="danger" disabled={action.busy} aria-label={`Delete image ${m.digest}`} onClick={() => setPending({ what: 'image', ref: m.digest, label: `${name}@${shortDigest(m.digest)}` })}>
                              Delete
                            </button>
                          </td>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            </>
          )}
        </>
      )}
      {pending && (
        <Confirm
          title={pending.what === 'tag' ? `Delete tag ${pending.ref}?` : 'Delete this image?'}
          confirm="Delete"
          danger
          onClose={(ok) => {
            const p = pending;
            setPending(null);
            if (ok) void remove(p);
          }}
        >
          <p>
            {pending.what === 'tag'
              ? `The tag ${pending.label} goes; the image stays while another tag or image refers to it, and gc removes what is left.`
              : `The manifest ${pending.label} and the tags pointing at it go.`}
          </p>
        </Confirm>
      )}
    </>
  );
}
