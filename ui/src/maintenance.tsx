import { useState } from 'preact/hooks';
import { page, request } from './api';
import { Confirm, Loading, mayWrite, Report, Status, TableWrap, useSession } from './components';
import { ago, when } from './format';
import { useAction, useApi, useInterval, useTitle } from './hooks';
import { Evictions } from './overview';
import type { LoadedImages, Maintenance } from './types';

function Gc({ m, reload }: { m: Maintenance; reload: () => void }) {
  const { session } = useSession();
  const action = useAction();
  const [dry, setDry] = useState<unknown>(undefined);
  const [confirming, setConfirming] = useState(false);
  const run = (dryRun: boolean) =>
    action.run(dryRun ? 'gc dry run' : 'gc', async () => {
      const r = await request<{ report: unknown }>('POST', 'gc', { json: { dryRun } });
      if (dryRun) setDry(r?.report ?? null);
      else setDry(undefined);
      reload();
      return dryRun ? 'Dry run done: nothing was removed. The report is below.' : 'gc done.';
    });
  const last = m.gc.last;
  return (
    <section aria-labelledby="gc-h">
      <h2 id="gc-h">Garbage collection</h2>
      <p>Removes blobs no image refers to any more. A dry run reports what would go and removes nothing.</p>
      {session.canAdminister && (
        <p class="row">
          <button type="button" disabled={action.busy || m.gc.running} onClick={() => void run(true)}>
            Dry run
          </button>
          <button type="button" class="danger" disabled={action.busy || m.gc.running || session.readOnly || dry === undefined} onClick={() => setConfirming(true)}>
            Run gc
          </button>
          {dry === undefined && <span class="muted small">Run gc after a dry run.</span>}
          {m.gc.running && <span class="muted">gc is running.</span>}
        </p>
      )}
      <Status action={action} />
      {dry !== undefined && (
        <>
          <h3>Dry run report</h3>
          <Report value={dry} />
        </>
      )}
      {last && (
        <>
          <h3>
            Last {last.dryRun ? 'dry run' : 'run'}, <span title={when(last.at)}>{ago(last.at)}</span>
          </h3>
          <Report value={last.report} />
        </>
      )}
      {confirming && (
        <Confirm title="Run gc?" confirm="Run gc" danger onClose={(ok) => (setConfirming(false), ok && void run(false))}>
          <p>Blobs no image refers to are deleted from the store. This cannot be undone.</p>
        </Confirm>
      )}
    </section>
  );
}

function Verify({ m, reload }: { m: Maintenance; reload: () => void }) {
  const { session } = useSession();
  const action = useAction();
  const run = () =>
    action.run('Verify', async () => {
      await request('POST', 'verify');
      reload();
      return 'Verifying the store in the background; the results appear here.';
    });
  return (
    <section aria-labelledby="verify-h">
      <h2 id="verify-h">Verify</h2>
      <p>Reads every blob and checks its digest.</p>
      {session.canAdminister && (
        <p>
          <button type="button" disabled={action.busy || m.verify.running} onClick={() => void run()}>
            Verify now
          </button>{' '}
          {m.verify.running && <span class="muted">Verifying…</span>}
        </p>
      )}
      <Status action={action} />
      {m.verify.last ? (
        <>
          <h3>
            Last verify, <span title={when(m.verify.last.at)}>{ago(m.verify.last.at)}</span>
          </h3>
          <Report value={m.verify.last.report} />
        </>
      ) : (
        <p class="muted">No verify has run since airlock started.</p>
      )}
    </section>
  );
}

function Upload() {
  const action = useAction();
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [loaded, setLoaded] = useState<LoadedImages['images']>([]);
  const upload = () =>
    action.run('Upload', async () => {
      if (!file) return 'Choose a file first.';
      const r = await request<LoadedImages>('POST', 'archive', { body: file, contentType: 'application/x-tar', query: { name: name.trim() || undefined } });
      setLoaded(r.images);
      return `Loaded ${r.images.length} ${r.images.length === 1 ? 'image' : 'images'} from ${file.name}.`;
    });
  return (
    <section aria-labelledby="upload-h">
      <h2 id="upload-h">Upload an archive</h2>
      <p>
        A <code>docker save</code> tar or an OCI layout tar; its images are stored as local repositories. To download images as an archive, select their tags on a
        repository's page.
      </p>
      <form class="stack" onSubmit={(e) => (e.preventDefault(), void upload())}>
        <label for="upload-file">Archive</label>
        <input id="upload-file" type="file" accept=".tar,application/x-tar" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        <label for="upload-name">Repository name (optional, for an archive without names)</label>
        <input id="upload-name" value={name} onInput={(e) => setName(e.currentTarget.value)} spellcheck={false} autocomplete="off" />
        <div>
          <button type="submit" class="primary" disabled={action.busy || !file}>
            Upload
          </button>
        </div>
      </form>
      <Status action={action} />
      {loaded.length > 0 && (
        <ul class="plain">
          {loaded.map((i) => (
            <li key={`${i.name}${i.tag}${i.digest}`}>
              <a href={page('image', { name: i.name, ref: i.tag ?? i.digest })}>
                {i.name}
                {i.tag ? `:${i.tag}` : `@${i.digest}`}
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function MaintenancePage() {
  useTitle('Maintenance');
  const { session } = useSession();
  const { data, error, loading, reload } = useApi<Maintenance>('maintenance');
  useInterval(reload, data?.gc.running || data?.verify.running ? 2000 : 30_000);
  return (
    <>
      <h1>Maintenance</h1>
      {!data && <Loading error={error} loading={loading} />}
      {data && (
        <>
          <Gc m={data} reload={reload} />
          <Verify m={data} reload={reload} />
          <section aria-labelledby="bundles-h">
            <h2 id="bundles-h">Bundles</h2>
            {data.auditEnabled === false ? (
              <p class="muted">Bundles frozen and imported are listed from the audit log; set audit.file to keep one.</p>
            ) : data.bundles.length === 0 ? (
              <p class="muted">No bundle was frozen, imported or loaded.</p>
            ) : (
              <TableWrap label="Bundles">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">Event</th>
                      <th scope="col">Bundle</th>
                      <th scope="col" class="num">
                        Images
                      </th>
                      <th scope="col">Signed by</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.bundles.map((b) => (
                      <tr key={`${b.at}-${b.name}-${b.event}`}>
                        <td title={when(b.at)}>{ago(b.at)}</td>
                        <td>{b.event === 'freeze' ? 'frozen' : b.event === 'import' ? 'imported' : 'loaded'}</td>
                        <td class="break">{b.name}</td>
                        <td class="num">{b.images}</td>
                        <td>{b.signer ?? 'unsigned'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            )}
          </section>
          <section aria-labelledby="m-evictions-h">
            <h2 id="m-evictions-h">Evictions</h2>
            <Evictions rows={data.evictions} label="Evictions" />
          </section>
        </>
      )}
      {mayWrite(session) && <Upload />}
    </>
  );
}
