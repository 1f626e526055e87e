// The job page: state and actions, live logs, metric charts, artifacts, params, tags and
// everything about how the job ran.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, archiveURL } from '../api';
import { Artifacts } from '../components/artifacts';
import { IconChevron, IconCompare, IconCopy, IconDownload, IconPlus, IconStop, IconTrash } from '../components/icons';
import { LogView } from '../components/logview';
import { MetricExplorer } from '../components/metrics';
import { JobPicker } from '../components/jobpicker';
import { confirmDialog, CopyButton, Empty, Loading, StateBadge, TagChip } from '../components/ui';
import { debounce, useJobEvents, usePollWhileOffline, useTracked } from '../events';
import { fmtDuration, fmtTime, fmtValue, fullValue, jobDuration, jobName, shortId } from '../format';
import { CloneDialog } from '../components/clone';
import { Link, navigate, projectHref, setQuery, useLocation } from '../router';
import { toast, toastError } from '../toast';
import { isActive, isFinished } from '../types';
import type { Job } from '../types';

function TagEditor({ job, onChanged }: { job: Job; onChanged: () => void }) {
  const [adding, setAdding] = useState(false);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const add = async (e: Event) => {
    e.preventDefault();
    const t = text.trim();
    if (!t) return;
    const eq = t.indexOf('=');
    const [k, v] = eq > 0 ? [t.slice(0, eq).trim(), t.slice(eq + 1).trim()] : [t, ''];
    setBusy(true);
    try {
      await api.setTag(job.id, k, v);
      setText('');
      setAdding(false);
      onChanged();
    } catch (err) {
      toastError(err, 'Tag');
    } finally {
      setBusy(false);
    }
  };
  const remove = async (k: string) => {
    try {
      await api.deleteTag(job.id, k);
      onChanged();
    } catch (err) {
      toastError(err, 'Tag');
    }
  };
  const keys = Object.keys(job.tags).sort();
  return (
    <div class="tag-editor" data-testid="tags">
      {keys.map((k) => (
        <TagChip key={k} k={k} v={job.tags[k]} onRemove={() => remove(k)} />
      ))}
      {!keys.length && !adding && <span class="subtle small">No tags.</span>}
      {adding ? (
        <form class="tag-form" onSubmit={add}>
          <input
            type="text"
            placeholder="name or name=value"
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            onKeyDown={(e) => e.key === 'Escape' && setAdding(false)}
            autoFocus
            disabled={busy}
            aria-label="New tag"
            data-testid="tag-input"
          />
          <button class="btn small primary" type="submit" disabled={busy || !text.trim()}>
            Add
          </button>
          <button class="btn small" type="button" onClick={() => setAdding(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <button class="btn small ghost" onClick={() => setAdding(true)} data-testid="add-tag">
          <IconPlus size={13} /> Tag
        </button>
      )}
    </div>
  );
}

/** The job's metric charts, with other jobs of the project overlaid (?with=id,id in the URL). */
function JobMetrics({ job, live }: { job: Job; live: boolean }) {
  const loc = useLocation();
  const withIds = (loc.query.get('with') ?? '').split(',').filter((x) => x && x !== job.id);
  const [others, setOthers] = useState<Job[]>([]);
  useEffect(() => {
    Promise.all(withIds.map((id) => api.job(id).catch((e) => (toastError(e, shortId(id)), null)))).then((js) => setOthers(js.filter((j): j is Job => !!j)));
  }, [withIds.join(',')]);
  const setWith = (ids: string[]) => setQuery({ with: ids.join(',') || null }, { replace: true });
  const shown = others.filter((o) => withIds.includes(o.id));
  return (
    <div class="job-metrics">
      <div class="overlay-bar">
        <span class="subtle small">Overlay other jobs:</span>
        {shown.map((o) => (
          <span key={o.id} class="tag">
            <span class="tag-k mono">{o.name ? `${o.name} ${shortId(o.id)}` : shortId(o.id)}</span>
            <button class="tag-x" aria-label={`Remove ${o.id}`} onClick={() => setWith(withIds.filter((x) => x !== o.id))}>
              ×
            </button>
          </span>
        ))}
        <JobPicker project={job.project} exclude={[job.id, ...withIds]} onPick={(id) => setWith([...withIds, id])} label="Overlay" />
      </div>
      <MetricExplorer jobs={[job, ...shown]} live={live} />
    </div>
  );
}

function KV({ rows }: { rows: [string, ComponentChildren][] }) {
  return (
    <table class="kv">
      <tbody>
        {rows
          .filter(([, v]) => v !== undefined && v !== null && v !== '')
          .map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td>{v}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

function Digest({ d }: { d?: string }) {
  if (!d) return null;
  return (
    <span class="digest">
      <span class="mono" title={d}>
        {d.replace(/^sha256:/, '').slice(0, 16)}…
      </span>
      <CopyButton text={d} label="Copy digest" />
    </span>
  );
}

/**
 * Why a job failed or stopped. A job that exited non-zero has the last line it printed in its
 * reason ("exited with code 1: RuntimeError: the loss diverged"): that line shows on its own,
 * in full, wrapped.
 */
function ReasonBox({ state, reason }: { state: string; reason: string }) {
  const m = /^(exited with code -?\d+): ([\s\S]+)$/.exec(reason);
  return (
    <div class={`alert reason-box ${state === 'failed' ? 'alert-failed' : 'alert-stopped'}`} data-testid="reason">
      <div>
        <strong>{state === 'failed' ? 'Failed' : 'Stopped'}:</strong> {m ? m[1] : reason}
      </div>
      {m && (
        <pre class="reason-line" data-testid="reason-line" title="The last line the job printed">
          {m[2]}
        </pre>
      )}
    </div>
  );
}

export function JobPage({ id }: { id: string }) {
  const loc = useLocation();
  const tab = loc.query.get('tab') ?? 'logs';
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [deleted, setDeleted] = useState(false);
  const [cloning, setCloning] = useState(false);
  const [, setTick] = useState(0);
  const jobRef = useRef<Job | null>(null);
  jobRef.current = job;

  const load = () =>
    api.job(id).then(
      (j) => {
        setJob(j);
        setError(null);
      },
      (e) => {
        if (e.status === 404 && jobRef.current) setDeleted(true);
        else setError(e);
      },
    );
  const [reload] = useState(() => debounce(load, 250));
  useEffect(() => {
    load();
  }, [id]);
  useEffect(() => {
    document.title = `${job ? jobName(job) : 'Job'} · Atlas`;
  }, [job?.id, job?.name]);
  useJobEvents((e) => {
    if (!e || e.id === id) {
      if (e?.deleted) setDeleted(true);
      else reload();
    }
  });
  // While the job runs, its metrics, tags and artifacts change without state changes: the
  // server announces them (`event: track`, at most once a second per job). Only when the event
  // stream is down does the page poll.
  const active = job ? isActive(job.state) : false;
  useTracked((e) => e.id === id, load, 250);
  usePollWhileOffline(load, 10000, active);
  useEffect(() => {
    if (!active) return;
    const d = window.setInterval(() => setTick((n) => n + 1), 1000); // the duration
    return () => window.clearInterval(d);
  }, [active]);

  if (error && !job)
    return (
      <div class="page">
        <Empty title={error.status === 404 ? 'No such job' : 'Could not load the job'}>
          <p>{error.message}</p>
          <Link href="/projects">Go to the projects</Link>
        </Empty>
      </div>
    );
  if (!job) return <div class="page"><Loading label="Loading the job…" /></div>;

  const stop = async () => {
    const ok = await confirmDialog({
      title: 'Stop this job?',
      body: job.state === 'queued' ? <p>It leaves the queue and never runs.</p> : <p>The job gets SIGTERM, then SIGKILL after the grace period. Its files are archived.</p>,
      confirm: 'Stop job',
      danger: true,
    });
    if (!ok) return;
    try {
      const j = await api.stopAndWait(job.id, () => {
        setJob({ ...job, state: 'stopping' });
        toast('Stopping: SIGTERM sent; the job is archived once it has exited');
      });
      setJob({ ...job, ...j, params: job.params, metrics: job.metrics, tags: job.tags, artifacts: job.artifacts });
      toast(j.reason ? `Stopped: ${j.reason}` : 'Stopped', 'success');
      load();
    } catch (e) {
      toastError(e, 'Stop');
    }
  };
  const del = async () => {
    const ok = await confirmDialog({
      title: 'Delete this job?',
      body: <p>Its record, logs, archive and artifacts are deleted. This cannot be undone.</p>,
      confirm: 'Delete job',
      danger: true,
    });
    if (!ok) return;
    try {
      await api.remove(job.id);
      toast(`Deleted job ${shortId(job.id)}`, 'success');
      navigate(projectHref(job.project));
    } catch (e) {
      toastError(e, 'Delete');
    }
  };

  const arts = job.artifacts ?? [];
  // Params it logged, and those it was submitted with but has not logged (all of a queued job's).
  const submitted = job.submitted_params ?? {};
  const paramKeys = [...new Set([...Object.keys(job.params), ...Object.keys(submitted)])].sort();
  const paramOfJob = (k: string) => (k in job.params ? job.params[k] : submitted[k]);
  const command = [...(job.entrypoint ?? []), ...(job.command ?? [])].join(' ');
  const projURL = `/projects/${encodeURIComponent(job.project)}`;
  const backURL = projectHref(job.project);
  const tabLink = (t: string, label: ComponentChildren) => (
    <button class={tab === t ? 'tab active' : 'tab'} onClick={() => setQuery({ tab: t === 'logs' ? null : t, artifact: null }, { replace: true })} data-tab={t}>
      {label}
    </button>
  );

  return (
    <div class="page page-wide job-page" data-testid="job-page" data-state={job.state}>
      <div class="crumbs">
        <Link href="/projects">Projects</Link>
        <IconChevron size={12} />
        <Link href={backURL}>{job.project}</Link>
        <IconChevron size={12} />
        <span>{jobName(job)}</span>
      </div>
      {deleted && <div class="error-box">This job was deleted.</div>}
      {cloning && <CloneDialog job={job} onClose={() => setCloning(false)} />}
      {job.search_id && (
        <div class="search-link" data-testid="search-link">
          Trial {job.search_trial ?? 0} of search{' '}
          <Link class="mono" href={`/searches/${encodeURIComponent(job.search_id)}`} title={job.search_id}>
            {shortId(job.search_id)}
          </Link>
        </div>
      )}
      <div class="job-head">
        <div class="job-title">
          <StateBadge state={job.state} />
          {job.name && (
            <h1 class="job-name" data-testid="job-name">
              {job.name}
            </h1>
          )}
          <span class={job.name ? 'mono job-id subtle' : 'mono job-id'}>{job.id}</span>
          <CopyButton text={job.id} label="Copy job id" />
        </div>
        <div class="job-actions">
          {job.mode !== 'execution' && (
            <button class="btn" onClick={() => setCloning(true)} title="Queue a copy of this job with some params changed" data-testid="clone-job">
              <IconCopy /> Clone and edit
            </button>
          )}
          <Link class="btn" href={`${projURL}/compare?ids=${encodeURIComponent(job.id)}`} title="Compare with other jobs of the project">
            <IconCompare /> Compare
          </Link>
          {isFinished(job.state) && job.archive_digest && (
            <a class="btn" href={archiveURL(job.id)} title="The job's working directory when it finished (tar.gz)">
              <IconDownload /> Archive
            </a>
          )}
          {isActive(job.state) && (
            <button class="btn danger" onClick={stop} disabled={job.state === 'stopping'} data-testid="stop-job">
              <IconStop /> {job.state === 'stopping' ? 'Stopping…' : 'Stop'}
            </button>
          )}
          {isFinished(job.state) && !deleted && (
            <button class="btn danger-outline" onClick={del} data-testid="delete-job">
              <IconTrash /> Delete
            </button>
          )}
        </div>
      </div>

      <div class="stat-strip">
        <div class="stat">
          <span class="stat-k">Launched</span>
          <span class="stat-v">{fmtTime(job.created_at, true)}</span>
        </div>
        <div class="stat">
          <span class="stat-k">Started</span>
          <span class="stat-v">{fmtTime(job.started_at, true) || '–'}</span>
        </div>
        <div class="stat">
          <span class="stat-k">Finished</span>
          <span class="stat-v">{fmtTime(job.finished_at, true) || '–'}</span>
        </div>
        <div class="stat">
          <span class="stat-k">Duration</span>
          <span class="stat-v" data-testid="duration">{fmtDuration(jobDuration(job)) || '–'}</span>
        </div>
        <div class="stat">
          <span class="stat-k">User</span>
          <span class="stat-v">{job.user}</span>
        </div>
        <div class="stat">
          <span class="stat-k">Exit code</span>
          <span class="stat-v" data-testid="exit-code">{job.exit_code ?? '–'}</span>
        </div>
      </div>

      {job.reason && (job.state === 'failed' || job.state === 'stopped') && <ReasonBox state={job.state} reason={job.reason} />}
      {job.state === 'queued' && (
        <div class="alert alert-queued" data-testid="waiting">
          <strong>{job.queue_position ? `#${job.queue_position} in the queue` : 'Queued'}</strong>
          {job.waiting_reason ? ` — ${job.waiting_reason}` : ''} · <Link href="/queue">see the queue</Link>
        </div>
      )}
      {job.state === 'starting' && job.waiting_reason && (
        <div class="alert alert-queued" data-testid="waiting">
          <strong>Not running yet</strong> — {job.waiting_reason} · <Link href="/queue">see the queue</Link>
        </div>
      )}

      <div class="job-grid">
        <div class="job-main card">
          <nav class="tabs tabs-inset">
            {tabLink('logs', 'Logs')}
            {tabLink(
              'metrics',
              <>
                Metrics <span class="count">{job.metrics.length}</span>
              </>,
            )}
            {tabLink(
              'artifacts',
              <>
                Artifacts <span class="count">{arts.length}</span>
              </>,
            )}
          </nav>
          <div class="tab-body">
            {tab === 'logs' && <LogView jobId={job.id} active={isActive(job.state)} queued={job.state === 'queued'} />}
            {tab === 'metrics' && <JobMetrics job={job} live={active} />}
            {tab === 'artifacts' && <Artifacts jobId={job.id} artifacts={arts} selected={loc.query.get('artifact') ?? undefined} onSelect={(k) => setQuery({ artifact: k }, { replace: true })} />}
          </div>
        </div>

        <aside class="job-side">
          <section class="card side-card">
            <h3>Tags</h3>
            <TagEditor job={job} onChanged={load} />
          </section>
          <section class="card side-card">
            <h3>
              Parameters <span class="count">{paramKeys.length}</span>
            </h3>
            {paramKeys.length ? (
              <table class="kv" data-testid="params">
                <tbody>
                  {paramKeys.map((k) => (
                    <tr key={k}>
                      <th>{k}</th>
                      <td class={k in job.params ? 'mono' : 'mono submitted'} title={k in job.params ? fullValue(job.params[k]) : `${fullValue(submitted[k])} (submitted; not logged yet)`}>
                        {fmtValue(paramOfJob(k))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <div class="subtle small">No parameters logged.</div>
            )}
          </section>
          <section class="card side-card">
            <h3>Run</h3>
            <KV
              rows={[
                ['Command', command ? <code class="cmdline">{command}</code> : undefined],
                ['Project', <Link href={projURL}>{job.project}</Link>],
                ['Image', job.worker?.image],
                ['Executor', job.executor],
                ['Worker', job.worker_id ? <code data-testid="worker-id">{job.worker_id}</code> : undefined],
                ['GPUs', job.num_gpus ? `${job.num_gpus}${job.gpu_ids?.length ? ` (ids ${job.gpu_ids.join(', ')})` : ''}` : '0'],
                ['RAM', job.ram_gb ? `${job.ram_gb} GB` : undefined],
                ['Priority', String(job.priority)],
                ['Mode', job.mode === 'execution' ? 'run by hand' : 'scheduled'],
                ['Run as', job.run_as],
                ['Bundle', job.bundle_digest ? <Digest d={job.bundle_digest} /> : undefined],
                ['Archive', job.archive_digest ? <Digest d={job.archive_digest} /> : undefined],
                ['Parent', job.parent_id ? <Link href={`/jobs/${encodeURIComponent(job.parent_id)}`}>{shortId(job.parent_id)}</Link> : undefined],
                ['Reason', job.state === 'failed' || job.state === 'stopped' ? undefined : job.reason], // else in the box above
              ]}
            />
            {job.submitted_params && Object.keys(job.submitted_params).length > 0 && (
              <details class="more-details">
                <summary>Submitted parameters</summary>
                <pre class="small-pre">{JSON.stringify(job.submitted_params, null, 2)}</pre>
              </details>
            )}
            {job.worker?.environment && Object.keys(job.worker.environment).length > 0 && (
              <details class="more-details">
                <summary>Environment</summary>
                <KV rows={Object.entries(job.worker.environment).map(([k, v]) => [k, <code>{v}</code>])} />
              </details>
            )}
          </section>
        </aside>
      </div>
    </div>
  );
}
