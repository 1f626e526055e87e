// Wire types of the Atlas REST API (docs/openapi.yaml).

export type State = 'queued' | 'starting' | 'running' | 'stopping' | 'completed' | 'failed' | 'stopped';
export const STATES: State[] = ['queued', 'starting', 'running', 'stopping', 'completed', 'failed', 'stopped'];
export const isActive = (s: string) => s === 'queued' || s === 'starting' || s === 'running' || s === 'stopping';
export const isFinished = (s: string) => s === 'completed' || s === 'failed' || s === 'stopped';

export interface Metric {
  key: string;
  last: unknown;
  last_step: number;
  count: number;
  min?: number;
  max?: number;
}

export interface Artifact {
  key: string;
  filename: string;
  digest: string;
  size: number;
  created_at: string;
  url?: string;
}

export interface Worker {
  image?: string;
  entrypoint?: string[];
  command?: string[];
  working_dir?: string;
  volumes?: Record<string, { bind: string; mode: string }>;
  environment?: Record<string, string>;
}

export interface Job {
  id: string;
  name?: string; // human-readable ("brave-otter", or the user's); "" or absent for jobs from before names
  project: string;
  user: string;
  state: State;
  mode: string;
  priority: number;
  parent_id?: string;
  command: string[] | null;
  entrypoint?: string[];
  submitted_params?: Record<string, unknown>;
  num_gpus: number;
  ram_gb?: number;
  worker: Worker;
  run_as?: string;
  bundle_digest?: string;
  archive_digest?: string;
  executor?: string;
  worker_id?: string; // what runs it: "pid 1234" or "container 0123456789ab"
  gpu_ids?: string[];
  exit_code?: number;
  reason?: string;
  stop_requested?: boolean;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  duration_seconds?: number;
  params: Record<string, unknown>;
  metrics: Metric[];
  tags: Record<string, string>;
  artifacts?: Artifact[];
  queue_position?: number;
  waiting_reason?: string;
  search_id?: string; // the search the job is a trial of
  search_trial?: number;
}

/** A job's param: the value it logged, else the one it was submitted with (a queued job has only those). */
export const paramOf = (j: Job, key: string): unknown => (key in j.params ? j.params[key] : j.submitted_params?.[key]);

export interface JobList {
  jobs: Job[];
  total: number;
  params?: string[];
  metrics?: string[];
}

export interface Filter {
  field: string;
  op: 'in' | 'contains' | 'range' | 'exists';
  values?: string[];
  min?: number;
  max?: number;
}

export interface Project {
  name: string;
  created_at: string;
  last_activity: string;
  description: string;
  description_by?: string; // who last edited the description
  description_at?: string; // when (absent: never edited)
  counts: Record<string, number>;
  tags: string[] | null;
  users?: string[] | null; // who submitted jobs to it
  jobs: number;
}

/** One edit of a project's description. */
export interface DescriptionEdit {
  id: number;
  editor: string;
  description: string;
  created_at: string;
}

export interface Note {
  id: number;
  author: string;
  message: string;
  created_at: string;
}

export interface Values {
  ids: string[];
  states: string[];
  created_at: string[];
  columns: Record<string, unknown[]>;
}

export interface MetricSeries {
  key: string;
  total: number;
  downsampled: boolean;
  points: { step: number; value: unknown; time: number }[];
}

export interface Queue {
  /** The head of the queue (the first 500 by default); queued_total counts every queued job. */
  queued: Job[];
  queued_total: number;
  running: Job[];
  workers: number;
  gpus: number;
  executor: string;
}

export interface Health {
  status: string;
  version: string;
  executor: string;
  workers: number;
  gpus: number;
  auth?: boolean;
}

/** GET /whoami and POST /login: whether the server checks tokens, and whose the browser's is. */
export interface Who {
  auth: boolean;
  user?: string;
  admin?: boolean;
}

/** `event: track` of /events: a job tracked new values (at most once a second per job). */
export interface TrackEvent {
  id: string;
  project: string;
  search?: string; // the search the job is a trial of
}

export interface JobEvent {
  id: string;
  project: string;
  state: State;
  deleted?: boolean;
  search?: string; // the search the job is a trial of
}

/** `event: search` of /events: a search changed (its state, or a decision at a rung). */
export interface SearchEvent {
  search: string;
  project: string;
  search_state?: string;
}

export type SearchState = 'running' | 'stopping' | 'completed' | 'stopped' | 'failed';

export interface SearchConfig {
  method: 'grid' | 'random' | 'asha' | 'median';
  metric: string;
  smaller_is_better: boolean;
  time_attribute: string;
  max_trials: number;
  max_concurrent_trials: number;
  seed?: number;
  reduction_factor?: number;
  min_steps?: number;
  max_steps?: number;
  params: Record<string, unknown>;
}

export interface SearchRung {
  rung: number;
  step: number;
  value: number;
  stop: boolean;
}

export interface SearchTrial {
  trial: number;
  job_id: string;
  state: State;
  reason?: string;
  params: Record<string, unknown>;
  value?: number; // the best value of the metric
  last?: number;
  last_step: number;
  count: number;
  rungs?: SearchRung[];
  stopped_at?: number; // the rung step the search stopped it at
  created_at: string;
  started_at?: string;
  finished_at?: string;
}

export interface Search {
  id: string;
  project: string;
  user: string;
  state: SearchState;
  reason?: string;
  config: SearchConfig;
  rungs?: number[];
  trials_planned: number;
  trials_submitted: number;
  counts: Record<string, number>;
  best?: SearchTrial;
  warnings?: string[];
  created_at: string;
  finished_at?: string;
  trials?: SearchTrial[];
  version: string;
}
