// The jobs table's virtualised grid: only the rows and columns in view are rendered (fixed-height
// rows, a sticky header and pinned leading columns). The header has every column, in view or
// not, so that find-in-page finds them. Holds the layout arithmetic, the scroll
// tracking, the memoised Row, and JobGrid, the table itself; the page owns the data and the view.
import { Component } from 'preact';
import type { RefObject } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { IconFilter, IconPin, IconSortDown, IconSortUp } from '../components/icons';
import { filterFieldOf } from '../filters';
import { navigate } from '../router';
import { isActive } from '../types';
import type { Filter, Job } from '../types';
import { fieldOfCol } from './columns';
import type { Col } from './columns';

export const ROW_H = 34;
export const HEAD_H = 44; // the header's height (styles.css .grid-head)
export const OVERSCAN = 8; // rows rendered beyond each side of the view

// Layout: the pinned columns (leading, sticky), then the others, of which only those in view are
// rendered in the rows.

const SELECT_W = 36;
const H_OVERSCAN = 240; // px of columns rendered beyond each side of the view

export interface Layout {
  sticky: Col[];
  rest: Col[];
  left: Map<string, number>; // sticky columns' left offsets
  x: number[]; // left edge of each of rest, from the first non-sticky column
  stickyW: number;
}

function gridLayout(cols: Col[], pins: Set<string>): Layout {
  const sticky: Col[] = [];
  const rest: Col[] = [];
  const left = new Map<string, number>();
  let w = SELECT_W;
  for (const c of cols) {
    if (pins.has(c.id) && rest.length === 0) {
      left.set(c.id, w);
      w += c.width;
      sticky.push(c);
    } else rest.push(c);
  }
  const x: number[] = [];
  let acc = 0;
  for (const c of rest) {
    x.push(acc);
    acc += c.width;
  }
  return { sticky, rest, left, x, stickyW: w };
}

/** The range [a, b) of non-sticky columns in view, and the width of those left of it. */
function visibleColumns(l: Layout, scrollLeft: number, viewW: number): { a: number; b: number; pad: number } {
  const from = scrollLeft - H_OVERSCAN;
  const to = scrollLeft + viewW - l.stickyW + H_OVERSCAN;
  let a = 0;
  while (a < l.rest.length && l.x[a] + l.rest[a].width < from) a++;
  let b = a;
  while (b < l.rest.length && l.x[b] < to) b++;
  return { a, b, pad: a < l.rest.length ? l.x[a] : 0 };
}

interface RowProps {
  i: number;
  job: Job;
  selected: boolean;
  cursor: boolean; // the keyboard's row
  sticky: Col[];
  cols: Col[];
  pad: number;
  tick: number; // changes every second for running jobs (their duration)
  onToggle: (j: Job, on: boolean) => void;
}

/** One row of the grid; re-rendered only when its job, selection, position or columns change. */
class Row extends Component<RowProps> {
  shouldComponentUpdate(n: RowProps) {
    const p = this.props;
    return n.job !== p.job || n.selected !== p.selected || n.cursor !== p.cursor || n.i !== p.i || n.cols !== p.cols || n.sticky !== p.sticky || n.pad !== p.pad || n.tick !== p.tick;
  }
  render({ i, job, selected, cursor, sticky, cols, pad, onToggle }: RowProps) {
    let left = SELECT_W;
    return (
      <div
        class={`tr${selected ? ' selected' : ''}${cursor ? ' cursor' : ''}`}
        aria-selected={selected}
        style={{ top: i * ROW_H + 'px' }}
        role="row"
        data-job={job.id}
        data-state={job.state}
        onClick={(e) => {
          const t = e.target as HTMLElement;
          if (t.closest('a,button,input,label')) return;
          if (window.getSelection()?.toString()) return;
          const href = `/jobs/${encodeURIComponent(job.id)}`;
          if (e.ctrlKey || e.metaKey) window.open(href, '_blank');
          else navigate(href);
        }}
      >
        <label class="td sticky select-col" style={{ left: '0px', width: SELECT_W + 'px' }}>
          <input type="checkbox" aria-label={`Select job ${job.id}`} checked={selected} onChange={(e) => onToggle(job, e.currentTarget.checked)} />
        </label>
        {sticky.map((c, k) => {
          const l = left;
          left += c.width;
          return (
            <div key={c.id} class={k === sticky.length - 1 ? 'td sticky pin-edge' : 'td sticky'} style={{ left: l + 'px', width: c.width + 'px' }} data-col={c.id}>
              {c.cell(job)}
            </div>
          );
        })}
        {pad > 0 && <div class="col-pad" style={{ width: pad + 'px' }} />}
        {cols.map((c) => (
          <div key={c.id} class="td" style={{ width: c.width + 'px' }} data-col={c.id}>
            {c.cell(job)}
          </div>
        ))}
      </div>
    );
  }
}

// ---------------------------------------------------------------------------------------------
// What is in view.

/**
 * Tracks the grid's scroll position (once a frame) and size, from when the grid is there (it
 * renders once the first page has loaded); back to the top when the filters change.
 */
export function useGridScroll(loaded: boolean, filtersRaw: string | null) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, left: 0 });
  const [view, setView] = useState({ w: 1200, h: 600 });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    let raf = 0;
    const onScroll = () => {
      if (raf) return;
      raf = requestAnimationFrame(() => {
        raf = 0;
        setScroll((p) => (p.top === el.scrollTop && p.left === el.scrollLeft ? p : { top: el.scrollTop, left: el.scrollLeft }));
      });
    };
    el.addEventListener('scroll', onScroll, { passive: true });
    const ro = new ResizeObserver(() => setView({ w: el.clientWidth, h: el.clientHeight }));
    ro.observe(el);
    setView({ w: el.clientWidth, h: el.clientHeight });
    return () => {
      el.removeEventListener('scroll', onScroll);
      ro.disconnect();
      cancelAnimationFrame(raf);
    };
  }, [loaded]);
  useEffect(() => {
    scroller.current?.scrollTo({ top: 0 });
    setScroll((p) => ({ ...p, top: 0 }));
  }, [filtersRaw]);
  return { scroller, scroll, view };
}

/** The rows [start, end) to render: those in view and a few beyond. */
export function rowRange(scrollTop: number, viewH: number, total: number): { start: number; end: number } {
  const start = Math.max(0, Math.floor(scrollTop / ROW_H) - OVERSCAN);
  const end = Math.min(total, Math.ceil((scrollTop + viewH) / ROW_H) + OVERSCAN);
  return { start, end };
}

/** The non-sticky columns in view, and the width of those left of them. */
export interface ColumnWindow {
  pad: number;
  cols: Col[];
}

/** The grid's layout of the columns shown, and the columns in view when scrolled sideways. */
export function useColumnWindow(cols: Col[], pins: Set<string>, scrollLeft: number, viewW: number): { layout: Layout; win: ColumnWindow } {
  const layout = useMemo(() => gridLayout(cols, pins), [cols.map((c) => c.id).join(','), [...pins].join(',')]);
  const w = visibleColumns(layout, scrollLeft, viewW);
  const win = { pad: w.pad, cols: useMemo(() => layout.rest.slice(w.a, w.b), [layout, w.a, w.b]) };
  return { layout, win };
}

/** A row to render: its index, and its job once its page has loaded. */
export interface ViewRow {
  i: number;
  job?: Job;
}

/** The rows [start, end), whether any of their jobs is active, and their jobs' ids. */
export function rowsInView(row: (i: number) => Job | undefined, start: number, end: number) {
  const rows: ViewRow[] = [];
  let anyActive = false;
  const ids = new Set<string>();
  for (let i = start; i < end; i++) {
    const job = row(i);
    if (job) ids.add(job.id);
    if (job && isActive(job.state)) anyActive = true;
    rows.push({ i, job });
  }
  return { rows, anyActive, ids };
}

/**
 * Marks for the speed measurements (tests/perf.mjs): the frame that paints the rows of a new
 * query. A layout effect runs right after the DOM is updated; the next animation frame is the
 * one that paints it.
 */
export function usePaintMark(dataGen: number, rows: ViewRow[], total: number) {
  const renderKey = `${dataGen}:${rows.length && rows[0].job ? rows[0].job.id : ''}:${total}`;
  useLayoutEffect(() => {
    if (!rows.some((r) => r.job)) return;
    const w = window as unknown as { __atlasRenders?: number; __atlasPaintedAt?: number };
    requestAnimationFrame(() => {
      w.__atlasRenders = (w.__atlasRenders ?? 0) + 1;
      w.__atlasPaintedAt = performance.now();
      if (w.__atlasRenders === 1) performance.mark('atlas-table-painted');
    });
  }, [renderKey]);
}

// ---------------------------------------------------------------------------------------------
// The grid.

interface JobGridProps {
  scroller: RefObject<HTMLDivElement | null>;
  total: number;
  rows: ViewRow[];
  cols: Col[]; // the columns shown, pinned ones first
  layout: Layout;
  win: ColumnWindow;
  sort: string;
  desc: boolean;
  filters: Filter[];
  selected: Map<string, Job>;
  allSelected: boolean;
  cursor: string; // the job the keyboard is on
  now: number; // the clock of running jobs' durations
  onSelectAll: (on: boolean) => void;
  onToggle: (j: Job, on: boolean) => void;
  onSort: (c: Col) => void;
  onFilter: (col: string, el: HTMLElement) => void;
  onPin: (col: string, on: boolean) => void;
  onClearFilters: () => void;
}

type HeadProps = Pick<JobGridProps, 'cols' | 'layout' | 'sort' | 'desc' | 'filters' | 'allSelected' | 'onSelectAll' | 'onSort' | 'onFilter' | 'onPin'>;

/**
 * The header: every column, in view or not (find-in-page finds them), with its sort, filter and
 * pin buttons. Re-rendered only when the columns, the sort, the filters or the selection change,
 * not while the table scrolls.
 */
class GridHead extends Component<HeadProps> {
  shouldComponentUpdate(n: HeadProps) {
    const p = this.props;
    return n.cols !== p.cols || n.layout !== p.layout || n.sort !== p.sort || n.desc !== p.desc || n.filters !== p.filters || n.allSelected !== p.allSelected;
  }
  render(p: HeadProps) {
    const { layout, sort, desc, filters } = p;
    const lastPinned = layout.sticky.length ? layout.sticky[layout.sticky.length - 1].id : '';
    const headCell = (c: Col) => {
      const sorted = sort === c.sort || (!sort && c.id === 'created_at');
      const isDesc = sort ? desc : true;
      const fld = fieldOfCol(c.id);
      const filtered = filters.some((f) => f.field === fld);
      const left = layout.left.get(c.id);
      const pinned = left !== undefined;
      const style: Record<string, string> = { width: c.width + 'px' };
      if (pinned) style.left = left + 'px';
      return (
        <div
          key={c.id}
          class={`th g-${c.group}${pinned ? ' sticky' : ''}${c.id === lastPinned ? ' pin-edge' : ''}${sorted ? ' sorted' : ''}`}
          style={style}
          data-col={c.id}
          role="columnheader"
          aria-sort={sorted ? (isDesc ? 'descending' : 'ascending') : 'none'}
        >
          <button class="th-sort" onClick={() => p.onSort(c)} title={c.sort ? `Sort by ${c.label}` : c.label} disabled={!c.sort}>
            {c.group !== 'job' && <span class="th-group">{c.group === 'param' ? 'param' : 'metric'}</span>}
            <span class="th-label">{c.label}</span>
            {sorted && (isDesc ? <IconSortDown size={12} /> : <IconSortUp size={12} />)}
          </button>
          <span class="th-tools">
            <button
              class={`th-pin${pinned ? ' on' : ''}`}
              title={pinned ? `Unpin ${c.label}` : `Pin ${c.label} to the left`}
              aria-label={pinned ? `Unpin ${c.label}` : `Pin ${c.label}`}
              aria-pressed={pinned}
              onClick={() => p.onPin(c.id, !pinned)}
            >
              <IconPin size={12} />
            </button>
            {filterFieldOf(c.id) && (
              <button class={`th-filter${filtered ? ' on' : ''}`} title={`Filter ${c.label}`} aria-label={`Filter ${c.label}`} onClick={(e) => p.onFilter(c.id, e.currentTarget)}>
                <IconFilter size={12} />
              </button>
            )}
          </span>
        </div>
      );
    };
    return (
      <div class="grid-head" role="row">
        <div class="th sticky select-col" style={{ left: '0px', width: SELECT_W + 'px' }}>
          <input
            type="checkbox"
            aria-label="Select all loaded jobs"
            title="Select all loaded jobs"
            checked={p.allSelected}
            onChange={(e) => p.onSelectAll(e.currentTarget.checked)}
          />
        </div>
        {p.cols.map(headCell)}
      </div>
    );
  }
}

/** The table: the header, the rows in view, placeholders for rows still loading. */
export function JobGrid(p: JobGridProps) {
  const { rows, cols, layout, win, selected } = p;
  const totalWidth = SELECT_W + cols.reduce((n, c) => n + c.width, 0);

  // Cell tooltips (full values, metric min/max/count) are computed when hovered, not rendered.
  const onCellHover = (e: MouseEvent) => {
    const td = (e.target as HTMLElement).closest<HTMLElement>('.td[data-col]');
    const tr = td?.closest<HTMLElement>('.tr[data-job]');
    if (!td || !tr) return;
    const job = rows.find((r) => r.job?.id === tr.dataset.job)?.job;
    const col = cols.find((c) => c.id === td.dataset.col);
    if (job && col?.title) td.title = col.title(job);
  };

  return (
    <div class="card table-card">
      <div class="grid-scroll" ref={p.scroller} role="grid" aria-rowcount={p.total} data-testid="jobs-grid">
        <div class="grid-inner" style={{ width: totalWidth + 'px' }}>
          <GridHead
            cols={cols}
            layout={layout}
            sort={p.sort}
            desc={p.desc}
            filters={p.filters}
            allSelected={p.allSelected}
            onSelectAll={p.onSelectAll}
            onSort={p.onSort}
            onFilter={p.onFilter}
            onPin={p.onPin}
          />
          <div class="grid-body" style={{ height: Math.max(p.total, 0) * ROW_H + 'px' }} onMouseOver={onCellHover}>
            {rows.map(({ i, job }) =>
              job ? (
                <Row
                  key={job.id}
                  i={i}
                  job={job}
                  selected={selected.has(job.id)}
                  cursor={p.cursor === job.id}
                  sticky={layout.sticky}
                  cols={win.cols}
                  pad={win.pad}
                  tick={isActive(job.state) ? p.now : 0}
                  onToggle={p.onToggle}
                />
              ) : (
                <div key={'p' + i} class="tr placeholder" style={{ top: i * ROW_H + 'px', width: totalWidth + 'px' }}>
                  <div class="skeleton-bar" />
                </div>
              ),
            )}
          </div>
          {p.total === 0 && (
            <div class="grid-empty">
              No job matches these filters.{' '}
              <button class="link-btn" onClick={p.onClearFilters}>
                Clear the filters
              </button>
            </div>
          )}
        </div>
      </div>
    </div>
  );
}

/** Stands in for the table until the first page of jobs arrives. */
export function GridSkeleton() {
  return (
    <div class="card table-card">
      <div class="skeleton-table">
        {Array.from({ length: 8 }, (_, i) => (
          <div key={i} class="skeleton-row" />
        ))}
      </div>
    </div>
  );
}
