// Metric charts for one or more jobs: one chart per metric with a line per job, or every chosen
// metric in one chart. Options: smoothing (EMA, the raw series faint behind), the x-axis (step,
// wall time, time since the job's first value), log scale, and grouping the jobs by a param (the
// group's mean with a min-max band). Metrics logged once show as numbers. Series come downsampled
// from the server; with several jobs, each is labelled by the params that differ among them.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { usePollWhileOffline, useTracked } from '../events';
import { fmtDuration, fmtValue, fullValue } from '../format';
import { differingParams, ema, jobLabel } from '../chartdata';
import { defaultMetrics, userMetricsFirst } from '../system';
import { toastError } from '../toast';
import { paramOf } from '../types';
import type { Job, MetricSeries } from '../types';
import { Chart, PALETTE } from './chart';
import type { Band, Series } from './chart';
import { Empty, Loading } from './ui';

interface Props {
  jobs: Job[];
  live?: boolean; // re-read the series when the jobs track new values
  initial?: string[];
  onSelection?: (keys: string[]) => void;
}

export type XAxis = 'step' | 'wall' | 'relative';
const X_LABEL: Record<XAxis, string> = { step: 'step', wall: 'time', relative: 'seconds since start' };

const seriesKey = (id: string, key: string) => id + '\u0000' + key;

export function MetricExplorer({ jobs, live = false, initial, onSelection }: Props) {
  // Numeric metrics (by their last value), in first-seen order; those every job logged at most
  // once are single values, shown as numbers.
  const { numeric, single, textual } = useMemo(() => {
    const num: string[] = [];
    const many = new Set<string>();
    const txt = new Map<string, { job: Job; last: unknown }[]>();
    for (const j of jobs)
      for (const m of j.metrics) {
        if (typeof m.last === 'number' || m.min !== undefined) {
          if (!num.includes(m.key)) num.push(m.key);
          if (m.count > 1) many.add(m.key);
        } else {
          if (!txt.has(m.key)) txt.set(m.key, []);
          txt.get(m.key)!.push({ job: j, last: m.last });
        }
      }
    return { numeric: num.filter((k) => many.has(k)), single: num.filter((k) => !many.has(k)), textual: txt };
  }, [jobs]);

  const [chosen, setChosen] = useState<string[]>(() => (initial?.length ? initial : defaultMetrics(numeric)));
  const [combined, setCombined] = useState(false);
  const [logY, setLogY] = useState(false);
  const [smooth, setSmooth] = useState(0);
  const [xAxis, setXAxis] = useState<XAxis>('step');
  const [groupBy, setGroupBy] = useState('');
  const [data, setData] = useState<Map<string, MetricSeries>>(new Map());
  const [loading, setLoading] = useState(false);
  const fetched = useRef(new Set<string>());

  useEffect(() => {
    // Metrics that appear later (a running job) are offered; keep the choice otherwise.
    if (!chosen.length && numeric.length) setChosen(defaultMetrics(numeric));
  }, [numeric.join(',')]);

  const visible = chosen.filter((k) => numeric.includes(k));
  const jobIds = jobs.map((j) => j.id).join(',');

  const load = (force: boolean) => {
    const want: [string, string][] = [];
    for (const j of jobs) for (const k of visible) if (j.metrics.some((m) => m.key === k)) want.push([j.id, k]);
    const todo = force ? want : want.filter(([id, k]) => !fetched.current.has(seriesKey(id, k)));
    if (!todo.length) return;
    if (!force) setLoading(true);
    for (const [id, k] of todo) fetched.current.add(seriesKey(id, k));
    Promise.all(todo.map(([id, k]) => api.metric(id, k, 2000).then((s) => [seriesKey(id, k), s] as const)))
      .then((res) => {
        setData((d) => {
          const n = new Map(d);
          for (const [key, s] of res) n.set(key, s);
          return n;
        });
        setLoading(false);
      })
      .catch((e) => {
        setLoading(false);
        for (const [id, k] of todo) fetched.current.delete(seriesKey(id, k));
        toastError(e, 'Metrics');
      });
  };

  useEffect(() => load(false), [jobIds, visible.join(','), jobs]);
  // Live: re-read the series of a job when it tracks new values (or every 10 s while the event
  // stream is down).
  useTracked((e) => live && jobs.some((j) => j.id === e.id), () => load(true), 500);
  usePollWhileOffline(() => load(true), 10000, live);

  const multi = jobs.length > 1;
  const differ = useMemo(() => differingParams(jobs), [jobs]);
  const label = (j: Job) => jobLabel(j, differ);
  const groups = useMemo(() => {
    if (!groupBy || !differ.includes(groupBy)) return null;
    const m = new Map<string, Job[]>();
    for (const j of jobs) {
      const v = paramOf(j, groupBy);
      const g = v === undefined ? '–' : fmtValue(v);
      if (!m.has(g)) m.set(g, []);
      m.get(g)!.push(j);
    }
    return m;
  }, [groupBy, differ, jobs]);

  /** A job's series of a metric on the chosen x-axis (null until loaded). */
  const raw = (j: Job, k: string): { xs: number[]; ys: (number | null)[] } | null => {
    const s = data.get(seriesKey(j.id, k));
    if (!s) return null;
    const xs: number[] = [];
    const ys: (number | null)[] = [];
    const t0 = s.points.length ? s.points[0].time : 0;
    for (const p of s.points) {
      if (typeof p.value !== 'number') continue;
      xs.push(xAxis === 'step' ? p.step : xAxis === 'wall' ? p.time : p.time - t0);
      ys.push(logY && p.value <= 0 ? null : p.value);
    }
    return { xs, ys };
  };

  /** A line, with its raw values faint behind it when smoothing. */
  const lines = (xs: number[], ys: (number | null)[], name: string, color: string): Series[] =>
    smooth > 0 ? [{ label: name + ' (raw)', xs, ys, color, faint: true }, { label: name, xs, ys: ema(ys, smooth), color }] : [{ label: name, xs, ys, color }];

  /** The series of one metric: a line per job, or per group its mean with a min-max band. */
  const metricSeries = (k: string, colorAt: (i: number) => string, prefix: string): { series: Series[]; bands: Band[] } => {
    const series: Series[] = [];
    const bands: Band[] = [];
    if (groups) {
      [...groups].forEach(([g, js], gi) => {
        const byX = new Map<number, number[]>();
        for (const j of js) {
          const r = raw(j, k);
          if (!r) continue;
          r.xs.forEach((x, i) => {
            const y = r.ys[i];
            if (y === null) return;
            if (!byX.has(x)) byX.set(x, []);
            byX.get(x)!.push(y);
          });
        }
        if (!byX.size) return;
        const xs = [...byX.keys()].sort((a, b) => a - b);
        const at = (f: (v: number[]) => number) => xs.map((x) => f(byX.get(x)!));
        const color = colorAt(gi);
        const name = `${prefix}${groupBy}=${g} (${js.length})`;
        const lo = series.length;
        series.push({ label: name + ' max', xs, ys: at((v) => Math.max(...v)), color, band: true });
        series.push({ label: name + ' min', xs, ys: at((v) => Math.min(...v)), color, band: true });
        bands.push({ upper: lo, lower: lo + 1, color });
        series.push(...lines(xs, at((v) => v.reduce((a, b) => a + b, 0) / v.length), name + ' mean', color));
      });
      return { series, bands };
    }
    jobs.forEach((j, i) => {
      const r = raw(j, k);
      if (r) series.push(...lines(r.xs, r.ys, multi ? prefix + label(j) : prefix || k, colorAt(i)));
    });
    return { series, bands };
  };

  const charts: { title: string; series: Series[]; bands: Band[]; note?: string }[] = [];
  if (combined) {
    const series: Series[] = [];
    const bands: Band[] = [];
    let c = 0;
    for (const k of visible) {
      const base = c;
      const part = metricSeries(k, (i) => PALETTE[(base + i) % PALETTE.length], visible.length > 1 || !multi ? `${k} · ` : '');
      c += groups ? groups.size : jobs.length;
      for (const b of part.bands) bands.push({ ...b, upper: b.upper + series.length, lower: b.lower + series.length });
      series.push(...part.series);
    }
    if (series.length) charts.push({ title: visible.join(', '), series, bands });
  } else {
    for (const k of visible) {
      const { series, bands } = metricSeries(k, (i) => PALETTE[(multi ? i : numeric.indexOf(k)) % PALETTE.length], '');
      const down = jobs.some((j) => data.get(seriesKey(j.id, k))?.downsampled);
      const total = jobs.reduce((n, j) => n + (data.get(seriesKey(j.id, k))?.total ?? 0), 0);
      if (series.length) charts.push({ title: k, series, bands, note: down ? `${total.toLocaleString()} points, downsampled` : `${total.toLocaleString()} point${total === 1 ? '' : 's'}` });
    }
  }

  if (!numeric.length && !single.length && !textual.size) return <Empty title="No metrics logged">Metrics logged with foundations.log_metric appear here.</Empty>;

  return (
    <div class="metrics" data-testid="metrics">
      {single.length > 0 && (
        <div class="single-values" data-testid="single-values">
          {single.map((k) => (
            <div key={k} class="single-value" data-metric={k}>
              <div class="subtle small">{k}</div>
              {jobs.map((j, i) => {
                const m = j.metrics.find((x) => x.key === k);
                if (!m) return null;
                return (
                  <div key={j.id} class="single-row">
                    {multi && <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />}
                    {multi && <span class="subtle small">{label(j)}</span>}
                    <span class="big-number" title={`${fullValue(m.last)} (step ${m.last_step})`}>
                      {fmtValue(m.last)}
                    </span>
                  </div>
                );
              })}
            </div>
          ))}
        </div>
      )}
      {numeric.length > 0 && (
        <div class="metrics-bar">
          <div class="metric-keys">
            {userMetricsFirst(numeric).map((k) => (
              <label key={k} class={`key-chip${visible.includes(k) ? ' on' : ''}`}>
                <input
                  type="checkbox"
                  checked={visible.includes(k)}
                  onChange={(e) => {
                    const next = e.currentTarget.checked ? [...visible, k] : visible.filter((x) => x !== k);
                    setChosen(next);
                    onSelection?.(next);
                  }}
                />
                {k}
              </label>
            ))}
          </div>
          <div class="metrics-opts">
            <label class="check" title="Exponential moving average; the raw values stay, faint">
              Smoothing
              <input type="range" min="0" max="0.99" step="0.01" value={smooth} onInput={(e) => setSmooth(Number(e.currentTarget.value))} data-testid="smoothing" aria-label="Smoothing" />
              <span class="mono small smooth-value">{smooth.toFixed(2)}</span>
            </label>
            <label class="check">
              X
              <select value={xAxis} onChange={(e) => setXAxis(e.currentTarget.value as XAxis)} data-testid="x-axis" aria-label="X axis">
                <option value="step">step</option>
                <option value="wall">wall time</option>
                <option value="relative">relative time</option>
              </select>
            </label>
            {multi && differ.length > 0 && (
              <label class="check">
                Group by
                <select value={groupBy} onChange={(e) => setGroupBy(e.currentTarget.value)} data-testid="group-by" aria-label="Group by">
                  <option value="">none</option>
                  {differ.map((k) => (
                    <option key={k} value={k}>
                      {k}
                    </option>
                  ))}
                </select>
              </label>
            )}
            <label class="check">
              <input type="checkbox" checked={combined} onChange={(e) => setCombined(e.currentTarget.checked)} /> One chart
            </label>
            <label class="check">
              <input type="checkbox" checked={logY} onChange={(e) => setLogY(e.currentTarget.checked)} /> Log scale
            </label>
          </div>
        </div>
      )}
      {loading && !charts.length && <Loading label="Loading metrics…" />}
      {numeric.length > 0 && !visible.length && <div class="subtle pad">Choose metrics to plot.</div>}
      <div class={combined ? 'chart-grid one' : 'chart-grid'}>
        {charts.map((c) => (
          <div key={c.title + (combined ? '+' : '')} class="chart-box" data-metric={c.title}>
            <div class="chart-title">
              <strong>{c.title}</strong>
              {c.note && <span class="subtle small">{c.note}</span>}
            </div>
            <Chart
              series={c.series}
              bands={c.bands}
              height={combined ? 320 : 220}
              logY={logY}
              xLabel={X_LABEL[xAxis]}
              time={xAxis === 'wall'}
              xValue={xAxis === 'relative' ? (x) => fmtDuration(x) : undefined}
              testid="metric-chart"
            />
          </div>
        ))}
      </div>
      {textual.size > 0 && (
        <div class="text-metrics">
          <h4>Text metrics</h4>
          <table class="kv">
            <tbody>
              {[...textual].map(([k, rows]) => (
                <tr key={k}>
                  <th>{k}</th>
                  <td>{rows.map((r) => (multi ? `${label(r.job)}: ${fmtValue(r.last)}` : fmtValue(r.last))).join(' · ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
