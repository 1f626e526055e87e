// The jobs table's exports and views: the table (every job that matches the filters, in its
// order, the columns shown) as a CSV file, and named views of the table (its URL state: sort,
// filters, columns, chart axes) saved per project in this browser.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { IconDownload } from '../components/icons';
import { Popover } from '../components/ui';
import { navigate } from '../router';
import { loadPref, savePref } from '../storage';
import { toast, toastError } from '../toast';
import type { Filter, Job } from '../types';
import type { Col } from './columns';
import { jobsCSV } from './csv';

const EXPORT_PAGE = 1000;

/** Reads every job of the query, a page at a time, and saves them as a CSV file. */
async function exportCSV(project: string, sort: string, desc: boolean, filters: Filter[], cols: Col[]) {
  const jobs: Job[] = [];
  for (let total = Infinity; jobs.length < total; ) {
    const res = await api.jobs({ project, sort: sort || undefined, desc, filters, limit: EXPORT_PAGE, offset: jobs.length });
    total = res.total;
    jobs.push(...res.jobs);
    if (!res.jobs.length) break;
  }
  const url = URL.createObjectURL(new Blob([jobsCSV(cols, jobs)], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `${project}-jobs.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  toast(`Exported ${jobs.length.toLocaleString()} job${jobs.length === 1 ? '' : 's'}`, 'success');
}

export function ExportButton(p: { project: string; sort: string; desc: boolean; filters: Filter[]; cols: Col[] }) {
  const [busy, setBusy] = useState(false);
  return (
    <button
      class="btn"
      title="Download the jobs that match the filters, with the columns shown, as CSV"
      data-testid="export-csv"
      disabled={busy}
      onClick={() => {
        setBusy(true);
        exportCSV(p.project, p.sort, p.desc, p.filters, p.cols)
          .catch((e) => toastError(e, 'Export'))
          .finally(() => setBusy(false));
      }}
    >
      <IconDownload /> CSV
    </button>
  );
}

interface SavedView {
  name: string;
  search: string; // the URL's query string, with its "?"
}

/** Saved views of a project's table: apply one, save the current one under a name, delete. */
export function SavedViews({ project, search }: { project: string; search: string }) {
  const key = 'atlas.views.' + project;
  const [views, setViews] = useState<SavedView[]>(() => loadPref<SavedView[]>(key, []));
  const [name, setName] = useState('');
  const store = (vs: SavedView[]) => {
    setViews(vs);
    savePref(key, vs.length ? vs : null);
  };
  const save = () => {
    const n = name.trim();
    if (!n) return;
    store([...views.filter((v) => v.name !== n), { name: n, search }].sort((a, b) => a.name.localeCompare(b.name)));
    setName('');
    toast(`Saved the view “${n}”`, 'success');
  };
  return (
    <Popover label="Views" testid="views-button">
      {(close) => (
        <div class="menu views-menu" data-testid="views-menu">
          {views.length === 0 && <div class="subtle small pad">No saved views yet: save the table's sort, filters, columns and chart axes under a name.</div>}
          {views.map((v) => (
            <div key={v.name} class={`view-item${v.search === search ? ' on' : ''}`}>
              <button
                class="menu-item"
                data-view={v.name}
                onClick={() => {
                  close();
                  navigate(`/projects/${encodeURIComponent(project)}${v.search}`);
                }}
              >
                {v.name}
              </button>
              <button class="icon-btn" aria-label={`Delete the view ${v.name}`} title="Delete this view" onClick={() => store(views.filter((x) => x !== v))}>
                ×
              </button>
            </div>
          ))}
          <form
            class="view-save"
            onSubmit={(e) => {
              e.preventDefault();
              save();
            }}
          >
            <input type="text" placeholder="Name of this view" value={name} onInput={(e) => setName(e.currentTarget.value)} aria-label="Name of this view" data-testid="view-name" />
            <button class="btn small" type="submit" disabled={!name.trim()} data-testid="save-view">
              Save
            </button>
          </form>
        </div>
      )}
    </Popover>
  );
}
