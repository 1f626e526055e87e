// Line and scatter charts on uPlot (canvas). Series may have different x values; they are
// aligned on the union of x values, with gaps spanned.
import { useEffect, useRef } from 'preact/hooks';
import type uPlotT from 'uplot';
import { cssColor, fmtNumber } from '../format';

export const PALETTE = ['#4f6bed', '#e8743b', '#19a979', '#d64d7a', '#945ecf', '#13a4b4', '#c9a01d', '#6c8893', '#ee6868', '#2f6497'];

export interface Series {
  label: string;
  xs: ArrayLike<number>;
  ys: ArrayLike<number | null>;
  color?: string;
  /** Points only, no line (marks on a line chart). */
  points?: boolean;
  /** Line width (default 1.6). */
  width?: number;
  /** Drawn faint and thin (raw values behind a smoothed line). */
  faint?: boolean;
  /** An edge of a band (see ChartProps.bands): no line of its own. */
  band?: boolean;
}

/** A filled band between two series (indexes into ChartProps.series), e.g. a group's min and max. */
export interface Band {
  upper: number;
  lower: number;
  color: string;
}

export interface ChartProps {
  series: Series[];
  bands?: Band[];
  height?: number;
  xLabel?: string;
  time?: boolean; // x is unix seconds
  scatter?: boolean;
  logY?: boolean;
  logX?: boolean; // x values must be positive
  pointSize?: number; // scatter points
  /** Text for an x value in the legend (default: the step, or the time). */
  xValue?: (x: number) => string;
  /** Text of an x-axis tick (default: the number, or the time). */
  xTick?: (x: number) => string;
  /** Called with the series index and the x value under the cursor on click. */
  onPick?: (seriesIdx: number, x: number, dataIdx: number) => void;
  /** Show the legend (default); off for charts of many series. */
  legend?: boolean;
  testid?: string;
}

let uplotPromise: Promise<typeof uPlotT> | null = null;
const loadUPlot = () => (uplotPromise ??= import('./uplot').then((m) => m.default));

export function align(series: Series[]): uPlotT.AlignedData {
  if (series.length === 1) return [Array.from(series[0].xs), Array.from(series[0].ys)] as uPlotT.AlignedData;
  const set = new Set<number>();
  for (const s of series) for (let i = 0; i < s.xs.length; i++) set.add(s.xs[i]);
  const xs = Float64Array.from(set).sort();
  const index = new Map<number, number>();
  xs.forEach((x, i) => index.set(x, i));
  const cols = series.map((s) => {
    const ys: (number | null)[] = new Array(xs.length).fill(null);
    for (let i = 0; i < s.xs.length; i++) ys[index.get(s.xs[i])!] = s.ys[i];
    return ys;
  });
  return [Array.from(xs), ...cols] as uPlotT.AlignedData;
}

export function Chart({ series, bands = [], height = 220, xLabel = 'step', time = false, scatter = false, logY = false, logX = false, pointSize = 6, xValue, xTick, onPick, legend = true, testid }: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlotT | null>(null);
  const pick = useRef(onPick);
  pick.current = onPick;
  // The chart is made once per set of series: the formatters it calls are the latest ones.
  const fmt = useRef({ xValue, xTick });
  fmt.current = { xValue, xTick };

  useEffect(() => {
    let dead = false;
    let ro: ResizeObserver | null = null;
    loadUPlot().then((uPlot) => {
      if (dead || !host.current) return;
      const el = host.current;
      const width = Math.max(200, el.clientWidth);
      const axis = cssColor('--chart-axis', '#6b7280');
      const grid = cssColor('--chart-grid', '#eef0f4');
      const opts: uPlotT.Options = {
        width,
        height,
        scales: {
          x: logX ? { time: false, distr: 3, range: (_u, min, max) => [min / 1.15, max * 1.15] } : {
            time,
            range: (_u, min, max) => {
              const pad = min === max ? Math.abs(min) * 0.05 || 1 : (max - min) * (scatter ? 0.03 : 0);
              return [min - pad, max + pad];
            },
          },
          y: logY ? { distr: 3 } : {},
        },
        legend: { show: legend, live: true },
        cursor: { drag: { x: true, y: false }, points: { size: 7 } },
        axes: [
          {
            label: xLabel,
            stroke: axis,
            grid: { stroke: grid },
            ticks: { stroke: grid },
            labelSize: 18,
            labelFont: '12px system-ui',
            font: '11px system-ui',
            ...(xTick ? { values: (_u: uPlotT, vals: number[]) => vals.map((v) => (v == null ? '' : (fmt.current.xTick?.(v) ?? String(v)))) } : {}),
          },
          { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid }, font: '11px system-ui', size: 56, values: (_u, vals) => vals.map((v) => (v == null ? '' : fmtNumber(v))) },
        ],
        series: [
          { label: xLabel, value: xValue ? (_u, v) => (v == null ? '' : (fmt.current.xValue?.(v) ?? String(v))) : time ? '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' : (_u, v) => (v == null ? '' : String(v)) },
          ...series.map((s, i) => {
            const color = s.color ?? PALETTE[i % PALETTE.length];
            if (s.band) return { label: s.label, stroke: color + '00', width: 0, spanGaps: true, points: { show: false }, value: (_u: uPlotT, v: number | null) => (v == null ? '–' : fmtNumber(v)) } as uPlotT.Series;
            return {
              label: s.label,
              stroke: s.faint ? color + '40' : color,
              width: s.faint ? 1 : (s.width ?? 1.6),
              ...(s.faint ? { points: { show: false } } : {}),
              spanGaps: true,
              value: (_u: uPlotT, v: number | null) => (v == null ? '–' : fmtNumber(v)),
              ...(scatter || s.points
                ? { paths: () => null, points: { show: true, size: pointSize, fill: color + (pointSize < 5 ? '99' : ''), stroke: color, width: pointSize < 5 ? 0 : 1 } }
                : {}),
            } as uPlotT.Series;
          }),
        ],
        bands: bands.map((b) => ({ series: [b.upper + 1, b.lower + 1] as [number, number], fill: b.color + '2e' })),
        hooks: {
          ready: [
            (u) => {
              u.over.addEventListener('click', () => {
                const idx = u.cursor.idx;
                if (idx == null || !pick.current) return;
                let best = -1;
                let bestD = Infinity;
                const top = u.cursor.top ?? 0;
                for (let si = 1; si < u.series.length; si++) {
                  const v = u.data[si][idx];
                  if (v == null || !u.series[si].show) continue;
                  const d = Math.abs(u.valToPos(v as number, 'y') - top);
                  if (d < bestD) [best, bestD] = [si, d];
                }
                if (best > 0) pick.current(best - 1, u.data[0][idx] as number, idx);
              });
            },
          ],
        },
      };
      plot.current?.destroy();
      plot.current = new uPlot(opts, align(series), el);
      // How many bands the chart draws (tests read it).
      el.dataset.bands = String((plot.current as unknown as { bands?: unknown[] }).bands?.length ?? 0);
      ro = new ResizeObserver(() => {
        const w = Math.max(200, el.clientWidth);
        if (plot.current && Math.abs(plot.current.width - w) > 2) plot.current.setSize({ width: w, height });
      });
      ro.observe(el);
    });
    return () => {
      dead = true;
      ro?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // A new chart when the set of series changes; data-only changes go through setData below.
  }, [series.map((s) => s.label).join('\u0000'), JSON.stringify(bands), height, xLabel, time, scatter, logY, logX, pointSize, legend]);

  useEffect(() => {
    if (plot.current) plot.current.setData(align(series));
  }, [series]);

  return <div class={`chart${onPick ? ' pickable' : ''}`} ref={host} data-testid={testid} />;
}
