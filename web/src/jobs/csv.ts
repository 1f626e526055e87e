// The jobs table as CSV: the columns shown, exact values (not the display's rounding).
import { fullValue, jobDuration } from '../format';
import { paramOf } from '../types';
import type { Job } from '../types';
import type { Col } from './columns';

/** One CSV field: quoted when it holds a comma, a quote or a line break. */
const field = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** A cell's value in the CSV: the exact value, not the display's rounding. */
function csvValue(c: Col, j: Job): string {
  if (c.id.startsWith('param:')) return fullValue(paramOf(j, c.id.slice(6)));
  if (c.id.startsWith('metric:')) return fullValue(j.metrics.find((m) => m.key === c.id.slice(7))?.last);
  switch (c.id) {
    case 'duration': {
      const d = jobDuration(j);
      return d === undefined ? '' : String(Math.round(d * 1000) / 1000);
    }
    case 'tags':
      return Object.entries(j.tags)
        .map(([k, v]) => (v ? `${k}=${v}` : k))
        .join('; ');
    default:
      return fullValue((j as unknown as Record<string, unknown>)[c.id]);
  }
}

/** The CSV text of jobs: a header of column names (param and metric keys, prefixed where a name repeats), a line per job. */
export function jobsCSV(cols: Col[], jobs: Job[]): string {
  // The job's name goes beside its id.
  const at = cols.findIndex((c) => c.id === 'id');
  if (at >= 0) cols = [...cols.slice(0, at + 1), { id: 'name', label: 'Name', group: 'job', width: 0, cell: () => '' }, ...cols.slice(at + 1)];
  const names = cols.map((c) => (c.group === 'job' ? c.id : c.label));
  const heads = cols.map((c, i) => (names.indexOf(names[i]) !== names.lastIndexOf(names[i]) ? `${c.group}:${c.label}` : names[i]));
  return [heads, ...jobs.map((j) => cols.map((c) => csvValue(c, j)))].map((r) => r.map(field).join(',')).join('\r\n') + '\r\n';
}

