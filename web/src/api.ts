// A small client for /api/v1 on the same origin. Every failure becomes an ApiError whose message
// is the server's one-line error, ready for a toast.
import type { DescriptionEdit, Filter, Health, Job, JobList, MetricSeries, Note, Project, Queue, Search, Values, Who } from './types';

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
  ) {
    super(message);
  }
}

const enc = encodeURIComponent;

// Called when the server answers 401: authentication is on and the browser's cookie is missing,
// invalid or revoked. The app shows its sign-in page (auth.ts).
let onUnauthorized: (msg: string) => void = () => {};
export function setUnauthorizedHandler(fn: (msg: string) => void) {
  onUnauthorized = fn;
}
export const unauthorized = (msg: string) => onUnauthorized(msg);

/** The server's one-line error of a failed response, or its status line. */
export async function errorMessage(res: Response): Promise<string> {
  try {
    const j = await res.json();
    if (j && typeof j.error === 'string') return j.error;
  } catch {
    /* not JSON: keep the status line */
  }
  return `${res.status} ${res.statusText}`;
}

interface Opts {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  quiet401?: boolean; // a 401 is the answer itself (login), not a reason to sign in
}

async function request(method: string, path: string, body?: unknown, opts: Opts = {}): Promise<Response> {
  let res: Response;
  const headers: Record<string, string> = { ...opts.headers };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    res = await fetch('/api/v1' + path, {
      method,
      signal: opts.signal,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('cannot reach the Atlas server', 0);
  }
  if (!res.ok) {
    const msg = await errorMessage(res);
    if (res.status === 401 && !opts.quiet401) onUnauthorized(msg);
    throw new ApiError(msg, res.status);
  }
  return res;
}

async function json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal, opts: Opts = {}): Promise<T> {
  const res = await request(method, path, body, { ...opts, signal });
  return (await res.json()) as T;
}

/**
 * Signs in: the server checks the token and keeps it in an HttpOnly cookie. The token also goes
 * in the Authorization header when the first try fails, because the server refuses every
 * request, login included, that carries a revoked cookie; the header wins over the cookie.
 */
async function login(token: string): Promise<Who> {
  try {
    return await json<Who>('POST', '/login', { token }, undefined, { quiet401: true });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401 || !token || /[^\x21-\x7e]/.test(token)) throw e;
    try {
      return await json<Who>('POST', '/login', { token }, undefined, { quiet401: true, headers: { Authorization: 'Bearer ' + token } });
    } catch {
      throw e; // the first answer is the login's own message
    }
  }
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
  whoami: () => json<Who>('GET', '/whoami'),
  login,
  logout: () => request('POST', '/logout', undefined, { quiet401: true }).then(() => undefined),
  projects: () => json<Project[]>('GET', '/projects'),
  project: (name: string) => json<Project>('GET', `/projects/${enc(name)}`),
  jobs: (q: ListQuery, signal?: AbortSignal) => json<JobList>('GET', `/jobs?${listQueryString(q)}`, undefined, signal),
  job: (id: string, signal?: AbortSignal) => json<Job>('GET', `/jobs/${enc(id)}`, undefined, signal),
  stop: (id: string) => json<Job>('POST', `/jobs/${enc(id)}/stop`),
  /** Stops a job and waits (the server's long poll) until it has really stopped: signal, grace, kill, archive. */
  stopAndWait: async (id: string, onStopping?: () => void) => {
    let j = await json<Job>('POST', `/jobs/${enc(id)}/stop`);
    if (j.state === 'stopping') onStopping?.();
    while (j.state === 'stopping') j = await json<Job>('GET', `/jobs/${enc(id)}?wait_while=stopping&timeout=60s`);
    return j;
  },
  /** Queues a copy of a job with some params changed; answers like a submission. */
  clone: (id: string, params: Record<string, unknown>, name?: string) => json<{ job: Job }>('POST', `/jobs/${enc(id)}/clone`, { params, ...(name ? { name } : {}) }),
  remove: (id: string) => request('DELETE', `/jobs/${enc(id)}`).then(() => undefined),
  setTag: (id: string, key: string, value: string) => request('PUT', `/jobs/${enc(id)}/tags/${enc(key)}`, { value }).then(() => undefined),
  deleteTag: (id: string, key: string) => request('DELETE', `/jobs/${enc(id)}/tags/${enc(key)}`).then(() => undefined),
  metric: (id: string, key: string, maxPoints = 2000, signal?: AbortSignal) =>
    json<MetricSeries>('GET', `/jobs/${enc(id)}/metrics/${enc(key)}?max_points=${maxPoints}`, undefined, signal),
  values: (project: string, columns: string[], filters: Filter[], signal?: AbortSignal) => {
    const p = new URLSearchParams();
    for (const c of columns) p.append('column', c);
    if (filters.length) p.set('filters', JSON.stringify(filters));
    return json<Values>('GET', `/projects/${enc(project)}/values?${p}`, undefined, signal);
  },
  /** editor: who edits, recorded without --auth (with it, the server signs the edit). */
  setDescription: (project: string, description: string, editor: string) =>
    request('PUT', `/projects/${enc(project)}/description`, { description, editor }).then(() => undefined),
  descriptionHistory: (project: string) => json<DescriptionEdit[]>('GET', `/projects/${enc(project)}/description/history`),
  notes: (project: string) => json<Note[]>('GET', `/projects/${enc(project)}/notes`),
  addNote: (project: string, author: string, message: string) =>
    json<Note>('POST', `/projects/${enc(project)}/notes`, { author, message }),
  queue: () => json<Queue>('GET', '/queue'),
  searches: (project: string) => json<Search[]>('GET', `/searches?project=${enc(project)}`),
  search: (id: string, signal?: AbortSignal) => json<Search>('GET', `/searches/${enc(id)}`, undefined, signal),
  stopSearch: (id: string) => json<Search>('POST', `/searches/${enc(id)}/stop`),
  clearQueue: (project?: string) =>
    json<{ removed: number; ids: string[] }>('POST', '/queue/clear', project ? { project } : {}),
};

/** The log from a byte offset, or (tailBytes) from the first whole line of its last bytes. */
export const logsURL = (id: string, offset = 0, follow = false, tailBytes = 0) =>
  `/api/v1/jobs/${enc(id)}/logs?${tailBytes ? `tail_bytes=${tailBytes}` : `offset=${offset}`}${follow ? '&follow=true' : ''}`;
export const artifactURL = (id: string, key: string, download = false) =>
  `/api/v1/jobs/${enc(id)}/artifacts/${enc(key)}${download ? '?download=1' : ''}`;
export const archiveURL = (id: string) => `/api/v1/jobs/${enc(id)}/archive`;
