import { useLocation } from 'preact-iso';
import { useEffect, useRef, useState } from 'preact/hooks';
import { page } from './api';
import { Loading, TableWrap } from './components';
import { ago, bytes, count, when } from './format';
import { useApi, useTitle } from './hooks';
import type { RepoPage, RepoSort } from './types';

const LIMIT = 50;
const SORTS: RepoSort[] = ['name', 'size', 'images', 'lastPulled', 'pulls'];
/** The order a column starts in when first clicked: names A–Z, numbers biggest first. */
const FIRST_ORDER: Record<RepoSort, 'asc' | 'desc'> = { name: 'asc', size: 'desc', images: 'desc', lastPulled: 'desc', pulls: 'desc' };

function SortHeader(props: { field: RepoSort; label: string; sort: RepoSort; order: 'asc' | 'desc'; onSort: (f: RepoSort) => void; num?: boolean }) {
  const active = props.sort === props.field;
  return (
    <th scope="col" class={props.num ? 'num' : undefined} aria-sort={active ? (props.order === 'asc' ? 'ascending' : 'descending') : 'none'}>
      <button type="button" class="sort" onClick={() => props.onSort(props.field)}>
        {props.label}
        <span aria-hidden="true" class="arrow">
          {active ? (props.order === 'asc' ? '▲' : '▼') : ''}
        </span>
      </button>
    </th>
  );
}

export function RepositoriesPage() {
  useTitle('Repositories');
  const { query, route } = useLocation();
  const q = query.q ?? '';
  const sort: RepoSort = SORTS.includes(query.sort as RepoSort) ? (query.sort as RepoSort) : 'name';
  const order = query.order === 'desc' || query.order === 'asc' ? query.order : FIRST_ORDER[sort];
  const pageNo = Math.max(1, Number.parseInt(query.page ?? '1', 10) || 1);

  const go = (next: { q?: string; sort?: RepoSort; order?: string; page?: number }, replace = false) => {
    const s = { q, sort, order, page: pageNo, ...next };
    route(page('repositories', { q: s.q || undefined, sort: s.sort === 'name' ? undefined : s.sort, order: s.order === FIRST_ORDER[s.sort] ? undefined : s.order, page: s.page > 1 ? s.page : undefined }), replace);
  };

  // The box types ahead of the URL; the URL (and the request) follow after a pause.
  const [text, setText] = useState(q);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => {
    if (document.activeElement?.id !== 'repo-search') setText(q);
  }, [q]);
  useEffect(() => () => clearTimeout(timer.current), []);
  const onInput = (v: string) => {
    setText(v);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => go({ q: v, page: 1 }, true), 250);
  };

  const { data, error, loading } = useApi<RepoPage>('repositories', { q, sort, order, offset: (pageNo - 1) * LIMIT, limit: LIMIT });
  const pages = data ? Math.max(1, Math.ceil(data.total / LIMIT)) : 1;
  const onSort = (f: RepoSort) => go({ sort: f, order: sort === f ? (order === 'asc' ? 'desc' : 'asc') : FIRST_ORDER[f], page: 1 });

  return (
    <>
      <h1>Repositories</h1>
      <form class="search" role="search" onSubmit={(e) => (e.preventDefault(), clearTimeout(timer.current), go({ q: text, page: 1 }, true))}>
        <label for="repo-search">Search repositories</label>
        <input id="repo-search" type="search" value={text} onInput={(e) => onInput(e.currentTarget.value)} placeholder="part of a name" autocomplete="off" spellcheck={false} />
      </form>
      <p class="muted" aria-live="polite" aria-busy={loading}>
        {data ? `${count(data.total)} ${data.total === 1 ? 'repository' : 'repositories'}${q ? ` matching “${q}”` : ''}` : ''}
      </p>
      <Loading error={error} loading={loading && !data} />
      {data && data.items.length > 0 && (
        <TableWrap label="Repositories">
          <table class={loading ? 'stale' : undefined}>
            <thead>
              <tr>
                <SortHeader field="name" label="Name" sort={sort} order={order} onSort={onSort} />
                <th scope="col">Source</th>
                <SortHeader field="images" label="Images" sort={sort} order={order} onSort={onSort} num />
                <SortHeader field="size" label="Size" sort={sort} order={order} onSort={onSort} num />
                <SortHeader field="lastPulled" label="Last pulled" sort={sort} order={order} onSort={onSort} />
                <SortHeader field="pulls" label="Pulls" sort={sort} order={order} onSort={onSort} num />
                <th scope="col">Pinned</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((r) => (
                <tr key={r.name}>
                  <th scope="row">
                    <a href={page('repository', { name: r.name })}>{r.name}</a>
                  </th>
                  <td>{r.kind === 'local' ? 'local' : (r.upstream ?? 'mirror')}</td>
                  <td class="num">{count(r.images)}</td>
                  <td class="num">{bytes(r.size)}</td>
                  <td title={when(r.lastPulled)}>{ago(r.lastPulled)}</td>
                  <td class="num">{count(r.pulls)}</td>
                  <td>{r.pinned ? 'pinned' : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {data && data.items.length === 0 && <p>{q ? 'No repository matches.' : 'The store holds no repositories yet.'}</p>}
      {data && pages > 1 && (
        <nav class="pager" aria-label="Pages">
          <button type="button" disabled={pageNo <= 1} onClick={() => go({ page: pageNo - 1 })}>
            Previous
          </button>
          <span>
            Page {pageNo} of {pages}
          </span>
          <button type="button" disabled={pageNo >= pages} onClick={() => go({ page: pageNo + 1 })}>
            Next
          </button>
        </nav>
      )}
    </>
  );
}
