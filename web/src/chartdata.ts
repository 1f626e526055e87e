// What the charts draw, computed from jobs and values without a browser (tests/units.test.mjs):
// smoothing, series labels, the parallel coordinates' default axes and the overview's x values.
import { fmtValue, fullValue, jobName } from './format';
import { isSystemMetric } from './system';
import { paramOf } from './types';
import type { Job, Values } from './types';

/** Exponential moving average with TensorBoard's debiasing (the first values are not pulled to 0). */
export function ema(ys: ArrayLike<number | null>, weight: number): (number | null)[] {
  const out: (number | null)[] = [];
  let acc = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !Number.isFinite(y)) {
      out.push(null);
      continue;
    }
    acc = acc * weight + (1 - weight) * y;
    n++;
    out.push(acc / (1 - Math.pow(weight, n)));
  }
  return out;
}

/** The params whose values differ among the jobs, the most varied first: what tells their series apart. */
export function differingParams(jobs: Job[]): string[] {
  if (jobs.length < 2) return [];
  const keys = [...new Set(jobs.flatMap((j) => [...Object.keys(j.params), ...Object.keys(j.submitted_params ?? {})]))].sort();
  const distinct = new Map(keys.map((k) => [k, new Set(jobs.map((j) => fullValue(paramOf(j, k)))).size]));
  // The params with the most distinct values (the swept ones) first.
  return keys.filter((k) => distinct.get(k)! > 1).sort((a, b) => distinct.get(b)! - distinct.get(a)! || a.localeCompare(b));
}

/** A job's label among others: the params that differ (k=v), else its name (or id). */
export function jobLabel(j: Job, differ: string[]): string {
  const ps = differ.slice(0, 3).filter((k) => paramOf(j, k) !== undefined);
  return ps.length ? ps.map((k) => `${k}=${fmtValue(paramOf(j, k))}`).join(' ') : jobName(j);
}

/** How many of the varying params, and of the metrics, the chart shows by default. */
const DEFAULT_PARAMS = 5;
const DEFAULT_METRICS = 3;

/**
 * The chart's axes when the URL names none: the params whose values differ among the jobs in
 * view (the swept ones), then the job's own metrics (not the system/ ones every job records).
 * Without jobs that differ, the first params.
 */
export function defaultAxes(jobs: Job[], params: string[], allMetrics: string[]): string[] {
  const metrics = allMetrics.filter((m) => !isSystemMetric(m));
  const distinct = (values: unknown[]) => new Set(values.filter((v) => v !== undefined).map(fullValue)).size;
  const varying = params.filter((p) => distinct(jobs.map((j) => paramOf(j, p))) > 1);
  const chosen = (varying.length ? varying : params).slice(0, DEFAULT_PARAMS);
  const ms = metrics.filter((m) => distinct(jobs.map((j) => j.metrics.find((x) => x.key === m)?.last)) > 1);
  return [...chosen.map((p) => 'param:' + p), ...(ms.length ? ms : metrics).slice(0, DEFAULT_METRICS).map((m) => 'metric:' + m)];
}

/**
 * The x of each job in the overview's chart: launch time (unix seconds), the job's place in launch
 * order (1, 2, …), or a param's value (text values by their sorted order). Jobs that share a
 * value are set a hair apart so that each stays a point of its own. Null: the job lacks the param.
 */
export function overviewXs(vals: Values, xAxis: string): { xs: (number | null)[]; cats: string[] } {
  const created = vals.created_at.map((t) => Date.parse(t) / 1000);
  if (xAxis === 'time') return { xs: created, cats: [] };
  if (xAxis === 'order') {
    const order = created.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const xs = new Array<number>(created.length);
    order.forEach(([, i], rank) => (xs[i] = rank + 1));
    return { xs, cats: [] };
  }
  const col = vals.columns[xAxis] ?? [];
  const numeric = col.every((v) => v === null || v === undefined || typeof v === 'number');
  const cats = numeric ? [] : [...new Set(col.filter((v) => v !== null && v !== undefined).map((v) => fmtValue(v)))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const base = col.map((v) => (v === null || v === undefined ? null : numeric ? (v as number) : cats.indexOf(fmtValue(v))));
  const present = base.filter((x): x is number => x !== null);
  const span = present.length ? Math.max(...present) - Math.min(...present) || 1 : 1;
  const seen = new Map<number, number>();
  return {
    xs: base.map((x) => {
      if (x === null) return null;
      const k = seen.get(x) ?? 0;
      seen.set(x, k + 1);
      return x + k * span * 1e-9;
    }),
    cats,
  };
}

