// The jobs table's column model: the job columns, then one per parameter and per metric the
// project's jobs have; how a cell shows a job, its tooltip text, and which filter a column maps to.
import type { JSX } from 'preact';
import type { ColumnGroup } from '../components/columnchooser';
import { CopyButton, StateBadge, TagChip } from '../components/ui';
import { filterFieldOf } from '../filters';
import { fmtDuration, fmtNumber, fmtTime, fmtValue, fullValue, jobDuration, jobName, shortId } from '../format';
import { Link } from '../router';
import { userMetricsFirst } from '../system';
import { paramOf } from '../types';
import type { Job, Metric } from '../types';

export interface Col {
  id: string;
  label: string;
  group: 'job' | 'param' | 'metric';
  width: number;
  sort?: string;
  cell: (j: Job) => JSX.Element | string;
  title?: (j: Job) => string;
}

const metricOf = (j: Job, key: string): Metric | undefined => j.metrics.find((m) => m.key === key);

// The submitted param names of each page of jobs, read once per page (the page re-renders while
// it scrolls).
const submittedKeys = new WeakMap<Job[], string[]>();
function submittedKeysOf(page: Job[]): string[] {
  let ks = submittedKeys.get(page);
  if (!ks) {
    const set = new Set<string>();
    for (const j of page) for (const k in j.submitted_params ?? {}) set.add(k);
    submittedKeys.set(page, (ks = [...set]));
  }
  return ks;
}

/** The param names of a project's listing, with those the loaded jobs were submitted with but have not logged. */
export function withSubmittedParams(params: string[], pages: Iterable<Job[]>): string[] {
  const known = new Set(params);
  const extra = new Set<string>();
  for (const page of pages) for (const k of submittedKeysOf(page)) if (!known.has(k)) extra.add(k);
  return extra.size ? [...params, ...[...extra].sort()] : params;
}

function metricTitle(m: Metric): string {
  const parts = [`last ${fullValue(m.last)} (step ${m.last_step})`];
  if (m.min !== undefined) parts.push(`min ${fmtNumber(m.min)}`);
  if (m.max !== undefined) parts.push(`max ${fmtNumber(m.max)}`);
  parts.push(`${m.count} point${m.count === 1 ? '' : 's'}`);
  return parts.join(' · ');
}

const TAGS_W = 300;

/** Wide enough for the key in the header, within limits. */
const colWidth = (key: string) => Math.round(Math.max(100, Math.min(220, 7.4 * key.length + 52)));

export function buildColumns(params: string[], metrics: string[]): Col[] {
  const cols: Col[] = [
    { id: 'state', label: 'Status', group: 'job', width: 116, sort: 'state', cell: (j) => <StateBadge state={j.state} /> },
    {
      id: 'id',
      label: 'Job',
      group: 'job',
      width: 210,
      sort: 'id',
      cell: (j) => (
        <span class="idcell">
          <Link href={`/jobs/${encodeURIComponent(j.id)}`} class={j.name ? 'joblink' : 'mono joblink'} title={j.id}>
            {jobName(j)}
          </Link>
          {j.name && <span class="mono subtle jobid">{shortId(j.id)}</span>}
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
      width: TAGS_W,
      // key:value chips, each whole; those that do not fit (by an estimate of their width) are counted.
      cell: (j) => {
        const ks = Object.keys(j.tags);
        let room = TAGS_W - 20 - 32;
        let n = 0;
        for (const k of ks) {
          const w = Math.min(260, 7 * (k.length + (j.tags[k]?.length ?? 0)) + 30);
          if (n > 0 && w > room) break;
          room -= w + 4;
          n++;
        }
        return (
          <span class="tags-cell">
            {ks.slice(0, n).map((k) => (
              <TagChip key={k} k={k} v={j.tags[k]} />
            ))}
            {ks.length > n && <span class="more">+{ks.length - n}</span>}
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
        const logged = k in j.params;
        const v = paramOf(j, k);
        if (v === undefined) return <span class="na">–</span>;
        return <span class={`${typeof v === 'number' ? 'num' : ''}${logged ? '' : ' submitted'}`}>{fmtValue(v)}</span>;
      },
      title: (j) => (k in j.params ? fullValue(j.params[k]) : j.submitted_params && k in j.submitted_params ? `${fullValue(j.submitted_params[k])} (submitted; not logged yet)` : ''),
    });
  for (const k of userMetricsFirst(metrics))
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

/**
 * The columns pinned when the user has not chosen: the status, the job id and the metrics, as
 * many metrics as fit in 60 % of the table's width (viewW), so that the rest can still scroll.
 */
export function defaultPins(cols: Col[], viewW: number): string[] {
  const out = ['state', 'id'];
  let w = 36 + cols.filter((c) => out.includes(c.id)).reduce((n, c) => n + c.width, 0);
  for (const c of cols)
    if (c.group === 'metric' && w + c.width <= viewW * 0.6) {
      out.push(c.id);
      w += c.width;
    }
  return out;
}

/** The columns with the pinned ones first (each group in its own order). */
export const pinnedFirst = (cols: Col[], pins: Set<string>): Col[] => [...cols.filter((c) => pins.has(c.id)), ...cols.filter((c) => !pins.has(c.id))];

/** The filter field a column's header filters (a column id, or its field when they differ). */
export const fieldOfCol = (id: string) => filterFieldOf(id)?.field ?? id;

/** The column chooser's groups: job columns, parameters, metrics (empty groups left out). */
export function columnGroups(cols: Col[]): ColumnGroup[] {
  return [
    { name: 'Job', cols: cols.filter((c) => c.group === 'job').map((c) => ({ id: c.id, label: c.label })) },
    { name: 'Parameters', cols: cols.filter((c) => c.group === 'param').map((c) => ({ id: c.id, label: c.label })) },
    { name: 'Metrics', cols: cols.filter((c) => c.group === 'metric').map((c) => ({ id: c.id, label: c.label })) },
  ].filter((g) => g.cols.length);
}

/** A column's values among some jobs, for the filter editor (its hint, and whether a parameter holds text). */
export function columnValues(jobs: Job[], col: string): unknown[] {
  if (col.startsWith('param:')) return jobs.map((j) => paramOf(j, col.slice(6))).filter((v) => v !== undefined);
  if (col.startsWith('metric:')) return jobs.map((j) => metricOf(j, col.slice(7))?.last).filter((v) => v !== undefined);
  if (col === 'duration') return jobs.map((j) => jobDuration(j)).filter((v) => v !== undefined);
  return [];
}
