// A small client for /api/v1 on the same origin. Every failure becomes an ApiError whose message
// is the server's one-line error, ready for a toast.
import type { Filter, Health, Job, JobList, MetricSeries, Note, Project, Queue, Values } from './types';

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
  ) {
    super(message);
  }
}

const enc = encodeURIComponent;

async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch('/api/v1' + path, {
      method,
      signal,
      headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('cannot reach the Atlas server', 0);
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      const j = await res.json();
      if (j && typeof j.error === 'string') msg = j.error;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(msg, res.status);
  }
  return res;
}

async function json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await request(method, path, body, signal);
  return (await res.json()) as T;
}

export interface ListQuery {
  project?: string;
  sort?: string;
  desc?: boolean;
  filters?: Filter[];
  limit?: number;
  offset?: number;
}

export function listQueryString(q: ListQuery): string {
  const p = new URLSearchParams();
  if (q.project) p.set('project', q.project);
  if (q.sort) {
    p.set('sort', q.sort);
    p.set('desc', q.desc ? 'true' : 'false');
  }
  if (q.filters && q.filters.length) p.set('filters', JSON.stringify(q.filters));
  if (q.limit !== undefined) p.set('limit', String(q.limit));
  if (q.offset) p.set('offset', String(q.offset));
  return p.toString();
}

export const api = {
  health: () => json<Health>('GET', '/health'),
  projects: () => json<Project[]>('GET', '/projects'),
  project: (name: string) => json<Project>('GET', `/projects/${enc(name)}`),
  jobs: (q: ListQuery, signal?: AbortSignal) => json<JobList>('GET', `/jobs?${listQueryString(q)}`, undefined, signal),
  job: (id: string, signal?: AbortSignal) => json<Job>('GET', `/jobs/${enc(id)}`, undefined, signal),
  stop: (id: string) => json<Job>('POST', `/jobs/${enc(id)}/stop`),
  remove: (id: string) => request('DELETE', `/jobs/${enc(id)}`).then(() => undefined),
  setTag: (id: string, key: string, value: string) =>
    request('PUT', `/jobs/${enc(id)}/tags/${enc(key)}`, { value }).then(() => undefined),
  deleteTag: (id: string, key: string) => request('DELETE', `/jobs/${enc(id)}/tags/${enc(key)}`).then(() => undefined),
  metric: (id: string, key: string, maxPoints = 2000, signal?: AbortSignal) =>
    json<MetricSeries>('GET', `/jobs/${enc(id)}/metrics/${enc(key)}?max_points=${maxPoints}`, undefined, signal),
  values: (project: string, columns: string[], filters: Filter[], signal?: AbortSignal) => {
    const p = new URLSearchParams();
    for (const c of columns) p.append('column', c);
    if (filters.length) p.set('filters', JSON.stringify(filters));
    return json<Values>('GET', `/projects/${enc(project)}/values?${p}`, undefined, signal);
  },
  setDescription: (project: string, description: string) =>
    request('PUT', `/projects/${enc(project)}/description`, { description }).then(() => undefined),
  notes: (project: string) => json<Note[]>('GET', `/projects/${enc(project)}/notes`),
  addNote: (project: string, author: string, message: string) =>
    json<Note>('POST', `/projects/${enc(project)}/notes`, { author, message }),
  queue: () => json<Queue>('GET', '/queue'),
  clearQueue: (project?: string) =>
    json<{ removed: number; ids: string[] }>('POST', '/queue/clear', project ? { project } : {}),
};

export const logsURL = (id: string, offset = 0, follow = false) =>
  `/api/v1/jobs/${enc(id)}/logs?offset=${offset}${follow ? '&follow=true' : ''}`;
export const artifactURL = (id: string, key: string, download = false) =>
  `/api/v1/jobs/${enc(id)}/artifacts/${enc(key)}${download ? '?download=1' : ''}`;
export const archiveURL = (id: string) => `/api/v1/jobs/${enc(id)}/archive`;
