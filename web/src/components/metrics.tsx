// Metric charts over steps for one or more jobs: one chart per metric with a line per job, or
// every chosen metric in one chart. Series come downsampled from the server.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { usePollWhileOffline, useTracked } from '../events';
import { fmtValue, shortId } from '../format';
import { toastError } from '../toast';
import type { Job, MetricSeries } from '../types';
import { Chart, PALETTE } from './chart';
import type { Series } from './chart';
import { Empty, Loading } from './ui';

interface Props {
  jobs: Job[];
  live?: boolean; // re-read the series when the jobs track new values
  initial?: string[];
  onSelection?: (keys: string[]) => void;
}

const seriesKey = (id: string, key: string) => id + '\u0000' + key;

export function MetricExplorer({ jobs, live = false, initial, onSelection }: Props) {
  // Numeric metrics (by their last value), in first-seen order.
  const { numeric, textual } = useMemo(() => {
    const num: string[] = [];
    const txt = new Map<string, { job: Job; last: unknown }[]>();
    for (const j of jobs)
      for (const m of j.metrics) {
        if (typeof m.last === 'number' || m.min !== undefined) {
          if (!num.includes(m.key)) num.push(m.key);
        } else {
          if (!txt.has(m.key)) txt.set(m.key, []);
          txt.get(m.key)!.push({ job: j, last: m.last });
        }
      }
    return { numeric: num, textual: txt };
  }, [jobs]);

  const [chosen, setChosen] = useState<string[]>(() => (initial?.length ? initial : numeric.slice(0, 6)));
  const [combined, setCombined] = useState(false);
  const [logY, setLogY] = useState(false);
  const [data, setData] = useState<Map<string, MetricSeries>>(new Map());
  const [loading, setLoading] = useState(false);
  const fetched = useRef(new Set<string>());

  useEffect(() => {
    // Metrics that appear later (a running job) are offered; keep the choice otherwise.
    if (!chosen.length && numeric.length) setChosen(numeric.slice(0, 6));
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
  const toSeries = (j: Job, k: string, color: string, label: string): Series | null => {
    const s = data.get(seriesKey(j.id, k));
    if (!s) return null;
    const xs: number[] = [];
    const ys: (number | null)[] = [];
    for (const p of s.points) {
      if (typeof p.value !== 'number') continue;
      xs.push(p.step);
      ys.push(logY && p.value <= 0 ? null : p.value);
    }
    return { label, xs, ys, color };
  };

  const charts: { title: string; series: Series[]; note?: string }[] = [];
  if (combined) {
    const series: Series[] = [];
    let c = 0;
    for (const k of visible)
      for (const j of jobs) {
        const s = toSeries(j, k, PALETTE[c++ % PALETTE.length], multi ? `${shortId(j.id)} · ${k}` : k);
        if (s) series.push(s);
      }
    if (series.length) charts.push({ title: visible.join(', '), series });
  } else {
    for (const k of visible) {
      const series = jobs.map((j, i) => toSeries(j, k, PALETTE[(multi ? i : numeric.indexOf(k)) % PALETTE.length], multi ? shortId(j.id) : k)).filter((s): s is Series => !!s);
      const down = jobs.some((j) => data.get(seriesKey(j.id, k))?.downsampled);
      const total = jobs.reduce((n, j) => n + (data.get(seriesKey(j.id, k))?.total ?? 0), 0);
      if (series.length) charts.push({ title: k, series, note: down ? `${total.toLocaleString()} points, downsampled` : `${total.toLocaleString()} point${total === 1 ? '' : 's'}` });
    }
  }

  if (!numeric.length && !textual.size) return <Empty title="No metrics logged">Metrics logged with foundations.log_metric appear here.</Empty>;

  return (
    <div class="metrics" data-testid="metrics">
      {numeric.length > 0 && (
        <div class="metrics-bar">
          <div class="metric-keys">
            {numeric.map((k) => (
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
            <Chart series={c.series} height={combined ? 320 : 220} logY={logY} testid="metric-chart" />
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
                  <td>{rows.map((r) => (multi ? `${shortId(r.job.id)}: ${fmtValue(r.last)}` : fmtValue(r.last))).join(' · ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
