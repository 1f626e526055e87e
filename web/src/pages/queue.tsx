// The queue: running jobs with their GPUs, queued jobs in the order they will run with the
// reason each waits, and buttons to stop a job or clear the queue.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { IconQueue, IconStop, IconTrash } from '../components/icons';
import { confirmDialog, CopyButton, Empty, Loading, StateBadge, TagChip } from '../components/ui';
import { debounce, useJobEvents } from '../events';
import { fmtAgo, fmtDuration, fmtTime, fmtValue, jobDuration, jobName, shortId } from '../format';
import { Link } from '../router';
import { toast, toastError } from '../toast';
import type { Job, Queue } from '../types';

function JobRef({ j }: { j: Job }) {
  return (
    <span class="idcell">
      <Link class={j.name ? 'joblink' : 'mono joblink'} href={`/jobs/${encodeURIComponent(j.id)}`} title={j.id}>
        {jobName(j)}
      </Link>
      {j.name && <span class="mono subtle jobid">{shortId(j.id)}</span>}
      <CopyButton text={j.id} label="Copy job id" />
    </span>
  );
}

export function QueuePage() {
  const [q, setQ] = useState<Queue | null>(null);
  const [, setTick] = useState(0);
  const [clearProject, setClearProject] = useState('');
  const load = () => api.queue().then(setQ, (e) => toastError(e, 'Queue'));
  const [reload] = useState(() => debounce(load, 300));
  useEffect(() => {
    document.title = 'Queue · Atlas';
    load();
    const t = window.setInterval(() => setTick((n) => n + 1), 1000);
    const r = window.setInterval(load, 10000); // waiting reasons change without job events
    return () => {
      window.clearInterval(t);
      window.clearInterval(r);
    };
  }, []);
  useJobEvents(reload);

  const stop = async (j: Job) => {
    const ok = await confirmDialog({
      title: j.state === 'queued' ? 'Remove this job from the queue?' : 'Stop this job?',
      body: (
        <p>
          Job <span class="mono">{shortId(j.id)}</span> of {j.project}{' '}
          {j.state === 'queued' ? 'leaves the queue and never runs.' : 'gets SIGTERM, then SIGKILL after the grace period.'}
        </p>
      ),
      confirm: j.state === 'queued' ? 'Remove' : 'Stop',
      danger: true,
    });
    if (!ok) return;
    try {
      const queued = j.state === 'queued';
      const done = await api.stopAndWait(j.id, () => {
        toast(`Stopping ${shortId(j.id)}…`);
        load();
      });
      toast(queued ? 'Removed from the queue' : `Stopped ${shortId(j.id)}${done.reason ? `: ${done.reason}` : ''}`, 'success');
      load();
    } catch (e) {
      toastError(e, 'Stop');
    }
  };

  const clear = async () => {
    if (!q) return;
    // Beyond the listed head of the queue a project's count is not known: at least n.
    const n = clearProject ? q.queued.filter((j) => j.project === clearProject).length : q.queued_total;
    const more = clearProject && q.queued_total > q.queued.length ? ' or more' : '';
    const ok = await confirmDialog({
      title: `Clear ${n}${more} queued job${n === 1 && !more ? '' : 's'}?`,
      body: <p>{clearProject ? `Every queued job of ${clearProject}` : 'Every queued job'} is removed with its bundle. Running jobs keep running.</p>,
      confirm: 'Clear the queue',
      danger: true,
      confirmDisabled: n === 0,
    });
    if (!ok) return;
    try {
      const r = await api.clearQueue(clearProject || undefined);
      toast(`Removed ${r.removed} queued job${r.removed === 1 ? '' : 's'}`, 'success');
      load();
    } catch (e) {
      toastError(e, 'Clear queue');
    }
  };

  const projects = q ? [...new Set(q.queued.map((j) => j.project))].sort() : [];

  return (
    <div class="page page-wide">
      <div class="page-head">
        <div>
          <h1>Queue</h1>
          {q && (
            <div class="subtle">
              {q.executor} executor · {q.running.length} of {q.workers} worker slot{q.workers === 1 ? '' : 's'} busy
              {q.gpus ? ` · ${q.gpus} GPU${q.gpus === 1 ? '' : 's'}` : ''} · {q.queued_total} queued
            </div>
          )}
        </div>
        {q && q.queued.length > 0 && (
          <div class="card-tools">
            {projects.length > 1 && (
              <select value={clearProject} onChange={(e) => setClearProject(e.currentTarget.value)} aria-label="Project to clear">
                <option value="">All projects</option>
                {projects.map((p) => (
                  <option key={p} value={p}>
                    {p}
                  </option>
                ))}
              </select>
            )}
            <button class="btn danger-outline" onClick={clear} data-testid="clear-queue">
              <IconTrash /> Clear queue
            </button>
          </div>
        )}
      </div>
      {!q && <Loading />}
      {q && (
        <>
          <section class="card">
            <div class="card-head">
              <h3>
                Running <span class="count">{q.running.length}</span>
              </h3>
            </div>
            {q.running.length === 0 ? (
              <div class="empty-row">No job is running.</div>
            ) : (
              <table class="table" data-testid="running-table">
                <thead>
                  <tr>
                    <th>Status</th>
                    <th>Job</th>
                    <th>Project</th>
                    <th>User</th>
                    <th>Started</th>
                    <th>Running for</th>
                    <th>Worker / GPUs</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {q.running.map((j) => (
                    <tr key={j.id} data-job={j.id}>
                      <td>
                        <StateBadge state={j.state} />
                      </td>
                      <td>
                        <JobRef j={j} />
                      </td>
                      <td>
                        <Link href={`/projects/${encodeURIComponent(j.project)}`}>{j.project}</Link>
                      </td>
                      <td>{j.user}</td>
                      <td title={fmtTime(j.started_at, true)}>{fmtAgo(j.started_at)}</td>
                      <td class="num">{fmtDuration(jobDuration(j))}</td>
                      <td>
                        {j.worker_id ? (
                          <code class="worker-id" data-testid="worker-id" title={`Run by the ${j.executor ?? ''} executor`}>
                            {j.worker_id}
                          </code>
                        ) : (
                          j.executor ?? ''
                        )}
                        {j.gpu_ids?.length ? <span class="gpu-ids"> GPU {j.gpu_ids.join(', ')}</span> : j.num_gpus ? ` ${j.num_gpus} GPU` : ''}
                        {j.state === 'starting' && j.waiting_reason && (
                          <div class="reason" data-testid="pending-reason">
                            {j.waiting_reason}
                          </div>
                        )}
                      </td>
                      <td class="right">
                        <button class="btn small danger-outline" onClick={() => stop(j)} disabled={j.state === 'stopping'} data-testid="queue-stop">
                          <IconStop size={13} /> {j.state === 'stopping' ? 'Stopping…' : 'Stop'}
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <section class="card">
            <div class="card-head">
              <h3>
                Queued <span class="count">{q.queued_total}</span>
              </h3>
              {q.queued_total > q.queued.length && <span class="subtle">the first {q.queued.length} in the order they will run</span>}
            </div>
            {q.queued.length === 0 ? (
              <Empty title="The queue is empty" icon={<IconQueue size={26} />}>
                Jobs submitted while every worker is busy wait here, in the order they will run.
              </Empty>
            ) : (
              <table class="table" data-testid="queued-table">
                <thead>
                  <tr>
                    <th class="num">#</th>
                    <th>Job</th>
                    <th>Project</th>
                    <th>User</th>
                    <th>Priority</th>
                    <th>GPUs</th>
                    <th>Submitted</th>
                    <th>Params</th>
                    <th>Waiting because</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {q.queued.map((j) => (
                    <tr key={j.id} data-job={j.id}>
                      <td class="num pos">{j.queue_position}</td>
                      <td>
                        <JobRef j={j} />
                      </td>
                      <td>
                        <Link href={`/projects/${encodeURIComponent(j.project)}`}>{j.project}</Link>
                      </td>
                      <td>{j.user}</td>
                      <td class="num">{j.priority}</td>
                      <td class="num">{j.num_gpus}</td>
                      <td title={fmtTime(j.created_at, true)}>{fmtAgo(j.created_at)}</td>
                      <td data-testid="queued-params">
                        <span class="kv-wrap">
                          {Object.entries(j.submitted_params ?? {}).map(([k, v]) => (
                            <TagChip key={k} k={k} v={fmtValue(v)} />
                          ))}
                        </span>
                      </td>
                      <td class="reason">{j.waiting_reason}</td>
                      <td class="right">
                        <button class="btn small" onClick={() => stop(j)} data-testid="queue-remove">
                          <IconStop size={13} /> Remove
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </>
      )}
    </div>
  );
}
