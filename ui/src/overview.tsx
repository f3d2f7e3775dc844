import { useEffect, useMemo, useState } from 'preact/hooks';
import { apiUrl, page } from './api';
import { TimeChart } from './chart';
import { Loading, TableWrap } from './components';
import { ago, bytes, count, percent, shortDigest, when } from './format';
import { useApi, useInterval, useTitle } from './hooks';
import type { Eviction, Fill, Overview as OverviewData, Series, Totals, Upstream } from './types';

type Span = 'hour' | 'day';

function Charts({ series, totals, span }: { series: Series; totals: Totals; span: Span }) {
  const x = useMemo(() => series.hits.map((_, i) => (series.start + i * series.step * 1000) / 1000), [series]);
  const ratio = useMemo(
    () => [{ label: 'Hit ratio', color: '--chart-1', points: true, values: series.hits.map((h, i) => (h + (series.misses[i] ?? 0) > 0 ? h / (h + (series.misses[i] ?? 0)) : null)) }],
    [series],
  );
  const traffic = useMemo(
    () => [
      { label: 'Served from the store', color: '--chart-1', values: series.servedBytes },
      { label: 'Fetched from upstreams', color: '--chart-2', values: series.fetchedBytes },
    ],
    [series],
  );
  const last = span === 'hour' ? 'the last hour' : 'the last day';
  return (
    <div class="charts">
      <TimeChart
        label="Cache hit ratio"
        summary={`${percent(totals.hitRatio)} over ${last}: ${count(totals.hits)} hits, ${count(totals.misses)} misses`}
        x={x}
        lines={ratio}
        max={1}
        format={(v) => `${Math.round(v * 100)} %`}
      />
      <TimeChart
        label="Bytes served and fetched"
        summary={`${bytes(totals.servedBytes)} served from the store, ${bytes(totals.fetchedBytes)} fetched from upstreams over ${last}`}
        x={x}
        lines={traffic}
        format={bytes}
      />
    </div>
  );
}

function StoreCard({ store }: { store: OverviewData['store'] }) {
  const share = store.maxSize ? store.bytes / store.maxSize : null;
  return (
    <section class="card" aria-labelledby="store-h">
      <h2 id="store-h">Store</h2>
      <p class="big">
        {bytes(store.bytes)}
        {store.maxSize ? <span class="muted"> of {bytes(store.maxSize)}</span> : null}
      </p>
      {!store.maxSize && <p class="muted small">No size limit (storage.maxSize is not set).</p>}
      {store.maxSize ? (
        <meter aria-label="Store size against storage.maxSize" min={0} max={store.maxSize} value={store.bytes} high={store.maxSize * 0.9} optimum={0}>
          {percent(share)}
        </meter>
      ) : null}
      <dl class="facts">
        <div>
          <dt>Repositories</dt>
          <dd>{count(store.repositories)}</dd>
        </div>
        <div>
          <dt>Images</dt>
          <dd>{count(store.images)}</dd>
        </div>
        <div>
          <dt>Blobs</dt>
          <dd>{count(store.blobs)}</dd>
        </div>
      </dl>
      {store.readOnly && <p class="badge">read-only</p>}
    </section>
  );
}

function UpstreamCard({ u }: { u: Upstream }) {
  const state = u.state === 'ok' ? 'reachable' : u.state === 'breaker-open' ? 'breaker open' : 'not contacted yet';
  return (
    <li class="card upstream">
      <h3>{u.name}</h3>
      <p class="muted small break">{u.url}</p>
      <p>
        <span class={`state state-${u.state}`}>{state}</span>
      </p>
      <dl class="facts">
        <div>
          <dt>Requests</dt>
          <dd>{count(u.requests)}</dd>
        </div>
        <div>
          <dt>Errors</dt>
          <dd>{count(u.errors)}</dd>
        </div>
        <div>
          <dt>Rate limit left</dt>
          <dd>{u.rateLimitRemaining === null ? '—' : count(u.rateLimitRemaining)}</dd>
        </div>
      </dl>
      {u.lastError && (
        <p class="small error-text">
          Last error <span title={when(u.lastError.at)}>{ago(u.lastError.at)}</span>: {u.lastError.message}
        </p>
      )}
    </li>
  );
}

/** Fills as they run, from the server-sent events (about twice a second while any runs). */
function Fills({ initial }: { initial: Fill[] }) {
  const [fills, setFills] = useState(initial);
  useEffect(() => setFills(initial), [initial]);
  useEffect(() => {
    const es = new EventSource(apiUrl('events'));
    es.addEventListener('fills', (e) => {
      try {
        setFills(JSON.parse((e as MessageEvent<string>).data) as Fill[]);
      } catch {
        // A malformed event: keep the last list.
      }
    });
    return () => es.close();
  }, []);
  return (
    <section class="card wide" aria-labelledby="fills-h">
      <h2 id="fills-h">Fills in progress</h2>
      <p class="muted" aria-live="polite">
        {fills.length === 0 ? 'Nothing is being fetched from an upstream.' : `${fills.length} ${fills.length === 1 ? 'fill' : 'fills'} running.`}
      </p>
      {fills.length > 0 && (
        <ul class="fills">
          {fills.map((f) => {
            const id = `fill-${f.id}`;
            return (
              <li key={f.id}>
                <div id={id} class="fill-name">
                  <a href={page('repository', { name: f.repository })}>{f.repository}</a> <code title={f.digest}>{shortDigest(f.digest)}</code>
                  <span class="visually-hidden"> {f.digest}</span>
                </div>
                {f.size !== null ? (
                  <progress aria-label={`${f.repository} ${f.digest}`} value={f.received} max={f.size} />
                ) : (
                  <progress aria-label={`${f.repository} ${f.digest}`} />
                )}
                <div class="muted small">
                  {bytes(f.received)}
                  {f.size !== null ? ` of ${bytes(f.size)}` : ''} from {f.upstream}, started {ago(f.startedAt)}
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

export function Evictions({ rows, label = 'Recent evictions' }: { rows: Eviction[]; label?: string }) {
  if (rows.length === 0) return <p class="muted">Nothing was evicted recently.</p>;
  return (
    <TableWrap label={label}>
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Repository</th>
            <th scope="col">Digest</th>
            <th scope="col" class="num">
              Size
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr key={`${e.at}-${e.digest}`}>
              <td title={when(e.at)}>{ago(e.at)}</td>
              <td>{e.repository}</td>
              <td>
                <code title={e.digest}>{shortDigest(e.digest)}</code>
              </td>
              <td class="num">{bytes(e.bytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

export function Overview() {
  useTitle('Overview');
  const { data, error, loading, reload } = useApi<OverviewData>('overview');
  const [span, setSpan] = useState<Span>('hour');
  // The charts and counters move slowly; the fills have their own stream.
  useInterval(reload, 30_000);
  return (
    <>
      <h1>Overview</h1>
      {!data && <Loading error={error} loading={loading} />}
      {data && (
        <>
          <div class="grid">
            <StoreCard store={data.store} />
            <section class="card wide" aria-labelledby="traffic-h">
              <div class="row">
                <h2 id="traffic-h">Traffic</h2>
                <div class="toggle" role="group" aria-label="Time span">
                  {(['hour', 'day'] as const).map((s) => (
                    <button key={s} type="button" aria-pressed={span === s} onClick={() => setSpan(s)}>
                      Last {s}
                    </button>
                  ))}
                </div>
              </div>
              <Charts series={data.traffic[span]} totals={data.totals[span]} span={span} />
            </section>
          </div>
          <Fills initial={data.fills} />
          <section aria-labelledby="upstreams-h">
            <h2 id="upstreams-h">Upstreams</h2>
            {data.upstreams.length === 0 ? <p class="muted">No upstreams are configured.</p> : <ul class="cards">{data.upstreams.map((u) => <UpstreamCard key={u.name} u={u} />)}</ul>}
          </section>
          <section aria-labelledby="evictions-h">
            <h2 id="evictions-h">Recent evictions</h2>
            <Evictions rows={data.evictions} />
          </section>
        </>
      )}
    </>
  );
}
