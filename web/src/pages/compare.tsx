// Compare jobs side by side: their params and last metric values (differences highlighted) and
// their metric series overlaid.
import { Fragment } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api';
import { PALETTE } from '../components/chart';
import { MetricExplorer } from '../components/metrics';
import { ProjectHeader, useProject } from '../components/projectheader';
import { IconX } from '../components/icons';
import { JobPicker } from '../components/jobpicker';
import { Empty, Loading, StateBadge } from '../components/ui';
import { debounce, useJobEvents } from '../events';
import { fmtDuration, fmtValue, jobDuration, jobName, shortId } from '../format';
import { Link, setQuery, useLocation } from '../router';
import { toastError } from '../toast';
import type { Job } from '../types';

export function ComparePage({ project }: { project: string }) {
  const loc = useLocation();
  const ids = useMemo(() => (loc.query.get('ids') ?? '').split(',').filter(Boolean), [loc.query.get('ids')]);
  const [proj] = useProject(project);
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [onlyDiff, setOnlyDiff] = useState(false);

  const load = () =>
    Promise.all(ids.map((id) => api.job(id).catch((e) => (toastError(e, shortId(id)), null)))).then((js) => setJobs(js.filter((j): j is Job => !!j)));
  const [reload] = useState(() => debounce(load, 500));
  useEffect(() => {
    document.title = `Compare · ${project} · Atlas`;
    load();
  }, [ids.join(',')]);
  useJobEvents((e) => (!e || ids.includes(e.id)) && reload());

  const setIds = (next: string[]) => setQuery({ ids: next.join(',') || null });

  const rows = useMemo(() => {
    if (!jobs) return [];
    const params = [...new Set(jobs.flatMap((j) => Object.keys(j.params)))].sort();
    const metrics = [...new Set(jobs.flatMap((j) => j.metrics.map((m) => m.key)))].sort();
    const out: { group: string; key: string; vals: string[] }[] = [];
    out.push({ group: 'Job', key: 'duration', vals: jobs.map((j) => fmtDuration(jobDuration(j))) });
    out.push({ group: 'Job', key: 'user', vals: jobs.map((j) => j.user) });
    out.push({ group: 'Job', key: 'command', vals: jobs.map((j) => (j.command ?? []).join(' ')) });
    for (const k of params) out.push({ group: 'Parameters', key: k, vals: jobs.map((j) => (k in j.params ? fmtValue(j.params[k]) : '–')) });
    for (const k of metrics) out.push({ group: 'Metrics', key: k, vals: jobs.map((j) => fmtValue(j.metrics.find((m) => m.key === k)?.last) || '–') });
    return out;
  }, [jobs]);

  return (
    <div class="page page-wide">
      <ProjectHeader name={project} project={proj} tab="compare" />
      <div class="toolbar">
        <JobPicker project={project} exclude={ids} onPick={(id) => setIds([...ids, id])} label="Add job" />
        <label class="check">
          <input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.currentTarget.checked)} /> Only differences
        </label>
      </div>
      {!ids.length && <Empty title="No jobs to compare">Select jobs in the project's table and choose Compare, or add a job by id.</Empty>}
      {ids.length > 0 && jobs === null && <Loading />}
      {jobs && jobs.length > 0 && (
        <>
          <section class="card">
            <div class="compare-wrap">
              <table class="compare" data-testid="compare-table">
                <thead>
                  <tr>
                    <th />
                    {jobs.map((j, i) => (
                      <th key={j.id}>
                        <div class="compare-job">
                          <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} title="Its colour in the charts" />
                          <StateBadge state={j.state} compact />
                          <Link class={j.name ? '' : 'mono'} href={`/jobs/${encodeURIComponent(j.id)}`} title={j.id}>
                            {jobName(j)}
                          </Link>
                          <button class="icon-btn" title="Remove from the comparison" aria-label={`Remove ${j.id}`} onClick={() => setIds(ids.filter((x) => x !== j.id))}>
                            <IconX size={12} />
                          </button>
                        </div>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r, i) => {
                    const differs = new Set(r.vals).size > 1;
                    if (onlyDiff && !differs) return null;
                    return (
                      <Fragment key={r.group + r.key}>
                        {(i === 0 || rows[i - 1].group !== r.group) && (
                          <tr class="group-row">
                            <td colSpan={jobs.length + 1}>{r.group}</td>
                          </tr>
                        )}
                        <tr class={differs ? 'differs' : ''}>
                          <th>{r.key}</th>
                          {r.vals.map((v, k) => (
                            <td key={k} class="mono" title={v}>
                              {v}
                            </td>
                          ))}
                        </tr>
                      </Fragment>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </section>
          <section class="card pad-card">
            <h3>Metrics</h3>
            <MetricExplorer jobs={jobs} live={jobs.some((j) => j.state === 'running' || j.state === 'stopping')} />
          </section>
        </>
      )}
    </div>
  );
}
