// The project page: the jobs table (virtualised rows over server pages, server-side sort and
// filters) with its toolbar, filter chips and filter editor, the selection's actions and the
// parallel-coordinates chart. The page owns the view, which lives in the URL (sort, filters,
// hidden columns, chart axes), and the selection; the parts are in ../jobs/.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ProjectHeader, useProject } from '../components/projectheader';
import { Empty } from '../components/ui';
import { filterFieldOf, parseFilters, serializeFilters, withFilter } from '../filters';
import { ChartPanel } from '../jobs/chartpanel';
import { buildColumns, columnGroups, columnValues, defaultPins, pinnedFirst, withSubmittedParams } from '../jobs/columns';
import type { Col } from '../jobs/columns';
import { editorBelow, FilterPopup } from '../jobs/filtereditor';
import type { EditorAt } from '../jobs/filtereditor';
import { GridSkeleton, HEAD_H, JobGrid, OVERSCAN, ROW_H, rowRange, rowsInView, useColumnWindow, useGridScroll, usePaintMark } from '../jobs/grid';
import { PAGE, useJobPages } from '../jobs/jobpages';
import { useLiveTable } from '../jobs/live';
import { deleteJobs, SelectionActions, stopJobs } from '../jobs/selection';
import { ExportButton, SavedViews } from '../jobs/export';
import { FilterChips, JobsToolbar, JobTotal } from '../jobs/toolbar';
import { Link, navigate, rememberProjectView, setQuery, useLocation } from '../router';
import { useKeys } from '../keys';
import { loadPref, savePref } from '../storage';
import type { Filter, Job } from '../types';

const NO_JOBS: Job[] = [];

/** The text of the URL's "id contains" filter: what the search box shows. */
const idSearchOf = (filters: Filter[]) => filters.find((f) => f.field === 'id' && f.op === 'contains')?.values?.[0] ?? '';

export function ProjectJobsPage({ project }: { project: string }) {
  const loc = useLocation();
  const q = loc.query;
  const sort = q.get('sort') ?? '';
  const desc = sort ? q.get('order') !== 'asc' : true;
  const filtersRaw = q.get('f');
  const filters = useMemo(() => parseFilters(filtersRaw), [filtersRaw]);
  const hidden = useMemo(() => new Set((q.get('hide') ?? '').split(',').filter(Boolean)), [q.get('hide')]);
  // The chart: collapsed or not, remembered (chart=0 in a link collapses it too).
  const [chartOpen, setChartOpen] = useState(() => q.get('chart') !== '0' && !loadPref('atlas.chartCollapsed', false));
  const toggleChart = (open: boolean) => {
    setChartOpen(open);
    savePref('atlas.chartCollapsed', open ? null : true);
    if (q.get('chart')) setQuery({ chart: null }, { replace: true });
  };

  const [proj, reloadProject] = useProject(project);
  const list = useJobPages(project, sort, desc, filters);
  const { s } = list;
  const [selected, setSelected] = useState<Map<string, Job>>(new Map());
  const [editor, setEditor] = useState<EditorAt | null>(null);
  const [idSearch, setIdSearch] = useState(idSearchOf(filters));

  useEffect(() => {
    document.title = `${project} · Atlas`;
  }, [project]);
  useEffect(() => rememberProjectView(project, loc.search), [loc.search]);
  // The search box follows the URL (back and forward buttons).
  useEffect(() => setIdSearch(idSearchOf(filters)), [filtersRaw]);

  const live = useLiveTable(project, list, chartOpen, (id) => setSelected((sel) => (sel.has(id) ? new Map([...sel].filter(([k]) => k !== id)) : sel)));

  // Columns: the project's params (and those queued jobs in view were submitted with), metrics.
  const paramKeys = withSubmittedParams(s.params, s.pages.values());
  const allCols = useMemo(() => buildColumns(paramKeys, s.metrics), [paramKeys.join(','), s.metrics.join(',')]);
  // Scrolling: rows and columns outside the view are not rendered.
  const { scroller, scroll, view } = useGridScroll(s.loaded, filtersRaw);

  // Pinned columns stay at the left; the choice is remembered per project.
  const pinKey = 'atlas.pins.' + project;
  const [pinPref, setPinPref] = useState<string[] | null>(() => loadPref<string[] | null>(pinKey, null));
  const pins = useMemo(() => new Set(pinPref ?? defaultPins(allCols, view.w)), [pinPref, allCols, view.w]);
  const onPin = (id: string, on: boolean) => {
    const next = on ? [...pins, id] : [...pins].filter((x) => x !== id);
    setPinPref(next);
    savePref(pinKey, next);
  };
  const cols = useMemo(() => pinnedFirst(allCols.filter((c) => !hidden.has(c.id)), pins), [allCols, hidden, pins]);

  const setFilters = (fs: Filter[]) => setQuery({ f: serializeFilters(fs) || null });
  const setHidden = (h: Set<string>) => setQuery({ hide: [...h].join(',') || null }, { replace: true });
  const clearFilters = () => (setIdSearch(''), setFilters([]));

  const cycleSort = (c: Col) => {
    if (!c.sort) return;
    if (sort !== c.sort) setQuery({ sort: c.sort, order: null });
    else if (desc) setQuery({ sort: c.sort, order: 'asc' });
    else setQuery({ sort: null, order: null });
    scroller.current?.scrollTo({ top: 0 });
  };

  const { start, end } = rowRange(scroll.top, view.h, s.total);
  // Load a little ahead, so that rows are there before they scroll into view.
  useEffect(() => list.ensure(Math.max(0, start - PAGE / 2), end + PAGE), [start, end, s.gen, s.total, s.loaded]);

  const { layout, win } = useColumnWindow(cols, pins, scroll.left, view.w);
  const { rows, anyActive, ids } = rowsInView(list.row, start, end);
  live.inView.current.active = anyActive;
  live.inView.current.ids = ids;
  usePaintMark(s.dataGen, rows, s.total);

  // Selection.
  const toggle = (j: Job, on: boolean) =>
    setSelected((prev) => {
      const n = new Map(prev);
      if (on) n.set(j.id, j);
      else n.delete(j.id);
      return n;
    });
  const allSelected = selected.size > 0 && list.loadedJobs().every((j) => selected.has(j.id));
  const selJobs = () => {
    const byId = new Map(list.loadedJobs().map((j) => [j.id, j]));
    return [...selected.keys()].map((id) => byId.get(id) ?? selected.get(id)!);
  };
  const doStop = async () => {
    if (await stopJobs(selJobs())) list.refresh();
  };
  const doDelete = async () => {
    const gone = await deleteJobs(selJobs());
    if (!gone) return;
    setSelected(new Map([...selected].filter(([k]) => !gone.has(k))));
    list.refresh();
    reloadProject();
  };

  // Keyboard: j/k move the cursor row, Enter opens its job, x selects it.
  const [cursor, setCursor] = useState(-1);
  const moveCursor = (d: number) => {
    if (!s.total) return;
    const i = Math.max(0, Math.min(s.total - 1, cursor < 0 ? start + (start > 0 ? OVERSCAN : 0) : cursor + d));
    setCursor(i);
    const el = scroller.current;
    if (!el) return;
    if (i * ROW_H < el.scrollTop) el.scrollTop = i * ROW_H;
    else if ((i + 1) * ROW_H > el.scrollTop + el.clientHeight - HEAD_H) el.scrollTop = (i + 1) * ROW_H - el.clientHeight + HEAD_H;
    // The page scrolls to the table too, when its rows are below the window's edge.
    const r = el.getBoundingClientRect();
    const y = r.top + HEAD_H + i * ROW_H - el.scrollTop;
    if (y + ROW_H > window.innerHeight || y < 0) window.scrollBy({ top: y + ROW_H - window.innerHeight + 8 });
  };
  const cursorJob = cursor >= 0 ? list.row(cursor) : undefined;
  useKeys([
    { key: 'j', help: 'Next job', run: () => moveCursor(1) },
    { key: 'k', help: 'Previous job', run: () => moveCursor(-1) },
    { key: 'Enter', help: "Open the job's page", run: () => cursorJob && navigate(`/jobs/${encodeURIComponent(cursorJob.id)}`) },
    { key: 'x', help: 'Select or unselect the job', run: () => cursorJob && toggle(cursorJob, !selected.has(cursorJob.id)) },
  ]);
  useEffect(() => setCursor(-1), [filtersRaw, sort, desc]);

  const openEditor = (col: string, el: HTMLElement) => setEditor(editorBelow(col, el));
  const editorField = editor ? filterFieldOf(editor.col) : null;

  const hasData = s.loaded && (s.total > 0 || filters.length > 0);

  return (
    <div class="page page-wide">
      <ProjectHeader name={project} project={proj} tab="jobs" />

      {proj === null && !s.total && s.loaded && (
        <Empty title={`No project named “${project}”`}>
          <Link href="/projects">See all projects</Link>
        </Empty>
      )}

      {hasData && s.params.length + s.metrics.length > 0 && (
        <ChartPanel
          open={chartOpen}
          onOpen={toggleChart}
          project={project}
          params={s.params}
          metrics={s.metrics}
          jobs={s.pages.get(0) ?? NO_JOBS}
          axesParam={q.get('axes')}
          logParam={q.get('log')}
          filters={filters}
          setFilters={setFilters}
          refresh={live.chartN}
          ready={list.ready}
        />
      )}

      {hasData && (
        <JobsToolbar
          idSearch={idSearch}
          setIdSearch={setIdSearch}
          filters={filters}
          setFilters={setFilters}
          params={s.params}
          metrics={s.metrics}
          onFilter={openEditor}
          colGroups={columnGroups(allCols)}
          hidden={hidden}
          setHidden={setHidden}
          onReload={() => (list.refresh(), live.rereadChart())}
          extra={
            <>
              <SavedViews project={project} search={loc.search} />
              <ExportButton project={project} sort={sort} desc={desc} filters={filters} cols={cols} />
            </>
          }
        >
          {selected.size > 0 ? (
            <SelectionActions
              count={selected.size}
              onCompare={() => navigate(`/projects/${encodeURIComponent(project)}/compare?ids=${[...selected.keys()].map(encodeURIComponent).join(',')}`)}
              onStop={doStop}
              onDelete={doDelete}
              onClear={() => setSelected(new Map())}
            />
          ) : (
            <JobTotal total={s.total} filtered={filters.length > 0} />
          )}
        </JobsToolbar>
      )}

      {filters.length > 0 && <FilterChips filters={filters} setFilters={setFilters} onEdit={openEditor} onRemoveId={() => setIdSearch('')} onClear={clearFilters} />}

      {!s.loaded && <GridSkeleton />}

      {s.loaded && s.total === 0 && !filters.length && proj !== null && (
        <Empty title="No jobs in this project yet">
          <p>Submit one from the project's folder:</p>
          <pre class="cmd">foundations submit scheduler . main.py</pre>
        </Empty>
      )}

      {hasData && (
        <JobGrid
          scroller={scroller}
          total={s.total}
          rows={rows}
          cols={cols}
          layout={layout}
          win={win}
          sort={sort}
          desc={desc}
          filters={filters}
          selected={selected}
          allSelected={allSelected}
          cursor={cursorJob?.id ?? ''}
          onPin={onPin}
          now={live.now}
          onSelectAll={(on) => setSelected(on ? new Map(list.loadedJobs().map((j) => [j.id, j])) : new Map())}
          onToggle={toggle}
          onSort={cycleSort}
          onFilter={openEditor}
          onClearFilters={clearFilters}
        />
      )}

      {editor && editorField && (
        <FilterPopup
          at={editor}
          field={editorField}
          users={proj?.users}
          current={filters.find((f) => f.field === editorField.field)}
          sample={columnValues(list.loadedJobs().slice(0, 300), editor.col)}
          onClose={() => setEditor(null)}
          onApply={(f) => {
            setEditor(null);
            if (editorField.field === 'id') setIdSearch(f?.values?.[0] ?? '');
            setFilters(withFilter(filters, editorField.field, f));
          }}
        />
      )}
    </div>
  );
}
