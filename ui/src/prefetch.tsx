import { useState } from 'preact/hooks';
import { request } from './api';
import { Loading, mayWrite, Status, TableWrap, useSession } from './components';
import { ago, duration, shortDigest, when } from './format';
import { useAction, useApi, useInterval, useTitle } from './hooks';
import type { PrefetchState } from './types';

function outcomeText(e: PrefetchState['entries'][number]): string {
  if (e.error) return `${e.outcome ?? 'failed'}: ${e.error}`;
  return e.outcome ?? (e.lastRun === null ? 'not run yet' : '—');
}

export function PrefetchPage() {
  useTitle('Prefetch');
  const { session } = useSession();
  const { data, error, loading, reload } = useApi<PrefetchState>('prefetch');
  const action = useAction();
  const [image, setImage] = useState('');
  // While a run goes on, its results come in entry by entry.
  useInterval(reload, data?.running ? 2000 : 30_000);

  const runAll = () =>
    action.run('Run the prefetch list', async () => {
      await request('POST', 'prefetch/run');
      reload();
      return 'The prefetch list is running in the background.';
    });
  const one = (img: string) =>
    action.run(`Prefetch ${img}`, async () => {
      const r = await request<Record<string, unknown>>('POST', 'prefetch', { json: { image: img } });
      reload();
      const outcome = typeof r?.outcome === 'string' ? r.outcome : 'done';
      const err = typeof r?.error === 'string' ? `: ${r.error}` : '';
      return `Prefetch ${img}: ${outcome}${err}`;
    });

  return (
    <>
      <h1>Prefetch</h1>
      <p>Images fetched ahead of need, so they are in the store before the network goes away.</p>
      {!data && <Loading error={error} loading={loading} />}
      {data && (
        <>
          <dl class="facts">
            <div>
              <dt>Runs every</dt>
              <dd>{data.every ? duration(data.every) : 'not scheduled'}</dd>
            </div>
            <div>
              <dt>Next run</dt>
              <dd title={when(data.nextRun)}>{data.running ? 'running now' : data.nextRun ? ago(data.nextRun) : '—'}</dd>
            </div>
          </dl>
          {session.canAdminister && (
            <p>
              <button type="button" class="primary" disabled={action.busy || data.running} onClick={() => void runAll()}>
                Run now
              </button>{' '}
              {data.running && <span class="muted">A run is in progress.</span>}
            </p>
          )}
        </>
      )}
      {mayWrite(session) && (
        <form class="row" onSubmit={(e) => (e.preventDefault(), image.trim() && void one(image.trim()))}>
          <label for="prefetch-image">Image</label>
          <input id="prefetch-image" value={image} onInput={(e) => setImage(e.currentTarget.value)} placeholder="docker.io/library/alpine:3.20" spellcheck={false} autocomplete="off" />
          <button type="submit" disabled={action.busy || !image.trim()}>
            Prefetch now
          </button>
        </form>
      )}
      <Status action={action} />
      {data && (
        <>
          <h2>The list</h2>
          {data.entries.length === 0 ? (
            <p class="muted">The prefetch list is empty (prefetch: in the configuration).</p>
          ) : (
            <TableWrap label="Prefetch list">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Image</th>
                    <th scope="col">Platforms</th>
                    <th scope="col">Last run</th>
                    <th scope="col">Result</th>
                    <th scope="col">Digest</th>
                    <th scope="col">Next run</th>
                    {mayWrite(session) && (
                      <th scope="col">
                        <span class="visually-hidden">Actions</span>
                      </th>
                    )}
                  </tr>
                </thead>
                <tbody>
                  {data.entries.map((e) => (
                      <tr key={e.image}>
                        <th scope="row" class="break">
                          {e.image}
                        </th>
                        <td class="wrap">{e.platforms?.join(', ') ?? 'all'}</td>
                        <td title={when(e.lastRun)}>{ago(e.lastRun)}</td>
                        <td class={e.error ? 'error-text break' : 'break'}>{outcomeText(e)}</td>
                        <td>{e.digest ? <code title={e.digest}>{shortDigest(e.digest)}</code> : '—'}</td>
                        <td title={when(data.nextRun)}>{data.running ? 'running' : data.nextRun ? ago(data.nextRun) : '—'}</td>
                        {mayWrite(session) && (
                          <td>
                            <button type="button" disabled={action.busy} onClick={() => void one(e.image)}>
                              Prefetch<span class="visually-hidden"> {e.image} now</span>
                            </button>
                          </td>
                        )}
                      </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )}
        </>
      )}
    </>
  );
}
