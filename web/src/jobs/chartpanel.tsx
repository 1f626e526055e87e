// The jobs page's chart card: parallel coordinates over the parameters and metrics of the jobs
// that match the filters, with its axes chooser, "Clear brushes" and hiding. The axes (and whether
// the chart shows) live in the URL: `axes` (comma-separated, `-` for none), `chart=0`.
import { useMemo } from 'preact/hooks';
import { ColumnChooser } from '../components/columnchooser';
import { IconChart, IconX } from '../components/icons';
import { ParCoords } from '../components/parcoords';
import { Popover } from '../components/ui';
import { withFilter } from '../filters';
import { setQuery } from '../router';
import type { Filter } from '../types';

export function ChartPanel({ project, params, metrics, axesParam, filters, setFilters, refresh, ready }: {
  project: string;
  params: string[];
  metrics: string[];
  axesParam: string | null; // the URL's `axes`
  filters: Filter[];
  setFilters: (fs: Filter[]) => void;
  refresh: number; // changes when the chart should re-read the jobs
  ready: boolean; // the table has the rows of the current query
}) {
  // Default axes: a few params and metrics.
  const axes = useMemo(() => {
    if (axesParam === '-') return [];
    if (axesParam) return axesParam.split(',').filter((a) => params.includes(a.slice(6)) || metrics.includes(a.slice(7)));
    return [...params.slice(0, 4).map((p) => 'param:' + p), ...metrics.slice(0, 3).map((m) => 'metric:' + m)];
  }, [axesParam, params.join(','), metrics.join(',')]);
  const all = [...params.map((p) => 'param:' + p), ...metrics.map((m) => 'metric:' + m)];

  return (
    <section class="card chart-card">
      <div class="card-head">
        <h3>
          <IconChart /> Parameters and metrics
        </h3>
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
          <button class="icon-btn" title="Hide the chart" aria-label="Hide the chart" onClick={() => setQuery({ chart: '0' }, { replace: true })}>
            <IconX />
          </button>
        </div>
      </div>
      <ParCoords
        project={project}
        axes={axes}
        filters={filters}
        onBrush={(field, f) => setFilters(withFilter(filters, field, f))}
        onAxes={(a) => setQuery({ axes: a.join(',') }, { replace: true })}
        refresh={refresh}
        ready={ready}
      />
    </section>
  );
}
