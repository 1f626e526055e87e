// The header of a project's pages: breadcrumb, name, counts and the tabs.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { debounce, useJobEvents } from '../events';
import { fmtTime } from '../format';
import { Link, projectHref } from '../router';
import type { Project } from '../types';
import { CountPills } from './counts';
import { IconChevron } from './icons';

export function useProject(name: string): [Project | null | undefined, () => void] {
  const [p, setP] = useState<Project | null | undefined>(undefined);
  const load = () => api.project(name).then(setP, () => setP(null));
  const [reload] = useState(() => debounce(load, 800));
  useEffect(() => void load(), [name]);
  useJobEvents((e) => (!e || e.project === name) && reload());
  return [p, load];
}

export function ProjectHeader({ name, project, tab }: { name: string; project: Project | null | undefined; tab: 'jobs' | 'overview' | 'compare' | 'searches' }) {
  const base = `/projects/${encodeURIComponent(name)}`;
  return (
    <div class="project-head">
      <div class="crumbs">
        <Link href="/projects">Projects</Link>
        <IconChevron size={12} />
        <span>{name}</span>
      </div>
      <div class="project-title-row">
        <div>
          <h1 class="project-title">{name}</h1>
          {project && (
            <div class="subtle">
              {project.jobs.toLocaleString()} job{project.jobs === 1 ? '' : 's'} · created {fmtTime(project.created_at)}
            </div>
          )}
        </div>
        {project && <CountPills counts={project.counts} />}
      </div>
      <nav class="tabs">
        <Link href={tab === 'jobs' ? base : projectHref(name)} class={tab === 'jobs' ? 'tab active' : 'tab'}>
          Jobs
        </Link>
        <Link href={`${base}/overview`} class={tab === 'overview' ? 'tab active' : 'tab'}>
          Overview
        </Link>
        <Link href={`${base}/searches`} class={tab === 'searches' ? 'tab active' : 'tab'} data-testid="searches-tab">
          Searches
        </Link>
        {tab === 'compare' && <span class="tab active">Compare</span>}
      </nav>
    </div>
  );
}
