// Parallel coordinates over a project's jobs, drawn on a canvas: one vertical axis per chosen
// param or metric, one polyline per job. Dragging along an axis brushes a range; the brush is a
// filter of the jobs table (range for numbers, a set of values for text). Dragging an axis
// title moves the axis.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { colLabel } from '../filters';
import { cssColor, fmtNumber, fmtValue } from '../format';
import { toastError } from '../toast';
import type { Filter, Values } from '../types';
import { Spinner } from './icons';

interface Axis {
  field: string;
  numeric: boolean;
  log: boolean; // positions are of log10(value)
  canLog: boolean; // numeric, every value positive
  min: number;
  max: number;
  cats: string[];
  catIndex: Map<string, number>;
  pos: Float64Array; // 0 (bottom) .. 1 (top) per job, NaN when missing
}

const TOP = 40;
const BOTTOM = 22;
const SIDE = 56;
const STOPS = [
  [13, 8, 135],
  [106, 0, 168],
  [177, 42, 144],
  [225, 100, 98],
  [245, 150, 40],
];
const BUCKETS = 24;
const bucketColor = (b: number, alpha: number) => {
  const t = b / (BUCKETS - 1);
  const x = t * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const c = STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * f));
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
};

function niceTicks(min: number, max: number, n = 5): number[] {
  const span = max - min;
  if (!(span > 0)) return [min];
  const step0 = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** An axis is logarithmic by default when its values are positive and span two decades or more. */
const autoLog = (min: number, max: number) => min > 0 && max / min >= 100;

/** The 0..1 position of a value on a numeric axis, and back. */
const posOf = (a: Axis, x: number) => (a.log ? (Math.log10(x) - Math.log10(a.min)) / (Math.log10(a.max) - Math.log10(a.min)) : (x - a.min) / (a.max - a.min));
const valueAt = (a: Axis, p: number) => (a.log ? Math.pow(10, Math.log10(a.min) + p * (Math.log10(a.max) - Math.log10(a.min))) : a.min + p * (a.max - a.min));

/** Ticks of a log axis: the powers of ten in range, with 2 and 5 times them when there are few. */
function logTicks(min: number, max: number): number[] {
  const out: number[] = [];
  const lo = Math.floor(Math.log10(min)),
    hi = Math.ceil(Math.log10(max));
  const mults = hi - lo <= 3 ? [1, 2, 5] : [1];
  for (let e = lo; e <= hi; e++) for (const m of mults) {
    const v = Number((m * Math.pow(10, e)).toPrecision(6));
    if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
  }
  return out;
}

/** The axes of the fields; logPref holds the user's choice of log (true) or linear (false) per field. */
function buildAxes(v: Values, fields: string[], logPref: Map<string, boolean>): Axis[] {
  const n = v.ids.length;
  return fields.map((field) => {
    const col = v.columns[field] ?? [];
    let numeric = true;
    let any = false;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = col[i];
      if (x === null || x === undefined) continue;
      any = true;
      if (typeof x !== 'number') {
        numeric = false;
        break;
      }
      if (x < min) min = x;
      if (x > max) max = x;
    }
    const pos = new Float64Array(n);
    if (!any) {
      pos.fill(NaN);
      return { field, numeric: true, log: false, canLog: false, min: 0, max: 1, cats: [], catIndex: new Map(), pos };
    }
    if (numeric) {
      const canLog = min > 0 && max > min;
      const log = canLog && (logPref.get(field) ?? autoLog(min, max));
      if (min === max) {
        min -= Math.abs(min) * 0.1 || 1;
        max += Math.abs(max) * 0.1 || 1;
      }
      const a: Axis = { field, numeric, log, canLog, min, max, cats: [], catIndex: new Map(), pos };
      for (let i = 0; i < n; i++) {
        const x = col[i];
        pos[i] = typeof x === 'number' ? posOf(a, x) : NaN;
      }
      return a;
    }
    const set = new Set<string>();
    for (let i = 0; i < n; i++) if (col[i] !== null && col[i] !== undefined) set.add(fmtValue(col[i]));
    const cats = [...set].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const catIndex = new Map(cats.map((c, i) => [c, i]));
    const k = cats.length;
    for (let i = 0; i < n; i++) {
      const x = col[i];
      pos[i] = x === null || x === undefined ? NaN : k === 1 ? 0.5 : catIndex.get(fmtValue(x))! / (k - 1);
    }
    return { field, numeric: false, log: false, canLog: false, min: 0, max: 1, cats, catIndex, pos };
  });
}

/** The brush of an axis from the table's filters, as a 0..1 interval, or null. */
function brushOf(a: Axis, f: Filter | undefined): [number, number] | null {
  if (!f) return null;
  if (a.numeric && f.op === 'range') {
    const lo = f.min === undefined ? 0 : a.log && f.min <= 0 ? -0.02 : posOf(a, f.min);
    const hi = f.max === undefined ? 1 : a.log && f.max <= 0 ? -0.02 : posOf(a, f.max);
    return [Math.max(-0.02, lo), Math.min(1.02, hi)];
  }
  if (!a.numeric && f.op === 'in' && f.values?.length) {
    const idx = f.values.map((v) => a.catIndex.get(v)).filter((i): i is number => i !== undefined);
    if (!idx.length) return [0, 0];
    const k = a.cats.length;
    const p = (i: number) => (k === 1 ? 0.5 : i / (k - 1));
    const pad = k > 1 ? 0.35 / (k - 1) : 0.1;
    return [p(Math.min(...idx)) - pad, p(Math.max(...idx)) + pad];
  }
  return null;
}

function brushFilter(a: Axis, lo: number, hi: number): Filter | null {
  if (a.numeric) {
    // A brush that reaches an end of the axis is open on that side.
    const r = (x: number) => Number(x.toPrecision(6));
    const f: Filter = { field: a.field, op: 'range' };
    if (lo > 0.004) f.min = r(valueAt(a, lo));
    if (hi < 0.996) f.max = r(valueAt(a, hi));
    return f.min === undefined && f.max === undefined ? null : f;
  }
  const k = a.cats.length;
  const vals = a.cats.filter((_, i) => {
    const p = k === 1 ? 0.5 : i / (k - 1);
    return p >= lo && p <= hi;
  });
  return vals.length ? { field: a.field, op: 'in', values: vals } : null;
}

export interface ParCoordsProps {
  project: string;
  /** The values to draw, when the caller has them (a search's trials); else they are fetched. */
  values?: Values;
  /** What a line is, in the footer (default: jobs). */
  noun?: string;
  axes: string[];
  filters: Filter[]; // all filters of the table: those on axes are brushes
  refresh: number; // changes when the jobs changed
  ready: boolean; // false while the table loads a new query
  onBrush: (field: string, f: Filter | null) => void;
  onAxes: (axes: string[]) => void;
  /** The user's choice of log (true) or linear (false) axes; others are log when their values span decades. */
  logPref?: Map<string, boolean>;
  onLog?: (field: string, log: boolean) => void;
  height?: number;
}

const NO_PREF = new Map<string, boolean>();

export function ParCoords({ project, values, noun = 'jobs', axes, filters, refresh, ready, onBrush, onAxes, logPref = NO_PREF, onLog, height = 300 }: ParCoordsProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const wrap = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  const [data, setData] = useState<{ v: Values; axes: Axis[] } | null>(null);
  const [loading, setLoading] = useState(false);
  const [drag, setDrag] = useState<{ axis: number; y0: number; y1: number } | null>(null);
  const [move, setMove] = useState<{ axis: number; x: number } | null>(null);
  const logKey = [...logPref].map(([k, v]) => `${k}=${v}`).join(',');

  const axisSet = new Set(axes);
  const brushFilters = filters.filter((f) => axisSet.has(f.field) && (f.op === 'range' || f.op === 'in'));
  const context = filters.filter((f) => !brushFilters.includes(f));

  // The chart waits while the table loads a new query (ready false), so that the rows are on
  // screen first; it fetches again only when its own inputs change.
  const fetchKey = JSON.stringify([project, axes, context, refresh]);
  const lastKey = useRef('');
  useEffect(() => {
    if (values) setData(axes.length ? { v: values, axes: buildAxes(values, axes, logPref) } : null);
  }, [values, axes.join('\u0000'), logKey]);
  // Switching an axis between log and linear needs no new values.
  useEffect(() => {
    if (!values) setData((d) => (d ? { v: d.v, axes: buildAxes(d.v, axes, logPref) } : d));
  }, [logKey]);
  useEffect(() => {
    if (!axes.length) {
      setData(null);
      return;
    }
    if (values || !ready || lastKey.current === fetchKey) return;
    lastKey.current = fetchKey;
    const ac = new AbortController();
    let done = false;
    setLoading(true);
    api
      .values(project, axes, context, ac.signal)
      .then((v) => {
        done = true;
        setData({ v, axes: buildAxes(v, axes, logPref) });
        setLoading(false);
      })
      .catch((e) => {
        done = true;
        if (e.name !== 'AbortError') {
          setLoading(false);
          toastError(e, 'Chart');
        }
      });
    return () => {
      if (!done) {
        ac.abort();
        lastKey.current = '';
      }
    };
  }, [fetchKey, ready]);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    setWidth(el.clientWidth);
    return () => ro.disconnect();
  }, []);

  const plotH = height - TOP - BOTTOM;
  const xs = useMemo(() => {
    const k = data?.axes.length ?? 0;
    const inner = width - 2 * SIDE;
    return Array.from({ length: k }, (_, i) => (k === 1 ? width / 2 : SIDE + (inner * i) / (k - 1)));
  }, [width, data]);
  const toY = (p: number) => TOP + (1 - p) * plotH;
  const fromY = (y: number) => 1 - (y - TOP) / plotH;

  const brushes: ([number, number] | null)[] = (data?.axes ?? []).map((a, i) => {
    if (drag && drag.axis === i) {
      const p0 = fromY(drag.y0),
        p1 = fromY(drag.y1);
      return [Math.min(p0, p1), Math.max(p0, p1)];
    }
    return brushOf(a, brushFilters.find((f) => f.field === a.field));
  });

  // Which jobs pass every brush.
  const active = useMemo(() => {
    if (!data) return null;
    const n = data.v.ids.length;
    const ok = new Uint8Array(n).fill(1);
    data.axes.forEach((a, k) => {
      const b = brushes[k];
      if (!b) return;
      for (let i = 0; i < n; i++) {
        const p = a.pos[i];
        if (!(p >= b[0] - 1e-9 && p <= b[1] + 1e-9)) ok[i] = 0;
      }
    });
    return ok;
  }, [data, JSON.stringify(brushes)]);
  const activeCount = active ? active.reduce((s, x) => s + x, 0) : 0;

  // Axis order while an axis title is dragged.
  const order = useMemo(() => {
    const k = data?.axes.length ?? 0;
    const idx = Array.from({ length: k }, (_, i) => i);
    if (!move) return idx;
    idx.splice(move.axis, 1);
    let at = 0;
    while (at < idx.length && xs[idx[at]] < move.x) at++;
    idx.splice(at, 0, move.axis);
    return idx;
  }, [data, move, xs]);
  const drawn = useRef<unknown[]>([]);
  const axisX = (i: number) => (move && move.axis === i ? move.x : xs[order.indexOf(i)]);

  useEffect(() => {
    const c = canvas.current;
    if (!c || !data || !active || !ready) return;
    const inputs = [data, active, width, drag, move, order];
    if (drawn.current.length && inputs.every((x, i) => x === drawn.current[i])) return;
    drawn.current = inputs;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(height * dpr);
    c.style.width = width + 'px';
    c.style.height = height + 'px';
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const { axes: A, v } = data;
    const n = v.ids.length;
    const seq = order;
    const colorAxis = [...A.keys()].reverse().find((k) => A[k].numeric && A[k].cats.length === 0) ?? -1;
    const paths: Path2D[] = Array.from({ length: BUCKETS }, () => new Path2D());
    const grey = new Path2D();
    for (let i = 0; i < n; i++) {
      const p: Path2D = active[i] ? (colorAxis >= 0 && !isNaN(A[colorAxis].pos[i]) ? paths[Math.round(A[colorAxis].pos[i] * (BUCKETS - 1))] : paths[0]) : grey;
      // Consecutive values are joined; a value with no neighbour gets a short dash.
      let prevX = NaN,
        prevY = NaN,
        run = 0;
      for (const k of seq) {
        const pos = A[k].pos[i];
        if (isNaN(pos)) {
          if (run === 1) (p.moveTo(prevX - 5, prevY), p.lineTo(prevX + 5, prevY));
          run = 0;
          continue;
        }
        const x = axisX(k),
          y = toY(pos);
        if (run) p.lineTo(x, y);
        else p.moveTo(x, y);
        run++;
        prevX = x;
        prevY = y;
      }
      if (run === 1) (p.moveTo(prevX - 5, prevY), p.lineTo(prevX + 5, prevY));
    }
    const alpha = Math.max(0.035, Math.min(0.85, 3.5 / Math.sqrt(Math.max(1, activeCount))));
    ctx.lineWidth = 1;
    ctx.strokeStyle = 'rgba(160,168,184,0.12)';
    ctx.stroke(grey);
    paths.forEach((p, b) => {
      ctx.strokeStyle = colorAxis >= 0 ? bucketColor(b, alpha) : `rgba(79,107,237,${alpha})`;
      ctx.stroke(p);
    });
    // Axes, ticks and brushes, in the stylesheet's colours (light or dark).
    const halo = cssColor('--chart-halo', 'rgba(255,255,255,0.92)');
    const axisColor = cssColor('--chart-axis', '#9aa3b2');
    const textColor = cssColor('--muted', '#5b6472');
    ctx.font = '10.5px system-ui, sans-serif';
    ctx.lineJoin = 'round';
    const label = (t: string, x: number, y: number) => {
      ctx.save();
      ctx.strokeStyle = halo;
      ctx.lineWidth = 3.5;
      ctx.strokeText(t, x, y);
      ctx.restore();
      ctx.fillText(t, x, y);
    };
    A.forEach((a, k) => {
      const x = axisX(k);
      ctx.strokeStyle = axisColor;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x + 0.5, TOP);
      ctx.lineTo(x + 0.5, TOP + plotH);
      ctx.stroke();
      ctx.fillStyle = textColor;
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      if (a.numeric) {
        for (const t of a.log ? logTicks(a.min, a.max) : niceTicks(a.min, a.max, 5)) {
          const y = toY(posOf(a, t));
          ctx.fillRect(x - 3, Math.round(y), 3, 1);
          label(fmtNumber(t), x - 5, y);
        }
      } else {
        const step = Math.ceil(a.cats.length / 12);
        a.cats.forEach((c, i) => {
          if (i % step) return;
          const y = toY(a.cats.length === 1 ? 0.5 : i / (a.cats.length - 1));
          ctx.fillRect(x - 3, Math.round(y), 3, 1);
          label(c.length > 10 ? c.slice(0, 9) + '…' : c, x - 5, y);
        });
      }
      const b = brushes[k];
      if (b) {
        const y0 = toY(Math.min(1.02, b[1])),
          y1 = toY(Math.max(-0.02, b[0]));
        ctx.fillStyle = 'rgba(79,107,237,0.16)';
        ctx.strokeStyle = 'rgba(79,107,237,0.9)';
        ctx.fillRect(x - 7, y0, 14, Math.max(2, y1 - y0));
        ctx.strokeRect(x - 7 + 0.5, y0 + 0.5, 14, Math.max(2, y1 - y0));
      }
    });
  }, [data, active, width, drag, move, order, ready, height]);

  const hitAxis = (x: number) => {
    let best = -1;
    let bd = 18;
    xs.forEach((ax, i) => {
      const d = Math.abs(ax - x);
      if (d < bd) [best, bd] = [order[i], d];
    });
    return best;
  };

  const onDown = (e: PointerEvent) => {
    if (!data) return;
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    const x = e.clientX - r.left,
      y = e.clientY - r.top;
    const k = hitAxis(x);
    if (k < 0) return;
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    if (y < TOP - 4) setMove({ axis: k, x });
    else setDrag({ axis: k, y0: Math.max(TOP, Math.min(TOP + plotH, y)), y1: Math.max(TOP, Math.min(TOP + plotH, y)) });
    e.preventDefault();
  };
  const onMoveEv = (e: PointerEvent) => {
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    if (drag) setDrag({ ...drag, y1: Math.max(TOP - 6, Math.min(TOP + plotH + 6, e.clientY - r.top)) });
    else if (move) setMove({ ...move, x: Math.max(SIDE / 2, Math.min(width - SIDE / 2, e.clientX - r.left)) });
    else {
      const x = e.clientX - r.left,
        y = e.clientY - r.top;
      const k = hitAxis(x);
      (e.currentTarget as HTMLElement).style.cursor = k < 0 ? 'default' : y < TOP - 4 ? 'grab' : 'ns-resize';
    }
  };
  const onUp = () => {
    if (drag && data) {
      const a = data.axes[drag.axis];
      if (Math.abs(drag.y1 - drag.y0) < 3) onBrush(a.field, null);
      else {
        const p0 = fromY(drag.y0),
          p1 = fromY(drag.y1);
        onBrush(a.field, brushFilter(a, Math.min(p0, p1), Math.max(p0, p1)));
      }
      setDrag(null);
    }
    if (move && data) {
      const next = order.map((i) => data.axes[i].field);
      setMove(null);
      if (next.join(',') !== axes.join(',')) onAxes(next);
    }
  };

  return (
    <div class="parcoords" ref={wrap} data-testid="parcoords">
      {!axes.length && <div class="parcoords-empty">Choose parameters and metrics to compare jobs along parallel axes.</div>}
      {axes.length > 0 && (
        <div class="parcoords-stage" style={{ height: height + 'px' }}>
          <canvas
            ref={canvas}
            onPointerDown={onDown}
            onPointerMove={onMoveEv}
            onPointerUp={onUp}
            onPointerCancel={onUp}
            aria-label="Parallel coordinates chart: drag along an axis to filter jobs"
            role="img"
          />
          {data &&
            data.axes.map((a, k) => (
              <div key={a.field} class={`pc-label pc-${a.field.split(':')[0]}`} style={{ left: axisX(k) + 'px' }} title={`${a.field} — drag to move the axis`} data-field={a.field}>
                {colLabel(a.field)}
              </div>
            ))}
          {data &&
            onLog &&
            data.axes.map((a, k) =>
              a.canLog ? (
                <button
                  key={a.field}
                  class={`pc-log${a.log ? ' on' : ''}`}
                  style={{ left: axisX(k) + 'px', top: height - BOTTOM + 3 + 'px' }}
                  title={a.log ? `${colLabel(a.field)}: logarithmic axis (click for linear)` : `${colLabel(a.field)}: linear axis (click for logarithmic)`}
                  aria-pressed={a.log}
                  data-field={a.field}
                  onClick={() => onLog(a.field, !a.log)}
                >
                  log
                </button>
              ) : null,
            )}
          {loading && (
            <div class="parcoords-loading">
              <Spinner />
            </div>
          )}
        </div>
      )}
      {data && (
        <div class="parcoords-foot subtle">
          {brushFilters.length || drag ? (
            <>
              <strong data-testid="pc-count">{activeCount.toLocaleString()}</strong> of {data.v.ids.length.toLocaleString()} {noun} inside the brushes
            </>
          ) : (
            <>
              {data.v.ids.length.toLocaleString()} {noun} · drag along an axis to filter, drag a title to move it
            </>
          )}
        </div>
      )}
    </div>
  );
}
