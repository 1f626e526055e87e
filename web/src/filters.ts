// Filters of the jobs table, as the API takes them, and how each column is filtered.
import { fmtNumber, fmtTime } from './format';
import type { Filter } from './types';

export type FilterKind = 'state' | 'text' | 'number' | 'time' | 'tag' | 'user';

/** The filter field of a column id, and the kind of editor it gets. */
export function filterFieldOf(col: string): { field: string; kind: FilterKind } | null {
  switch (col) {
    case 'state':
      return { field: 'state', kind: 'state' };
    case 'id':
      return { field: 'id', kind: 'text' };
    case 'user':
      return { field: 'user', kind: 'user' };
    case 'created_at':
      return { field: 'created_at', kind: 'time' };
    case 'duration':
      return { field: 'duration', kind: 'number' };
    case 'tags':
      return { field: 'tag', kind: 'tag' };
  }
  if (col.startsWith('param:') || col.startsWith('metric:')) return { field: col, kind: 'number' };
  return null;
}

export function colLabel(field: string): string {
  if (field.startsWith('param:') || field.startsWith('metric:')) return field.slice(field.indexOf(':') + 1);
  return (
    { state: 'status', id: 'job id', user: 'user', created_at: 'launched', duration: 'duration', tag: 'tag' } as Record<string, string>
  )[field] ?? field;
}

export function parseFilters(s: string | null): Filter[] {
  if (!s) return [];
  try {
    const v = JSON.parse(s);
    return Array.isArray(v) ? v.filter((f) => f && typeof f.field === 'string' && typeof f.op === 'string') : [];
  } catch {
    return [];
  }
}

export const serializeFilters = (fs: Filter[]) => (fs.length ? JSON.stringify(fs) : '');

/** Replaces the filter of a field (null removes it). */
export function withFilter(fs: Filter[], field: string, f: Filter | null): Filter[] {
  const out = fs.filter((x) => x.field !== field);
  if (f) out.push(f);
  return out;
}

const num = (x: number, field: string) => {
  if (field === 'created_at') return fmtTime(new Date(x * 1000).toISOString());
  if (field === 'duration') return `${fmtNumber(x)}s`;
  return fmtNumber(x);
};

/** A short text for a filter chip. */
export function describeFilter(f: Filter): string {
  const name = colLabel(f.field);
  switch (f.op) {
    case 'range':
      if (f.min !== undefined && f.max !== undefined) return `${num(f.min, f.field)} ≤ ${name} ≤ ${num(f.max, f.field)}`;
      if (f.min !== undefined) return `${name} ≥ ${num(f.min, f.field)}`;
      return `${name} ≤ ${num(f.max ?? 0, f.field)}`;
    case 'contains':
      return `${name} contains “${f.values?.[0] ?? ''}”`;
    case 'in':
      return `${name}: ${(f.values ?? []).join(', ')}`;
    case 'exists':
      return `has ${name}`;
  }
  return name;
}
