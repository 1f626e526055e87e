// The jobs page's chart card: parallel coordinates over the parameters and metrics of the jobs
// that match the filters, with its axes chooser, log axes, "Clear brushes" and collapsing. The
// axes live in the URL: `axes` (comma-separated, `-` for none), `log` (fields on a log axis,
// `!field` for one kept linear); whether the card is collapsed is remembered by the page.
import { useMemo } from 'preact/hooks';
import { ColumnChooser } from '../components/columnchooser';
import { IconChart, IconChevron } from '../components/icons';
import { ParCoords } from '../components/parcoords';
import { Popover } from '../components/ui';
import { defaultAxes } from '../chartdata';
import { withFilter } from '../filters';
import { setQuery } from '../router';
import type { Filter, Job } from '../types';

/** The URL's `log` as a map of field -> log (true) or linear (false). */
const parseLog = (s: string | null) => new Map((s ?? '').split(',').filter(Boolean).map((f) => (f.startsWith('!') ? [f.slice(1), false] : [f, true])));

export function ChartPanel({ project, params, metrics, jobs, axesParam, logParam, filters, setFilters, refresh, ready, open, onOpen }: {
  project: string;
  params: string[];
  metrics: string[];
  jobs: Job[]; // the first page of the table, for the default axes
  axesParam: string | null; // the URL's `axes`
  logParam: string | null; // the URL's `log`
  filters: Filter[];
  setFilters: (fs: Filter[]) => void;
  refresh: number; // changes when the chart should re-read the jobs
  ready: boolean; // the table has the rows of the current query
  open: boolean;
  onOpen: (open: boolean) => void;
}) {
  // Computed again only when the first page is read again, not while the table scrolls.
  const auto = useMemo(() => defaultAxes(jobs, params, metrics), [jobs, params.join(','), metrics.join(',')]);
  const autoKey = auto.join(',');
  const axes = useMemo(() => {
    if (axesParam === '-') return [];
    if (axesParam) return axesParam.split(',').filter((a) => params.includes(a.slice(6)) || metrics.includes(a.slice(7)));
    return auto;
  }, [axesParam, params.join(','), metrics.join(','), autoKey]);
  const all = [...params.map((p) => 'param:' + p), ...metrics.map((m) => 'metric:' + m)];
  const logPref = useMemo(() => parseLog(logParam), [logParam]);
  const setLog = (field: string, log: boolean) => {
    const m = new Map(logPref);
    m.set(field, log);
    setQuery({ log: [...m].map(([f, on]) => (on ? f : '!' + f)).join(',') || null }, { replace: true });
  };
  // Short windows leave room for the table's first rows.
  const height = Math.max(200, Math.min(300, window.innerHeight - 470));

  return (
    <section class={`card chart-card${open ? '' : ' collapsed'}`} data-testid="chart-card">
      <div class="card-head">
        <button class="chart-toggle" onClick={() => onOpen(!open)} aria-expanded={open} data-testid="chart-toggle" title={open ? 'Collapse the chart' : 'Show the chart'}>
          <IconChevron size={12} />
          <h3>
            <IconChart /> Parameters and metrics
          </h3>
        </button>
        {open && (
          <div class="card-tools">
            {filters.some((f) => axes.includes(f.field)) && (
              <button class="btn ghost small" onClick={() => setFilters(filters.filter((f) => !axes.includes(f.field)))}>
                Clear brushes
              </button>
            )}
            <Popover label="Axes" class="small" align="right" testid="axes-button">
              <ColumnChooser
                groups={[
                  { name: 'Parameters', cols: params.map((p) => ({ id: 'param:' + p, label: p })) },
                  { name: 'Metrics', cols: metrics.map((m) => ({ id: 'metric:' + m, label: m })) },
                ].filter((g) => g.cols.length)}
                hidden={new Set(all.filter((c) => !axes.includes(c)))}
                onChange={(h) => {
                  const kept = axes.filter((a) => !h.has(a));
                  const added = all.filter((a) => !h.has(a) && !kept.includes(a));
                  const next = [...kept, ...added];
                  setQuery({ axes: next.length ? next.join(',') : '-' }, { replace: true });
                }}
              />
            </Popover>
          </div>
        )}
      </div>
      {open && (
        <ParCoords
          project={project}
          axes={axes}
          filters={filters}
          onBrush={(field, f) => setFilters(withFilter(filters, field, f))}
          onAxes={(a) => setQuery({ axes: a.join(',') }, { replace: true })}
          logPref={logPref}
          onLog={setLog}
          height={height}
          refresh={refresh}
          ready={ready}
        />
      )}
    </section>
  );
}
