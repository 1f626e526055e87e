// The project page: the jobs table (virtualised rows over server pages, server-side sort and
// filters), column chooser, selection actions and the parallel-coordinates chart. The view
// (sort, filters, hidden columns, chart axes) lives in the URL.
import { Component, Fragment } from 'preact';
import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { IconChart, IconColumns, IconCompare, IconFilter, IconRefresh, IconSearch, IconSortDown, IconSortUp, IconStop, IconTrash, IconX } from '../components/icons';
import { ParCoords } from '../components/parcoords';
import { ProjectHeader, useProject } from '../components/projectheader';
import { confirmDialog, CopyButton, Empty, Popover, StateBadge } from '../components/ui';
import { debounce, useJobEvents, usePollWhileOffline, useTracked } from '../events';
import { colLabel, describeFilter, filterFieldOf, parseFilters, serializeFilters, withFilter } from '../filters';
import type { FilterKind } from '../filters';
import { fmtDuration, fmtNumber, fmtTime, fmtValue, fullValue, jobDuration, shortId } from '../format';
import { Link, navigate, rememberProjectView, setQuery, useLocation } from '../router';
import { toast, toastError } from '../toast';
import { isActive, isFinished, STATES } from '../types';
import type { Filter, Job, Metric } from '../types';

const PAGE = 100;
const ROW_H = 34;
const OVERSCAN = 8;

// ---------------------------------------------------------------------------------------------
// Data: pages of the job list, fetched on demand for the rows on screen.

interface ListState {
  gen: number;
  dataGen: number; // the query generation of the rows held
  dataKey: string; // the query of the rows held
  total: number;
  pages: Map<number, Job[]>;
  params: string[];
  metrics: string[];
  loaded: boolean;
  error: string;
}

function useJobPages(project: string, sort: string, desc: boolean, filters: Filter[]) {
  const key = JSON.stringify([project, sort, desc, filters]);
  const st = useRef<ListState>({ gen: 0, dataGen: 0, dataKey: '', total: 0, pages: new Map(), params: [], metrics: [], loaded: false, error: '' });
  const inflight = useRef(new Map<number, AbortController>());
  const want = useRef<[number, number]>([0, 1]);
  const [, setTick] = useState(0);
  const bump = () => setTick((t) => t + 1);

  const fetchPage = (page: number, gen: number, replaceAll: boolean) => {
    const queryKey = key;
    if (inflight.current.has(page) && !replaceAll) return;
    inflight.current.get(page)?.abort();
    const ac = new AbortController();
    inflight.current.set(page, ac);
    const t0 = performance.now();
    api
      .jobs({ project, sort: sort || undefined, desc, filters, limit: PAGE, offset: page * PAGE }, ac.signal)
      .then((res) => {
        if (inflight.current.get(page) === ac) inflight.current.delete(page);
        if (st.current.gen !== gen) return;
        const s = st.current;
        if (replaceAll) s.pages = new Map();
        s.dataGen = gen;
        s.dataKey = queryKey;
        s.pages.set(page, res.jobs);
        s.total = res.total;
        if (res.params) s.params = res.params;
        if (res.metrics) s.metrics = res.metrics;
        s.loaded = true;
        s.error = '';
        (window as unknown as { __atlasFetchMs?: number }).__atlasFetchMs = performance.now() - t0;
        bump();
      })
      .catch((e) => {
        if (inflight.current.get(page) === ac) inflight.current.delete(page);
        if (e.name === 'AbortError' || st.current.gen !== gen) return;
        st.current.error = e.message;
        st.current.loaded = true;
        toastError(e);
        bump();
      });
  };

  // A new query: keep showing the old rows until the first page of the new one arrives. A
  // layout effect, so that the request leaves right after the click is rendered.
  useLayoutEffect(() => {
    const gen = ++st.current.gen;
    for (const ac of inflight.current.values()) ac.abort();
    inflight.current.clear();
    fetchPage(0, gen, true);
  }, [key]);

  const pagesFor = (start: number, end: number) => {
    const out: number[] = [];
    for (let p = Math.floor(start / PAGE); p <= Math.floor(Math.max(start, end - 1) / PAGE); p++) out.push(p);
    return out;
  };

  /** Asks for the rows [start, end) to be loaded. */
  const ensure = (start: number, end: number) => {
    want.current = [start, end];
    const s = st.current;
    if (!s.loaded) return;
    // Pages far from the view are dropped, so memory stays bounded however far one scrolls.
    const lo = Math.floor(start / PAGE) - 10,
      hi = Math.floor(end / PAGE) + 10;
    for (const p of [...s.pages.keys()]) if (p < lo || p > hi) s.pages.delete(p);
    for (const p of pagesFor(start, Math.min(end, s.total))) if (!s.pages.has(p)) fetchPage(p, s.gen, false);
  };

  /** Re-reads the pages on screen (after job changes), keeping the rows shown meanwhile. */
  const refresh = () => {
    const s = st.current;
    const [a, b] = want.current;
    const keep = new Set(pagesFor(a, b));
    for (const p of [...s.pages.keys()]) if (!keep.has(p)) s.pages.delete(p);
    for (const p of keep) fetchPage(p, s.gen, false);
  };

  const row = (i: number): Job | undefined => st.current.pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  const loadedJobs = (): Job[] => [...st.current.pages.values()].flat();
  // False from the render that changes the query until its rows arrive.
  const ready = st.current.dataKey === key;
  return { s: st.current, ensure, refresh, row, loadedJobs, ready };
}

// ---------------------------------------------------------------------------------------------
// Columns.

interface Col {
  id: string;
  label: string;
  group: 'job' | 'param' | 'metric';
  width: number;
  sort?: string;
  sticky?: boolean; // stays in view when the table scrolls sideways (leading columns only)
  cell: (j: Job) => JSX.Element | string;
  title?: (j: Job) => string;
}

const metricOf = (j: Job, key: string): Metric | undefined => j.metrics.find((m) => m.key === key);

function metricTitle(m: Metric): string {
  const parts = [`last ${fullValue(m.last)} (step ${m.last_step})`];
  if (m.min !== undefined) parts.push(`min ${fmtNumber(m.min)}`);
  if (m.max !== undefined) parts.push(`max ${fmtNumber(m.max)}`);
  parts.push(`${m.count} point${m.count === 1 ? '' : 's'}`);
  return parts.join(' · ');
}

/** Wide enough for the key in the header, within limits. */
const colWidth = (key: string) => Math.round(Math.max(100, Math.min(220, 7.4 * key.length + 52)));

function buildColumns(params: string[], metrics: string[]): Col[] {
  const cols: Col[] = [
    { id: 'state', label: 'Status', group: 'job', width: 116, sort: 'state', sticky: true, cell: (j) => <StateBadge state={j.state} /> },
    {
      id: 'id',
      label: 'Job ID',
      group: 'job',
      width: 124,
      sort: 'id',
      sticky: true,
      cell: (j) => (
        <span class="idcell">
          <Link href={`/jobs/${encodeURIComponent(j.id)}`} class="mono joblink" title={j.id}>
            {shortId(j.id)}
          </Link>
          <CopyButton text={j.id} label="Copy job id" />
        </span>
      ),
    },
    { id: 'created_at', label: 'Launched', group: 'job', width: 140, sort: 'created_at', cell: (j) => fmtTime(j.created_at), title: (j) => fmtTime(j.created_at, true) },
    {
      id: 'duration',
      label: 'Duration',
      group: 'job',
      width: 116,
      sort: 'duration',
      cell: (j) => <span class="num">{fmtDuration(jobDuration(j))}</span>,
    },
    { id: 'user', label: 'User', group: 'job', width: 96, sort: 'user', cell: (j) => j.user, title: (j) => j.user },
    {
      id: 'tags',
      label: 'Tags',
      group: 'job',
      width: 160,
      cell: (j) => {
        const ks = Object.keys(j.tags);
        return (
          <span class="tags-cell">
            {ks.slice(0, 2).map((k) => (
              <span key={k} class="tag tag-compact">
                {j.tags[k] ? `${k}: ${j.tags[k]}` : k}
              </span>
            ))}
            {ks.length > 2 && <span class="more">+{ks.length - 2}</span>}
          </span>
        );
      },
      title: (j) =>
        Object.entries(j.tags)
          .map(([k, v]) => (v ? `${k}: ${v}` : k))
          .join('\n'),
    },
  ];
  for (const k of params)
    cols.push({
      id: 'param:' + k,
      label: k,
      group: 'param',
      width: colWidth(k),
      sort: 'param:' + k,
      cell: (j) => {
        const v = j.params[k];
        return v === undefined ? <span class="na">–</span> : <span class={typeof v === 'number' ? 'num' : ''}>{fmtValue(v)}</span>;
      },
      title: (j) => fullValue(j.params[k]),
    });
  for (const k of metrics)
    cols.push({
      id: 'metric:' + k,
      label: k,
      group: 'metric',
      width: colWidth(k),
      sort: 'metric:' + k,
      cell: (j) => {
        const m = metricOf(j, k);
        return m === undefined ? <span class="na">–</span> : <span class={typeof m.last === 'number' ? 'num' : ''}>{fmtValue(m.last)}</span>;
      },
      title: (j) => {
        const m = metricOf(j, k);
        return m ? metricTitle(m) : '';
      },
    });
  return cols;
}

// ---------------------------------------------------------------------------------------------
// Layout of the grid: leading sticky columns, then the others; only those in view are rendered.

const SELECT_W = 36;
const H_OVERSCAN = 240; // px of columns rendered beyond each side of the view

interface Layout {
  sticky: Col[];
  rest: Col[];
  left: Map<string, number>; // sticky columns' left offsets
  x: number[]; // left edge of each of rest, from the first non-sticky column
  stickyW: number;
}

function gridLayout(cols: Col[]): Layout {
  const sticky: Col[] = [];
  const rest: Col[] = [];
  const left = new Map<string, number>();
  let w = SELECT_W;
  for (const c of cols) {
    if (c.sticky && rest.length === 0) {
      left.set(c.id, w);
      w += c.width;
      sticky.push(c);
    } else rest.push(c);
  }
  const x: number[] = [];
  let acc = 0;
  for (const c of rest) {
    x.push(acc);
    acc += c.width;
  }
  return { sticky, rest, left, x, stickyW: w };
}

/** The range [a, b) of non-sticky columns in view, and the width of those left of it. */
function visibleColumns(l: Layout, scrollLeft: number, viewW: number): { a: number; b: number; pad: number } {
  const from = scrollLeft - H_OVERSCAN;
  const to = scrollLeft + viewW - l.stickyW + H_OVERSCAN;
  let a = 0;
  while (a < l.rest.length && l.x[a] + l.rest[a].width < from) a++;
  let b = a;
  while (b < l.rest.length && l.x[b] < to) b++;
  return { a, b, pad: a < l.rest.length ? l.x[a] : 0 };
}

interface RowProps {
  i: number;
  job: Job;
  selected: boolean;
  sticky: Col[];
  cols: Col[];
  pad: number;
  tick: number; // changes every second for running jobs (their duration)
  onToggle: (j: Job, on: boolean) => void;
}

/** One row of the grid; re-rendered only when its job, selection, position or columns change. */
class Row extends Component<RowProps> {
  shouldComponentUpdate(n: RowProps) {
    const p = this.props;
    return n.job !== p.job || n.selected !== p.selected || n.i !== p.i || n.cols !== p.cols || n.sticky !== p.sticky || n.pad !== p.pad || n.tick !== p.tick;
  }
  render({ i, job, selected, sticky, cols, pad, onToggle }: RowProps) {
    let left = SELECT_W;
    return (
      <div
        class={`tr${selected ? ' selected' : ''}`}
        style={{ top: i * ROW_H + 'px' }}
        role="row"
        data-job={job.id}
        data-state={job.state}
        onClick={(e) => {
          const t = e.target as HTMLElement;
          if (t.closest('a,button,input,label')) return;
          if (window.getSelection()?.toString()) return;
          const href = `/jobs/${encodeURIComponent(job.id)}`;
          if (e.ctrlKey || e.metaKey) window.open(href, '_blank');
          else navigate(href);
        }}
      >
        <label class="td sticky select-col" style={{ left: '0px', width: SELECT_W + 'px' }}>
          <input type="checkbox" aria-label={`Select job ${job.id}`} checked={selected} onChange={(e) => onToggle(job, e.currentTarget.checked)} />
        </label>
        {sticky.map((c) => {
          const l = left;
          left += c.width;
          return (
            <div key={c.id} class="td sticky" style={{ left: l + 'px', width: c.width + 'px' }} data-col={c.id}>
              {c.cell(job)}
            </div>
          );
        })}
        {pad > 0 && <div class="col-pad" style={{ width: pad + 'px' }} />}
        {cols.map((c) => (
          <div key={c.id} class="td" style={{ width: c.width + 'px' }} data-col={c.id}>
            {c.cell(job)}
          </div>
        ))}
      </div>
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Filter editor.

/** Users to pick from: more than this many get a search box. */
const USER_SEARCH_OVER = 8;

/** A checkbox per user of the project (GET /projects/{name} lists who submitted jobs). */
function UserChoice({ users, chosen, onChange }: { users: string[]; chosen: Set<string>; onChange: (s: Set<string>) => void }) {
  const [q, setQ] = useState('');
  const needle = q.trim().toLowerCase();
  const shown = needle ? users.filter((u) => u.toLowerCase().includes(needle)) : users;
  return (
    <div class="user-choice">
      {users.length > USER_SEARCH_OVER && (
        <label class="search small">
          <IconSearch />
          <input type="search" placeholder={`Search ${users.length} users`} value={q} onInput={(e) => setQ(e.currentTarget.value)} autoFocus aria-label="Search users" />
        </label>
      )}
      <div class="user-list">
        {shown.map((u) => (
          <label key={u} class="check" data-testid="user-option">
            <input
              type="checkbox"
              checked={chosen.has(u)}
              onChange={(e) => {
                const n = new Set(chosen);
                if (e.currentTarget.checked) n.add(u);
                else n.delete(u);
                onChange(n);
              }}
            />
            <span>{u}</span>
          </label>
        ))}
        {!shown.length && <div class="subtle small">No user matches.</div>}
      </div>
      <div class="user-choice-foot subtle small">
        <span>{chosen.size ? `${chosen.size} of ${users.length} chosen` : 'None chosen: every user'}</span>
        {chosen.size > 0 && (
          <button type="button" class="link-btn" onClick={() => onChange(new Set())}>
            Clear
          </button>
        )}
      </div>
    </div>
  );
}

function FilterEditor({ field, kind, current, sample, users = [], onApply, onClose }: {
  field: string;
  kind: FilterKind;
  current?: Filter;
  sample: unknown[];
  users?: string[];
  onApply: (f: Filter | null) => void;
  onClose: () => void;
}) {
  const textual = kind === 'number' && (current?.op === 'contains' || current?.op === 'in' || (!current && sample.some((v) => typeof v === 'string' || typeof v === 'boolean')));
  const [mode, setMode] = useState<'range' | 'text'>(kind === 'text' || kind === 'tag' || textual ? 'text' : 'range');
  const [min, setMin] = useState(current?.min !== undefined ? String(current.min) : '');
  const [max, setMax] = useState(current?.max !== undefined ? String(current.max) : '');
  const [text, setText] = useState(current?.op === 'contains' ? current.values?.[0] ?? '' : current?.op === 'in' ? (current.values ?? []).join(', ') : '');
  const [states, setStates] = useState<Set<string>>(new Set(current?.op === 'in' ? current.values : []));
  // Users: the project's, and any the filter names that no longer submit; a "contains" filter
  // (an older link) starts with the users it matches.
  const userList = useMemo(() => [...new Set([...users, ...(current?.op === 'in' ? current.values ?? [] : [])])].sort(), [users.join('\n')]);
  const [chosenUsers, setChosenUsers] = useState<Set<string>>(() => {
    if (current?.op === 'in') return new Set(current.values);
    const t = current?.op === 'contains' ? (current.values?.[0] ?? '').toLowerCase() : '';
    return new Set(t ? userList.filter((u) => u.toLowerCase().includes(t)) : []);
  });
  const toLocal = (s: string) => {
    if (!s) return '';
    const d = new Date(Number(s) * 1000);
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  const nums = sample.filter((v): v is number => typeof v === 'number');
  const hint = nums.length ? `loaded rows: ${fmtNumber(Math.min(...nums))} … ${fmtNumber(Math.max(...nums))}` : '';

  const apply = (e?: Event) => {
    e?.preventDefault();
    if (kind === 'state') return onApply(states.size ? { field, op: 'in', values: STATES.filter((s) => states.has(s)) } : null);
    if (kind === 'user') return onApply(chosenUsers.size ? { field, op: 'in', values: [...chosenUsers].sort() } : null);
    if (mode === 'text') {
      const t = text.trim();
      if (!t) return onApply(null);
      return onApply({ field, op: 'contains', values: [t] });
    }
    const f: Filter = { field, op: 'range' };
    const parse = (s: string) => (kind === 'time' ? Date.parse(s) / 1000 : Number(s));
    if (min.trim() !== '' && Number.isFinite(parse(min))) f.min = parse(min);
    if (max.trim() !== '' && Number.isFinite(parse(max))) f.max = parse(max);
    onApply(f.min === undefined && f.max === undefined ? null : f);
  };

  return (
    <form class="filter-editor" onSubmit={apply} data-testid="filter-editor" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div class="fe-title">
        Filter <strong>{colLabel(field)}</strong>
        {/* Durations are numbers to the API: it ranges them and never matches their text. */}
        {kind === 'number' && field !== 'duration' && (
          <span class="seg-toggle">
            <button type="button" class={mode === 'range' ? 'on' : ''} onClick={() => setMode('range')}>
              Range
            </button>
            <button type="button" class={mode === 'text' ? 'on' : ''} onClick={() => setMode('text')}>
              Contains
            </button>
          </span>
        )}
      </div>
      {kind === 'state' && (
        <div class="fe-states">
          {STATES.map((s) => (
            <label key={s} class="check">
              <input
                type="checkbox"
                checked={states.has(s)}
                onChange={(e) => {
                  const n = new Set(states);
                  if (e.currentTarget.checked) n.add(s);
                  else n.delete(s);
                  setStates(n);
                }}
              />
              <StateBadge state={s} />
            </label>
          ))}
        </div>
      )}
      {kind === 'user' && <UserChoice users={userList} chosen={chosenUsers} onChange={setChosenUsers} />}
      {kind !== 'state' && kind !== 'user' && mode === 'text' && (
        <label class="field">
          <span>{kind === 'tag' ? 'Tag name contains' : 'Contains'}</span>
          <input type="text" value={text} onInput={(e) => setText(e.currentTarget.value)} data-autofocus autoFocus name="contains" />
        </label>
      )}
      {kind !== 'state' && kind !== 'user' && mode === 'range' && (
        <div class="fe-range">
          <label class="field">
            <span>{field === 'duration' ? 'Min (s)' : 'Min'}</span>
            {kind === 'time' ? (
              <input type="datetime-local" value={toLocal(min)} onInput={(e) => setMin(String(Date.parse(e.currentTarget.value) / 1000 || ''))} />
            ) : (
              <input type="text" inputMode="decimal" value={min} onInput={(e) => setMin(e.currentTarget.value)} autoFocus name="min" placeholder={field === 'duration' ? 'seconds' : ''} />
            )}
          </label>
          <label class="field">
            <span>Max</span>
            {kind === 'time' ? (
              <input type="datetime-local" value={toLocal(max)} onInput={(e) => setMax(String(Date.parse(e.currentTarget.value) / 1000 || ''))} />
            ) : (
              <input type="text" inputMode="decimal" value={max} onInput={(e) => setMax(e.currentTarget.value)} name="max" placeholder={field === 'duration' ? 'seconds' : ''} />
            )}
          </label>
        </div>
      )}
      {hint && mode === 'range' && <div class="subtle small">{hint}</div>}
      <div class="fe-actions">
        {current && (
          <button type="button" class="btn ghost" onClick={() => onApply(null)}>
            Remove
          </button>
        )}
        <span class="grow" />
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" class="btn primary" data-testid="apply-filter">
          Apply
        </button>
      </div>
    </form>
  );
}

// ---------------------------------------------------------------------------------------------
// Column chooser.

function ColumnChooser({ groups, hidden, onChange }: { groups: { name: string; cols: { id: string; label: string }[] }[]; hidden: Set<string>; onChange: (h: Set<string>) => void }) {
  const [q, setQ] = useState('');
  const needle = q.trim().toLowerCase();
  const total = groups.reduce((n, g) => n + g.cols.length, 0);
  return (
    <div class="col-chooser" data-testid="column-chooser">
      <label class="search small">
        <IconSearch />
        <input type="search" placeholder="Search columns" value={q} onInput={(e) => setQ(e.currentTarget.value)} autoFocus />
      </label>
      <div class="col-list">
        {total === 0 && <div class="subtle">No columns.</div>}
        {groups.map((g) => {
          const cols = g.cols.filter((c) => !needle || c.label.toLowerCase().includes(needle));
          if (!cols.length) return null;
          return (
            <div key={g.name} class="col-group">
              <div class="col-group-head">
                <span>{g.name}</span>
                <button
                  class="link-btn"
                  onClick={() => {
                    const h = new Set(hidden);
                    const allShown = cols.every((c) => !h.has(c.id));
                    for (const c of cols) allShown ? h.add(c.id) : h.delete(c.id);
                    onChange(h);
                  }}
                >
                  {cols.every((c) => !hidden.has(c.id)) ? 'Hide all' : 'Show all'}
                </button>
              </div>
              {cols.map((c) => (
                <label key={c.id} class="check">
                  <input
                    type="checkbox"
                    checked={!hidden.has(c.id)}
                    onChange={(e) => {
                      const h = new Set(hidden);
                      if (e.currentTarget.checked) h.delete(c.id);
                      else h.add(c.id);
                      onChange(h);
                    }}
                  />
                  <span>{c.label}</span>
                </label>
              ))}
            </div>
          );
        })}
        {groups.length > 0 && groups.every((g) => g.name === 'Job') && <div class="subtle small">Log some parameters or metrics to get more columns.</div>}
      </div>
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// The page.

const fieldOfCol = (id: string) => filterFieldOf(id)?.field ?? id;

export function ProjectJobsPage({ project }: { project: string }) {
  const loc = useLocation();
  const q = loc.query;
  const sort = q.get('sort') ?? '';
  const desc = sort ? q.get('order') !== 'asc' : true;
  const filtersRaw = q.get('f');
  const filters = useMemo(() => parseFilters(filtersRaw), [filtersRaw]);
  const hidden = useMemo(() => new Set((q.get('hide') ?? '').split(',').filter(Boolean)), [q.get('hide')]);
  const showChart = q.get('chart') !== '0';

  const [proj, reloadProject] = useProject(project);
  const list = useJobPages(project, sort, desc, filters);
  // Debounced and event callbacks are made once: they refresh through the current query's list.
  const listRef = useRef(list);
  listRef.current = list;
  const { s } = list;
  const [selected, setSelected] = useState<Map<string, Job>>(new Map());
  const [refreshN, setRefreshN] = useState(0);
  const [editor, setEditor] = useState<{ col: string; x: number; y: number } | null>(null);
  const [now, setNow] = useState(Date.now());
  const [idSearch, setIdSearch] = useState(filters.find((f) => f.field === 'id' && f.op === 'contains')?.values?.[0] ?? '');

  useEffect(() => {
    document.title = `${project} · Atlas`;
  }, [project]);
  useEffect(() => rememberProjectView(project, loc.search), [loc.search]);
  // The search box follows the URL (back and forward buttons).
  useEffect(() => setIdSearch(filters.find((f) => f.field === 'id' && f.op === 'contains')?.values?.[0] ?? ''), [filtersRaw]);

  // Live: re-read what is on screen when a job of this project changes.
  const [onChange] = useState(() => debounce(() => listRef.current.refresh(), 600));
  // The chart reads every job of the project: at most every 3 s.
  const [onChartChange] = useState(() => debounce(() => setRefreshN((n) => n + 1), 3000));
  useJobEvents((e) => {
    if (e && e.project !== project) return;
    if (e?.deleted) setSelected((sel) => (sel.has(e.id) ? new Map([...sel].filter(([k]) => k !== e.id)) : sel));
    onChange();
    onChartChange();
  });

  // Running jobs on screen: their values change without state changes. The server announces
  // new values (`event: track`, at most once a second per job): re-read the rows on screen when
  // one of them tracked some, at most once a second; the chart, at most every 10 s. Only while the
  // event stream is down do the rows of running jobs get polled.
  const visibleActive = useRef(false);
  const visibleIds = useRef(new Set<string>());
  useTracked((e) => e.project === project && visibleIds.current.has(e.id), () => list.refresh(), 1000);
  useTracked((e) => e.project === project && showChart, () => setRefreshN((n) => n + 1), 10000);
  usePollWhileOffline(() => visibleActive.current && list.refresh(), 10000);
  // Durations of running jobs tick each second.
  useEffect(() => {
    const t = window.setInterval(() => {
      if (!visibleActive.current) return;
      setNow(Date.now());
    }, 1000);
    return () => window.clearInterval(t);
  }, []);

  const allCols = useMemo(() => buildColumns(s.params, s.metrics), [s.params.join(','), s.metrics.join(',')]);
  const cols = allCols.filter((c) => !hidden.has(c.id));
  const totalWidth = 36 + cols.reduce((n, c) => n + c.width, 0);

  // Default chart axes: a few params and metrics.
  const axesParam = q.get('axes');
  const axes = useMemo(() => {
    if (axesParam === '-') return [];
    if (axesParam) return axesParam.split(',').filter((a) => s.params.includes(a.slice(6)) || s.metrics.includes(a.slice(7)) || !s.loaded);
    return [...s.params.slice(0, 4).map((p) => 'param:' + p), ...s.metrics.slice(0, 3).map((m) => 'metric:' + m)];
  }, [axesParam, s.params.join(','), s.metrics.join(','), s.loaded]);

  const setFilters = (fs: Filter[]) => setQuery({ f: serializeFilters(fs) || null });
  const setHidden = (h: Set<string>) => setQuery({ hide: [...h].join(',') || null }, { replace: true });

  const cycleSort = (c: Col) => {
    if (!c.sort) return;
    if (sort !== c.sort) setQuery({ sort: c.sort, order: null });
    else if (desc) setQuery({ sort: c.sort, order: 'asc' });
    else setQuery({ sort: null, order: null });
    scroller.current?.scrollTo({ top: 0 });
  };

  // Scrolling: rows and columns outside the view are not rendered.
  const scroller = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, left: 0 });
  const [view, setView] = useState({ w: 1200, h: 600 });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    let raf = 0;
    const onScroll = () => {
      if (raf) return;
      raf = requestAnimationFrame(() => {
        raf = 0;
        setScroll((p) => (p.top === el.scrollTop && p.left === el.scrollLeft ? p : { top: el.scrollTop, left: el.scrollLeft }));
      });
    };
    el.addEventListener('scroll', onScroll, { passive: true });
    const ro = new ResizeObserver(() => setView({ w: el.clientWidth, h: el.clientHeight }));
    ro.observe(el);
    setView({ w: el.clientWidth, h: el.clientHeight });
    return () => {
      el.removeEventListener('scroll', onScroll);
      ro.disconnect();
      cancelAnimationFrame(raf);
    };
  }, [s.loaded]);
  useEffect(() => {
    scroller.current?.scrollTo({ top: 0 });
    setScroll((p) => ({ ...p, top: 0 }));
  }, [filtersRaw]);

  const start = Math.max(0, Math.floor(scroll.top / ROW_H) - OVERSCAN);
  const end = Math.min(s.total, Math.ceil((scroll.top + view.h) / ROW_H) + OVERSCAN);
  // Load a little ahead, so that rows are there before they scroll into view.
  useEffect(() => list.ensure(Math.max(0, start - PAGE / 2), end + PAGE), [start, end, s.gen, s.total, s.loaded]);

  const layout = useMemo(() => gridLayout(cols), [cols.map((c) => c.id).join(',')]);
  const win = visibleColumns(layout, scroll.left, view.w);
  const hWin = { pad: win.pad, cols: useMemo(() => layout.rest.slice(win.a, win.b), [layout, win.a, win.b]) };

  const rows: { i: number; job?: Job }[] = [];
  let anyActive = false;
  const ids = new Set<string>();
  for (let i = start; i < end; i++) {
    const job = list.row(i);
    if (job) ids.add(job.id);
    if (job && isActive(job.state)) anyActive = true;
    rows.push({ i, job });
  }
  visibleActive.current = anyActive;
  visibleIds.current = ids;

  // Marks for the speed measurements (tests/perf.mjs): the frame that paints the rows of a new
  // query. A layout effect runs right after the DOM is updated; the next animation frame is the
  // one that paints it.
  const renderKey = `${s.dataGen}:${rows.length && rows[0].job ? rows[0].job.id : ''}:${s.total}`;
  useLayoutEffect(() => {
    if (!rows.some((r) => r.job)) return;
    const w = window as unknown as { __atlasRenders?: number; __atlasPaintedAt?: number };
    requestAnimationFrame(() => {
      w.__atlasRenders = (w.__atlasRenders ?? 0) + 1;
      w.__atlasPaintedAt = performance.now();
      if (w.__atlasRenders === 1) performance.mark('atlas-table-painted');
    });
  }, [renderKey]);

  // Selection.
  const loadedJobs = () => list.loadedJobs();
  const toggle = (j: Job, on: boolean) =>
    setSelected((prev) => {
      const n = new Map(prev);
      if (on) n.set(j.id, j);
      else n.delete(j.id);
      return n;
    });
  const allSelected = selected.size > 0 && loadedJobs().every((j) => selected.has(j.id));
  const selJobs = () => {
    const byId = new Map(loadedJobs().map((j) => [j.id, j]));
    return [...selected.keys()].map((id) => byId.get(id) ?? selected.get(id)!);
  };

  const doStop = async () => {
    const jobs = selJobs();
    const active = jobs.filter((j) => isActive(j.state));
    const done = jobs.length - active.length;
    const ok = await confirmDialog({
      title: active.length ? `Stop ${active.length} job${active.length === 1 ? '' : 's'}?` : 'Nothing to stop',
      body: (
        <div>
          {active.length > 0 && <p>Running jobs get SIGTERM, then SIGKILL after the grace period; queued jobs leave the queue.</p>}
          {done > 0 && (
            <p class="note">
              {done} selected job{done === 1 ? ' has' : 's have'} already finished and {done === 1 ? 'is' : 'are'} left as {done === 1 ? 'it is' : 'they are'}.
            </p>
          )}
        </div>
      ),
      confirm: 'Stop',
      danger: true,
      confirmDisabled: active.length === 0,
    });
    if (!ok) return;
    toast(`Stopping ${active.length} job${active.length === 1 ? '' : 's'}…`);
    const stopped = await Promise.all(
      active.map((j) =>
        api.stopAndWait(j.id).then(
          () => true,
          (e) => (toastError(e, `Stop ${shortId(j.id)}`), false),
        ),
      ),
    );
    const n = stopped.filter(Boolean).length;
    if (n) toast(`Stopped ${n} job${n === 1 ? '' : 's'}`, 'success');
    list.refresh();
  };

  const doDelete = async () => {
    const jobs = selJobs();
    const finished = jobs.filter((j) => isFinished(j.state));
    const blocked = jobs.filter((j) => !isFinished(j.state));
    const ok = await confirmDialog({
      title: finished.length ? `Delete ${finished.length} job${finished.length === 1 ? '' : 's'}?` : 'These jobs cannot be deleted',
      body: (
        <div data-testid="delete-dialog">
          {finished.length > 0 && <p>Their records, logs, archives and artifacts are deleted. This cannot be undone.</p>}
          {blocked.length > 0 && (
            <div class="warn" data-testid="cannot-delete">
              <strong>
                {blocked.length} job{blocked.length === 1 ? ' is' : 's are'} still queued or running and cannot be deleted.
              </strong>{' '}
              Stop {blocked.length === 1 ? 'it' : 'them'} first:
              <ul class="idlist">
                {blocked.slice(0, 6).map((j) => (
                  <li key={j.id}>
                    <span class="mono">{shortId(j.id)}</span> <StateBadge state={j.state} />
                  </li>
                ))}
                {blocked.length > 6 && <li>… and {blocked.length - 6} more</li>}
              </ul>
            </div>
          )}
        </div>
      ),
      confirm: finished.length ? `Delete ${finished.length}` : 'Delete',
      danger: true,
      confirmDisabled: finished.length === 0,
    });
    if (!ok) return;
    let n = 0;
    const gone = new Set<string>();
    for (const j of finished) {
      try {
        await api.remove(j.id);
        gone.add(j.id);
        n++;
      } catch (e) {
        toastError(e, `Delete ${shortId(j.id)}`);
      }
    }
    if (n) toast(`Deleted ${n} job${n === 1 ? '' : 's'}`, 'success');
    setSelected(new Map([...selected].filter(([k]) => !gone.has(k))));
    list.refresh();
    reloadProject();
  };

  const openEditor = (col: string, el: HTMLElement) => {
    const r = el.getBoundingClientRect();
    setEditor({ col, x: Math.min(r.left, window.innerWidth - 340), y: r.bottom + 4 });
  };
  const editorField = editor ? filterFieldOf(editor.col) : null;
  const sampleFor = (col: string): unknown[] => {
    const jobs = loadedJobs().slice(0, 300);
    if (col.startsWith('param:')) return jobs.map((j) => j.params[col.slice(6)]).filter((v) => v !== undefined);
    if (col.startsWith('metric:')) return jobs.map((j) => metricOf(j, col.slice(7))?.last).filter((v) => v !== undefined);
    if (col === 'duration') return jobs.map((j) => jobDuration(j)).filter((v) => v !== undefined);
    return [];
  };

  const filterOptions = [
    { id: 'state', label: 'Status' },
    { id: 'id', label: 'Job ID' },
    { id: 'user', label: 'User' },
    { id: 'tags', label: 'Tag' },
    { id: 'created_at', label: 'Launched' },
    { id: 'duration', label: 'Duration' },
    ...s.params.map((p) => ({ id: 'param:' + p, label: p, group: 'Parameters' })),
    ...s.metrics.map((m) => ({ id: 'metric:' + m, label: m, group: 'Metrics' })),
  ];

  // Cell tooltips (full values, metric min/max/count) are computed when hovered, not rendered.
  const onCellHover = (e: MouseEvent) => {
    const td = (e.target as HTMLElement).closest<HTMLElement>('.td[data-col]');
    const tr = td?.closest<HTMLElement>('.tr[data-job]');
    if (!td || !tr) return;
    const job = rows.find((r) => r.job?.id === tr.dataset.job)?.job;
    const col = cols.find((c) => c.id === td.dataset.col);
    if (job && col?.title) td.title = col.title(job);
  };

  const hasData = s.loaded && (s.total > 0 || filters.length > 0);
  const colGroups = [
    { name: 'Job', cols: allCols.filter((c) => c.group === 'job').map((c) => ({ id: c.id, label: c.label })) },
    { name: 'Parameters', cols: allCols.filter((c) => c.group === 'param').map((c) => ({ id: c.id, label: c.label })) },
    { name: 'Metrics', cols: allCols.filter((c) => c.group === 'metric').map((c) => ({ id: c.id, label: c.label })) },
  ].filter((g) => g.cols.length);

  const headCell = (c: Col) => {
    const sorted = sort === c.sort || (!sort && c.id === 'created_at');
    const isDesc = sort ? desc : true;
    const fld = fieldOfCol(c.id);
    const filtered = filters.some((f) => f.field === fld);
    const left = layout.left.get(c.id);
    const style: Record<string, string> = { width: c.width + 'px' };
    if (left !== undefined) style.left = left + 'px';
    return (
      <div
        key={c.id}
        class={`th g-${c.group}${left !== undefined ? ' sticky' : ''}${sorted ? ' sorted' : ''}`}
        style={style}
        data-col={c.id}
        role="columnheader"
        aria-sort={sorted ? (isDesc ? 'descending' : 'ascending') : 'none'}
      >
        <button class="th-sort" onClick={() => cycleSort(c)} title={c.sort ? `Sort by ${c.label}` : c.label} disabled={!c.sort}>
          {c.group !== 'job' && <span class="th-group">{c.group === 'param' ? 'param' : 'metric'}</span>}
          <span class="th-label">{c.label}</span>
          {sorted && (isDesc ? <IconSortDown size={12} /> : <IconSortUp size={12} />)}
        </button>
        {filterFieldOf(c.id) && (
          <button class={`th-filter${filtered ? ' on' : ''}`} title={`Filter ${c.label}`} aria-label={`Filter ${c.label}`} onClick={(e) => openEditor(c.id, e.currentTarget)}>
            <IconFilter size={12} />
          </button>
        )}
      </div>
    );
  };

  return (
    <div class="page page-wide">
      <ProjectHeader name={project} project={proj} tab="jobs" />

      {proj === null && !s.total && s.loaded && (
        <Empty title={`No project named “${project}”`}>
          <Link href="/projects">See all projects</Link>
        </Empty>
      )}

      {hasData && showChart && s.params.length + s.metrics.length > 0 && (
        <section class="card chart-card">
          <div class="card-head">
            <h3>
              <IconChart /> Parameters and metrics
            </h3>
            <div class="card-tools">
              {filters.some((f) => axes.includes(f.field)) && (
                <button class="btn ghost small" onClick={() => setFilters(filters.filter((f) => !axes.includes(f.field)))}>
                  Clear brushes
                </button>
              )}
              <Popover label="Axes" class="small" align="right" testid="axes-button">
                <ColumnChooser
                  groups={[
                    { name: 'Parameters', cols: s.params.map((p) => ({ id: 'param:' + p, label: p })) },
                    { name: 'Metrics', cols: s.metrics.map((m) => ({ id: 'metric:' + m, label: m })) },
                  ].filter((g) => g.cols.length)}
                  hidden={new Set([...s.params.map((p) => 'param:' + p), ...s.metrics.map((m) => 'metric:' + m)].filter((c) => !axes.includes(c)))}
                  onChange={(h) => {
                    const all = [...s.params.map((p) => 'param:' + p), ...s.metrics.map((m) => 'metric:' + m)];
                    const kept = axes.filter((a) => !h.has(a));
                    const added = all.filter((a) => !h.has(a) && !kept.includes(a));
                    const next = [...kept, ...added];
                    setQuery({ axes: next.length ? next.join(',') : '-' }, { replace: true });
                  }}
                />
              </Popover>
              <button class="icon-btn" title="Hide the chart" aria-label="Hide the chart" onClick={() => setQuery({ chart: '0' }, { replace: true })}>
                <IconX />
              </button>
            </div>
          </div>
          <ParCoords
            project={project}
            axes={axes}
            filters={filters}
            refresh={refreshN}
            ready={list.ready}
            onBrush={(field, f) => setFilters(withFilter(filters, field, f))}
            onAxes={(a) => setQuery({ axes: a.join(',') }, { replace: true })}
          />
        </section>
      )}

      {hasData && (
        <div class="toolbar">
          <label class="search">
            <IconSearch />
            <input
              type="search"
              placeholder="Job ID contains…"
              value={idSearch}
              data-testid="id-search"
              onInput={(e) => setIdSearch(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter') {
                  const v = e.currentTarget.value.trim();
                  setFilters(withFilter(filters, 'id', v ? { field: 'id', op: 'contains', values: [v] } : null));
                }
              }}
              onSearch={(e: Event) => {
                const v = (e.currentTarget as HTMLInputElement).value.trim();
                setFilters(withFilter(filters, 'id', v ? { field: 'id', op: 'contains', values: [v] } : null));
              }}
            />
          </label>
          <Popover label={<><IconFilter /> Filter</>} testid="add-filter">
            {(close) => (
              <div class="menu" data-testid="filter-menu">
                {filterOptions.map((o, i) => {
                  const g = 'group' in o ? o.group : undefined;
                  const prev = i > 0 && 'group' in filterOptions[i - 1] ? (filterOptions[i - 1] as { group?: string }).group : undefined;
                  return (
                    <Fragment key={o.id}>
                      {g && g !== prev && <div class="menu-head">{g}</div>}
                      <button
                        class="menu-item"
                        data-field={o.id}
                        onClick={(e) => {
                          close();
                          openEditor(o.id, (e.currentTarget as HTMLElement).closest('.popover-wrap') as HTMLElement);
                        }}
                      >
                        {o.label}
                      </button>
                    </Fragment>
                  );
                })}
              </div>
            )}
          </Popover>
          <Popover label={<><IconColumns /> Columns</>} testid="columns-button">
            <ColumnChooser groups={colGroups} hidden={hidden} onChange={setHidden} />
          </Popover>
          {!showChart && (
            <button class="btn" onClick={() => setQuery({ chart: null }, { replace: true })}>
              <IconChart /> Chart
            </button>
          )}
          <button class="btn" title="Reload the jobs" onClick={() => (list.refresh(), setRefreshN((n) => n + 1))}>
            <IconRefresh />
          </button>
          <span class="grow" />
          {selected.size > 0 ? (
            <div class="selection-actions" data-testid="selection-actions">
              <span class="sel-count">{selected.size} selected</span>
              <button class="btn" onClick={() => navigate(`/projects/${encodeURIComponent(project)}/compare?ids=${[...selected.keys()].map(encodeURIComponent).join(',')}`)} data-testid="compare-selected">
                <IconCompare /> Compare
              </button>
              <button class="btn" onClick={doStop} data-testid="stop-selected">
                <IconStop /> Stop
              </button>
              <button class="btn danger-outline" onClick={doDelete} data-testid="delete-selected">
                <IconTrash /> Delete
              </button>
              <button class="icon-btn" title="Clear the selection" aria-label="Clear the selection" onClick={() => setSelected(new Map())}>
                <IconX />
              </button>
            </div>
          ) : (
            <span class="subtle" data-testid="job-total">
              {s.total.toLocaleString()} job{s.total === 1 ? '' : 's'}
              {filters.length ? (s.total === 1 ? ' matches' : ' match') : ''}
            </span>
          )}
        </div>
      )}

      {filters.length > 0 && (
        <div class="chips" data-testid="filter-chips">
          {filters.map((f) => (
            <span key={f.field} class="chip" data-field={f.field}>
              <button
                class="chip-body"
                onClick={(e) => {
                  const col = f.field === 'tag' ? 'tags' : f.field;
                  openEditor(col, e.currentTarget as HTMLElement);
                }}
              >
                {describeFilter(f)}
              </button>
              <button
                class="chip-x"
                aria-label={`Remove filter ${colLabel(f.field)}`}
                onClick={() => {
                  if (f.field === 'id') setIdSearch('');
                  setFilters(filters.filter((x) => x !== f));
                }}
              >
                ×
              </button>
            </span>
          ))}
          <button class="link-btn" onClick={() => (setIdSearch(''), setFilters([]))}>
            Clear all
          </button>
        </div>
      )}

      {!s.loaded && (
        <div class="card table-card">
          <div class="skeleton-table">
            {Array.from({ length: 8 }, (_, i) => (
              <div key={i} class="skeleton-row" />
            ))}
          </div>
        </div>
      )}

      {s.loaded && s.total === 0 && !filters.length && proj !== null && (
        <Empty title="No jobs in this project yet">
          <p>Submit one from the project's folder:</p>
          <pre class="cmd">foundations submit scheduler . main.py</pre>
        </Empty>
      )}

      {hasData && (
        <div class="card table-card">
          <div class="grid-scroll" ref={scroller} role="grid" aria-rowcount={s.total} data-testid="jobs-grid">
            <div class="grid-inner" style={{ width: totalWidth + 'px' }}>
              <div class="grid-head" role="row">
                <div class="th sticky select-col" style={{ left: '0px', width: '36px' }}>
                  <input
                    type="checkbox"
                    aria-label="Select all loaded jobs"
                    title="Select all loaded jobs"
                    checked={allSelected}
                    onChange={(e) => {
                      if (e.currentTarget.checked) setSelected(new Map(loadedJobs().map((j) => [j.id, j])));
                      else setSelected(new Map());
                    }}
                  />
                </div>
                {layout.sticky.map((c) => headCell(c))}
                {hWin.pad > 0 && <div class="col-pad" style={{ width: hWin.pad + 'px' }} />}
                {hWin.cols.map((c) => headCell(c))}
              </div>
              <div class="grid-body" style={{ height: Math.max(s.total, 0) * ROW_H + 'px' }} onMouseOver={onCellHover}>
                {rows.map(({ i, job }) =>
                  job ? (
                    <Row
                      key={job.id}
                      i={i}
                      job={job}
                      selected={selected.has(job.id)}
                      sticky={layout.sticky}
                      cols={hWin.cols}
                      pad={hWin.pad}
                      tick={isActive(job.state) ? now : 0}
                      onToggle={toggle}
                    />
                  ) : (
                    <div key={'p' + i} class="tr placeholder" style={{ top: i * ROW_H + 'px', width: totalWidth + 'px' }}>
                      <div class="skeleton-bar" />
                    </div>
                  ),
                )}
              </div>
              {s.total === 0 && (
                <div class="grid-empty">
                  No job matches these filters.{' '}
                  <button class="link-btn" onClick={() => (setIdSearch(''), setFilters([]))}>
                    Clear the filters
                  </button>
                </div>
              )}
            </div>
          </div>
        </div>
      )}

      {editor && editorField && (
        <div class="floating" style={{ left: Math.max(8, editor.x) + 'px', top: editor.y + 'px' }}>
          <div class="floating-backdrop" onMouseDown={() => setEditor(null)} />
          <div class="popover popover-static">
            <FilterEditor
              key={editor.col}
              field={editorField.field}
              kind={editor.col === 'duration' ? 'number' : editorField.kind === 'user' && !proj?.users?.length ? 'text' : editorField.kind}
              users={proj?.users ?? []}
              current={filters.find((f) => f.field === editorField.field)}
              sample={sampleFor(editor.col)}
              onClose={() => setEditor(null)}
              onApply={(f) => {
                setEditor(null);
                if (editorField.field === 'id') setIdSearch(f?.values?.[0] ?? '');
                setFilters(withFilter(filters, editorField.field, f));
              }}
            />
          </div>
        </div>
      )}
    </div>
  );
}
