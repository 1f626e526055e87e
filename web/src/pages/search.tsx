// A hyperparameter search: its state and best trial, the metric curves of its trials (those
// the search stopped marked at their rung), the best value so far over time, parallel
// coordinates of params against the metric, and the table of trials, sortable by the metric.
// Each trial links to its job; each job of a search links back here.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { Chart, PALETTE } from '../components/chart';
import type { Series } from '../components/chart';
import { CountPills } from '../components/counts';
import { IconChevron, IconStop } from '../components/icons';
import { ParCoords } from '../components/parcoords';
import { ProjectHeader, useProject } from '../components/projectheader';
import { confirmDialog, CopyButton, Empty, Loading, StateBadge } from '../components/ui';
import { debounce, useJobEvents, usePollWhileOffline, useSearchEvents, useTracked } from '../events';
import { fmtNumber, fmtTime, fmtValue, fullValue, shortId } from '../format';
import { Link, projectHref } from '../router';
import { toast, toastError } from '../toast';
import type { Filter, MetricSeries, Search, SearchTrial, Values } from '../types';

/** A search's params flattened: {net: {layers: 2}} is net.layers = 2, lists by index. */
export function flatParams(p: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(p)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatParams(v as Record<string, unknown>, key, out);
    else if (Array.isArray(v)) v.forEach((x, i) => (x && typeof x === 'object' ? flatParams(x as Record<string, unknown>, `${key}.${i}`, out) : (out[`${key}.${i}`] = x)));
    else out[key] = v;
  }
  return out;
}

/** The best value so far at every time a trial logged the metric: [times, values]. */
export function bestSoFar(points: { time: number; value: number }[], smallerIsBetter: boolean): [number[], number[]] {
  const sorted = [...points].sort((a, b) => a.time - b.time);
  const xs: number[] = [];
  const ys: number[] = [];
  let best: number | undefined;
  for (const p of sorted) {
    if (best === undefined || (smallerIsBetter ? p.value < best : p.value > best)) {
      best = p.value;
      xs.push(p.time);
      ys.push(best);
    }
  }
  if (xs.length && sorted.length) {
    // The line goes on to the last value logged: the best has held since.
    const last = sorted[sorted.length - 1].time;
    if (last > xs[xs.length - 1]) (xs.push(last), ys.push(best!));
  }
  return [xs, ys];
}

// The trials whose curves are drawn and fetched: the best ones first.
const MAX_CURVES = 100;

/** The metric series of a search's trials, fetched again when a trial logged more. */
function useTrialSeries(s: Search | null): Map<string, MetricSeries> {
  const [data, setData] = useState<Map<string, MetricSeries>>(new Map());
  const fetched = useRef(new Map<string, number>()); // job id -> count fetched
  useEffect(() => {
    if (!s?.trials) return;
    const want = ranked(s).slice(0, MAX_CURVES).filter((t) => t.count > 0 && fetched.current.get(t.job_id) !== t.count);
    if (!want.length) return;
    let dead = false;
    (async () => {
      const got: [string, MetricSeries][] = [];
      for (let i = 0; i < want.length; i += 6) {
        const part = want.slice(i, i + 6);
        const res = await Promise.all(part.map((t) => api.metric(t.job_id, s.config.metric, 500).then((m) => [t.job_id, m] as [string, MetricSeries], () => null)));
        for (const [k, t] of part.entries()) if (res[k]) (got.push(res[k]!), fetched.current.set(t.job_id, t.count));
      }
      if (!dead && got.length)
        setData((d) => {
          const n = new Map(d);
          for (const [id, m] of got) n.set(id, m);
          return n;
        });
    })();
    return () => {
      dead = true;
    };
  }, [s?.version]);
  return data;
}

/** Trials, the best first (those without a value last, by number). */
function ranked(s: Search): SearchTrial[] {
  const sign = s.config.smaller_is_better ? 1 : -1;
  return [...(s.trials ?? [])].sort((a, b) => {
    if (a.value === undefined || b.value === undefined) return a.value === undefined ? (b.value === undefined ? a.trial - b.trial : 1) : -1;
    return sign * (a.value - b.value) || a.trial - b.trial;
  });
}

function numeric(points: MetricSeries['points']): { step: number; time: number; value: number }[] {
  return points.filter((p): p is { step: number; time: number; value: number } => typeof p.value === 'number');
}

function Curves({ s, series }: { s: Search; series: Map<string, MetricSeries> }) {
  const out: Series[] = [];
  const stopX: number[] = [];
  const stopY: number[] = [];
  const shown = ranked(s).slice(0, MAX_CURVES);
  let c = 0;
  for (const t of shown) {
    const m = series.get(t.job_id);
    if (!m) continue;
    const pts = numeric(m.points);
    const stopped = t.stopped_at !== undefined;
    out.push({ label: `trial ${t.trial}`, xs: pts.map((p) => p.step), ys: pts.map((p) => p.value), color: stopped ? '#b9bfc9' : PALETTE[c++ % PALETTE.length], width: stopped ? 1 : 1.6 });
    if (stopped) {
      const r = t.rungs?.find((r) => r.stop);
      if (r) (stopX.push(r.step), stopY.push(r.value));
    }
  }
  if (stopX.length) out.push({ label: 'stopped at its rung', xs: stopX, ys: stopY, color: '#d64d4d', points: true });
  if (!out.length) return <div class="subtle pad">No trial has logged {s.config.metric} yet.</div>;
  return (
    <>
      <Chart series={out} height={280} xLabel={s.config.time_attribute === 'count' ? 'values logged' : 'step'} legend={false} testid="trial-curves" />
      <div class="subtle small chart-note">
        {stopX.length ? (
          <>
            <span class="stop-mark" /> {stopX.length} trial{stopX.length === 1 ? '' : 's'} stopped early, marked where the search stopped {stopX.length === 1 ? 'it' : 'them'} (grey lines).{' '}
          </>
        ) : null}
        {(s.trials?.length ?? 0) > MAX_CURVES ? `The best ${MAX_CURVES} of ${s.trials!.length} trials.` : ''}
      </div>
    </>
  );
}

function BestSoFar({ s, series }: { s: Search; series: Map<string, MetricSeries> }) {
  const pts: { time: number; value: number }[] = [];
  for (const m of series.values()) pts.push(...numeric(m.points));
  const [xs, ys] = bestSoFar(pts, s.config.smaller_is_better);
  if (!xs.length) return <div class="subtle pad">No value yet.</div>;
  return <Chart series={[{ label: `best ${s.config.metric}`, xs, ys, color: PALETTE[2] }]} height={280} xLabel="time" time testid="best-so-far" />;
}

type SortKey = 'trial' | 'value' | 'state' | 'last_step' | `param:${string}`;

function TrialsTable({ s, keys, visible }: { s: Search; keys: string[]; visible: Set<string> | null }) {
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'value', desc: !s.config.smaller_is_better });
  const flat = useMemo(() => new Map((s.trials ?? []).map((t) => [t.job_id, flatParams(t.params)])), [s.version]);
  const rows = (s.trials ?? []).filter((t) => !visible || visible.has(t.job_id));
  const val = (t: SearchTrial): unknown => {
    if (sort.key === 'value') return t.value;
    if (sort.key.startsWith('param:')) return flat.get(t.job_id)?.[sort.key.slice(6)];
    return t[sort.key as 'trial' | 'state' | 'last_step'];
  };
  rows.sort((a, b) => {
    const x = val(a),
      y = val(b);
    if (x === undefined || x === null || y === undefined || y === null) return x === y ? a.trial - b.trial : x === undefined || x === null ? 1 : -1;
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return (sort.desc ? -c : c) || a.trial - b.trial;
  });
  const head = (key: SortKey, label: string, cls = '') => (
    <th
      class={`sortable ${cls}${sort.key === key ? ' sorted' : ''}`}
      data-sort={key}
      onClick={() => setSort(sort.key === key ? { key, desc: !sort.desc } : { key, desc: key === 'value' ? !s.config.smaller_is_better : false })}
      aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : 'none'}
    >
      {label}
      {sort.key === key ? (sort.desc ? ' ↓' : ' ↑') : ''}
    </th>
  );
  return (
    <div class="table-scroll">
      <table class="table trials-table" data-testid="trials">
        <thead>
          <tr>
            {head('trial', '#', 'num')}
            <th>Job</th>
            {head('state', 'State')}
            {head('value', `${s.config.metric} (best)`, 'num')}
            {head('last_step', 'Last step', 'num')}
            {keys.map((k) => head(`param:${k}`, k))}
            <th>Stopped / reason</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((t) => (
            <tr key={t.job_id} data-trial={t.trial} data-state={t.state} class={s.best?.trial === t.trial ? 'best-row' : ''}>
              <td class="num">{t.trial}</td>
              <td>
                <Link class="mono joblink" href={`/jobs/${encodeURIComponent(t.job_id)}`} title={t.job_id}>
                  {shortId(t.job_id)}
                </Link>
              </td>
              <td>
                <StateBadge state={t.state} compact />
              </td>
              <td class="num" data-col="value" title={t.value === undefined ? '' : String(t.value)}>
                {t.value === undefined ? '–' : fmtNumber(t.value)}
                {s.best?.trial === t.trial && <span class="best-mark" title="The best so far"> ★</span>}
              </td>
              <td class="num">{t.count ? t.last_step : '–'}</td>
              {keys.map((k) => {
                const v = flat.get(t.job_id)?.[k];
                return (
                  <td key={k} class={typeof v === 'number' ? 'num' : ''} title={fullValue(v)}>
                    {fmtValue(v)}
                  </td>
                );
              })}
              <td class="reason" data-col="reason">
                {t.stopped_at !== undefined ? <span class="stopped-at">stopped at step {t.stopped_at}</span> : t.reason ?? ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function describe(s: Search): string {
  const c = s.config;
  let out = `${c.method} · ${c.metric} (${c.smaller_is_better ? 'smaller' : 'larger'} is better)`;
  if (c.method !== 'grid' && c.seed !== undefined) out += ` · seed ${c.seed}`;
  if (s.rungs?.length) out += ` · rungs at steps ${s.rungs.join(', ')}`;
  return out;
}

export function SearchPage({ id }: { id: string }) {
  const [s, setS] = useState<Search | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [axes, setAxes] = useState<string[] | null>(null);
  const [brushes, setBrushes] = useState<Filter[]>([]);
  const load = () =>
    api.search(id).then(
      (x) => {
        setS(x);
        setError(null);
      },
      (e) => setError(e),
    );
  const [reload] = useState(() => debounce(load, 300));
  useEffect(() => void load(), [id]);
  useEffect(() => {
    document.title = `Search ${shortId(id)} · Atlas`;
  }, [id]);
  useJobEvents((e) => (!e || e.search === id) && reload());
  useSearchEvents((e) => e.search === id && reload());
  useTracked((e) => e.search === id, reload, 1000);
  usePollWhileOffline(load, 10000, s?.state === 'running' || s?.state === 'stopping');
  const series = useTrialSeries(s);

  const keys = useMemo(() => {
    const set = new Set<string>();
    for (const t of s?.trials ?? []) for (const k of Object.keys(flatParams(t.params))) set.add(k);
    return [...set].sort();
  }, [s?.version]);
  const metricField = s ? `metric:${s.config.metric}` : '';
  const allAxes = useMemo(() => [...keys.map((k) => `param:${k}`), metricField], [keys.join('\u0000'), metricField]);
  const shownAxes = axes?.filter((a) => allAxes.includes(a)) ?? allAxes.slice(-8);
  const values: Values | undefined = useMemo(() => {
    if (!s?.trials) return undefined;
    const ts = s.trials;
    const flats = ts.map((t) => flatParams(t.params));
    const columns: Record<string, unknown[]> = {};
    for (const k of keys) columns[`param:${k}`] = flats.map((f) => f[k] ?? null);
    columns[metricField] = ts.map((t) => t.value ?? null);
    return { ids: ts.map((t) => t.job_id), states: ts.map((t) => t.state), created_at: ts.map((t) => t.created_at), columns };
  }, [s?.version, keys.join('\u0000')]);
  // The trials inside every brush of the chart.
  const visible = useMemo(() => {
    if (!values || !brushes.length) return null;
    const ok = new Set<string>();
    values.ids.forEach((jobId, i) => {
      const inside = brushes.every((f) => {
        const v = values.columns[f.field]?.[i];
        if (f.op === 'range') return typeof v === 'number' && (f.min === undefined || v >= f.min) && (f.max === undefined || v <= f.max);
        return v !== null && v !== undefined && (f.values ?? []).includes(fmtValue(v));
      });
      if (inside) ok.add(jobId);
    });
    return ok;
  }, [values, JSON.stringify(brushes)]);

  if (error && !s)
    return (
      <div class="page">
        <Empty title={error.status === 404 ? 'No such search' : 'Could not load the search'}>
          <p>{error.message}</p>
          <Link href="/projects">Go to the projects</Link>
        </Empty>
      </div>
    );
  if (!s) return <div class="page"><Loading label="Loading the search…" /></div>;

  const stop = async () => {
    const ok = await confirmDialog({
      title: 'Stop this search?',
      body: <p>No more trials are submitted; its queued trials leave the queue and its running trials get SIGTERM, then SIGKILL after the grace period.</p>,
      confirm: 'Stop search',
      danger: true,
    });
    if (!ok) return;
    try {
      setS(await api.stopSearch(s.id));
      toast('Stopping the search and its trials');
    } catch (e) {
      toastError(e, 'Stop');
    }
  };

  const searchesURL = `/projects/${encodeURIComponent(s.project)}/searches`;
  return (
    <div class="page page-wide search-page" data-testid="search-page" data-state={s.state}>
      <div class="crumbs">
        <Link href="/projects">Projects</Link>
        <IconChevron size={12} />
        <Link href={projectHref(s.project)}>{s.project}</Link>
        <IconChevron size={12} />
        <Link href={searchesURL}>Searches</Link>
        <IconChevron size={12} />
        <span class="mono">{shortId(s.id)}</span>
      </div>
      <div class="job-head">
        <div class="job-title">
          <StateBadge state={s.state} />
          <h1 class="mono">Search {s.id}</h1>
          <CopyButton text={s.id} label="Copy search id" />
        </div>
        <div class="job-actions">
          {(s.state === 'running' || s.state === 'stopping') && (
            <button class="btn danger" onClick={stop} disabled={s.state === 'stopping'} data-testid="stop-search">
              <IconStop /> {s.state === 'stopping' ? 'Stopping…' : 'Stop search'}
            </button>
          )}
        </div>
      </div>
      <div class="subtle search-describe" data-testid="search-describe">
        {describe(s)}
      </div>
      <div class="stat-strip">
        <div class="stat">
          <span class="stat-k">Trials</span>
          <span class="stat-v" data-testid="search-trials">
            {s.trials_submitted} of {s.trials_planned}
          </span>
        </div>
        <div class="stat">
          <span class="stat-k">Best {s.config.metric}</span>
          <span class="stat-v" data-testid="search-best">
            {s.best?.value !== undefined ? (
              <>
                {fmtNumber(s.best.value)}{' '}
                <Link class="subtle small" href={`/jobs/${encodeURIComponent(s.best.job_id)}`}>
                  trial {s.best.trial}
                </Link>
              </>
            ) : (
              '–'
            )}
          </span>
        </div>
        <div class="stat">
          <span class="stat-k">Started</span>
          <span class="stat-v">{fmtTime(s.created_at, true)}</span>
        </div>
        <div class="stat">
          <span class="stat-k">Finished</span>
          <span class="stat-v">{fmtTime(s.finished_at, true) || '–'}</span>
        </div>
        <div class="stat">
          <span class="stat-k">User</span>
          <span class="stat-v">{s.user}</span>
        </div>
        <div class="stat grow">
          <CountPills counts={s.counts} />
        </div>
      </div>
      {s.reason && (
        <div class={`alert ${s.state === 'failed' ? 'alert-failed' : 'alert-stopped'}`} data-testid="search-reason">
          {s.reason}
        </div>
      )}
      {(s.warnings ?? []).map((w) => (
        <div key={w} class="alert alert-queued" data-testid="search-warning">
          {w}
        </div>
      ))}
      <div class="chart-grid">
        <section class="chart-box">
          <div class="chart-title">
            <strong>{s.config.metric} of every trial</strong>
          </div>
          <Curves s={s} series={series} />
        </section>
        <section class="chart-box">
          <div class="chart-title">
            <strong>Best {s.config.metric} so far</strong>
          </div>
          <BestSoFar s={s} series={series} />
        </section>
      </div>
      <section class="card search-section">
        <div class="card-head">
          <h3>Params and {s.config.metric}</h3>
          {brushes.length > 0 && (
            <button class="btn small" onClick={() => setBrushes([])}>
              Clear brushes
            </button>
          )}
        </div>
        <ParCoords
          project={s.project}
          values={values}
          noun="trials"
          axes={shownAxes}
          filters={brushes}
          refresh={0}
          ready
          onBrush={(field, f) => setBrushes((b) => [...b.filter((x) => x.field !== field), ...(f ? [f] : [])])}
          onAxes={setAxes}
        />
      </section>
      <section class="card search-section">
        <div class="card-head">
          <h3>
            Trials <span class="count">{visible ? `${visible.size} of ${s.trials?.length ?? 0}` : s.trials?.length ?? 0}</span>
          </h3>
        </div>
        {(s.trials?.length ?? 0) === 0 ? <div class="empty-row">No trial yet.</div> : <TrialsTable s={s} keys={keys} visible={visible} />}
      </section>
    </div>
  );
}

/** The searches of a project, newest first. */
export function SearchesList({ project }: { project: string }) {
  const [list, setList] = useState<Search[] | null>(null);
  const load = () => api.searches(project).then(setList, (e) => toastError(e, 'Searches'));
  const [reload] = useState(() => debounce(load, 500));
  useEffect(() => void load(), [project]);
  useSearchEvents((e) => e.project === project && reload());
  useJobEvents((e) => (!e || (e.project === project && !!e.search)) && reload());
  if (!list) return <Loading />;
  if (!list.length)
    return (
      <Empty title="No searches yet">
        Start one with <code>foundations search scheduler . main.py</code> and a <code>search:</code> section in job.config.yaml.
      </Empty>
    );
  return (
    <section class="card">
      <table class="table" data-testid="searches">
        <thead>
          <tr>
            <th>State</th>
            <th>Search</th>
            <th>Method</th>
            <th>Metric</th>
            <th class="num">Trials</th>
            <th class="num">Best</th>
            <th>Started</th>
            <th>User</th>
          </tr>
        </thead>
        <tbody>
          {list.map((s) => (
            <tr key={s.id} data-search={s.id}>
              <td>
                <StateBadge state={s.state} compact />
              </td>
              <td>
                <Link class="mono joblink" href={`/searches/${encodeURIComponent(s.id)}`} title={s.id}>
                  {shortId(s.id)}
                </Link>
              </td>
              <td>{s.config.method}</td>
              <td>
                {s.config.metric} <span class="subtle small">({s.config.smaller_is_better ? 'min' : 'max'})</span>
              </td>
              <td class="num">
                {s.trials_submitted} / {s.trials_planned}
              </td>
              <td class="num">{s.best?.value !== undefined ? fmtNumber(s.best.value) : '–'}</td>
              <td>{fmtTime(s.created_at)}</td>
              <td>{s.user}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The Searches tab of a project. */
export function ProjectSearchesPage({ project }: { project: string }) {
  const [p] = useProject(project);
  useEffect(() => {
    document.title = `${project} · searches · Atlas`;
  }, [project]);
  return (
    <div class="page page-wide">
      <ProjectHeader name={project} project={p} tab="searches" />
      <SearchesList project={project} />
    </div>
  );
}
