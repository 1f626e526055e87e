// The project directory: every project with its job counts, last activity and tags.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api';
import { CountPills, CountsBar } from '../components/counts';
import { IconFolder, IconSearch } from '../components/icons';
import { Empty, Loading, TagChip } from '../components/ui';
import { debounce, useJobEvents } from '../events';
import { fmtAgo, fmtTime } from '../format';
import { Link } from '../router';
import { toastError } from '../toast';
import type { Project } from '../types';

export function ProjectsPage() {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState('');
  const [q, setQ] = useState('');
  const load = () =>
    api.projects().then(
      (ps) => {
        setProjects(ps);
        setError('');
      },
      (e) => {
        setError(e.message);
        toastError(e);
      },
    );
  const [reload] = useState(() => debounce(load, 500));
  useEffect(() => {
    document.title = 'Projects · Atlas';
    load();
  }, []);
  useJobEvents(reload);

  const shown = useMemo(() => {
    const list = [...(projects ?? [])].sort((a, b) => Date.parse(b.last_activity) - Date.parse(a.last_activity));
    const needle = q.trim().toLowerCase();
    return needle ? list.filter((p) => p.name.toLowerCase().includes(needle) || (p.tags ?? []).some((t) => t.toLowerCase().includes(needle))) : list;
  }, [projects, q]);

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Projects</h1>
          {projects && (
            <div class="subtle">
              {projects.length} project{projects.length === 1 ? '' : 's'} · {projects.reduce((n, p) => n + p.jobs, 0).toLocaleString()} jobs
            </div>
          )}
        </div>
        {projects && projects.length > 0 && (
          <label class="search">
            <IconSearch />
            <input type="search" placeholder="Search projects or tags" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
          </label>
        )}
      </div>
      {projects === null && !error && <Loading label="Loading projects…" />}
      {error && projects === null && <Empty title="Could not load the projects">{error}</Empty>}
      {projects && projects.length === 0 && (
        <Empty title="No projects yet" icon={<IconFolder size={28} />}>
          <p>Submit a job and its project appears here:</p>
          <pre class="cmd">foundations init my_project && cd my_project{'\n'}foundations submit scheduler . main.py</pre>
        </Empty>
      )}
      {projects && projects.length > 0 && shown.length === 0 && <Empty title={`No project matches “${q}”`} />}
      <div class="project-grid">
        {shown.map((p) => (
          <Link key={p.name} href={`/projects/${encodeURIComponent(p.name)}`} class="card project-card" data-testid="project-card" data-project={p.name}>
            <div class="project-card-head">
              <h2>{p.name}</h2>
              <span class="subtle" title={`Last activity ${fmtTime(p.last_activity, true)}`}>
                {fmtAgo(p.last_activity)}
              </span>
            </div>
            {p.description && <p class="project-desc">{p.description.replace(/[#*_`>[\]]/g, '').slice(0, 140)}</p>}
            <div class="project-card-stats">
              <span class="big-number">{p.jobs.toLocaleString()}</span>
              <span class="subtle">job{p.jobs === 1 ? '' : 's'}</span>
            </div>
            <CountsBar counts={p.counts} total={p.jobs} />
            <CountPills counts={p.counts} />
            {p.tags && p.tags.length > 0 && (
              <div class="tags">
                {p.tags.slice(0, 8).map((t) => (
                  <TagChip key={t} k={t} />
                ))}
                {p.tags.length > 8 && <span class="subtle">+{p.tags.length - 8}</span>}
              </div>
            )}
            <div class="subtle small">Created {fmtTime(p.created_at)}</div>
          </Link>
        ))}
      </div>
    </div>
  );
}
