// Formatting of values, times, durations and sizes for display.

export function fmtNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return x.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(x.toPrecision(4)));
}

/** A param or metric value: numbers compactly, lists like [1, 2], everything else as text. */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return fmtNumber(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return '[' + v.map(fmtValue).join(', ') + ']';
  return JSON.stringify(v);
}

/** The exact value, for tooltips. */
export function fullValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

const pad = (n: number) => String(n).padStart(2, '0');

export function fmtTime(iso?: string | null, seconds = false): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d.getTime())) return '';
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? s + ':' + pad(d.getSeconds()) : s;
}

export function fmtAgo(iso?: string | null): string {
  if (!iso) return '';
  const t = new Date(iso).getTime();
  if (isNaN(t)) return '';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.round(s / 86400)} d ago`;
  return fmtTime(iso).slice(0, 10);
}

export function fmtDuration(sec?: number | null): string {
  if (sec === undefined || sec === null || !Number.isFinite(sec)) return '';
  if (sec < 0) sec = 0;
  if (sec < 10) return `${sec.toFixed(1)}s`;
  const s = Math.floor(sec);
  const d = Math.floor(s / 86400),
    h = Math.floor((s % 86400) / 3600),
    m = Math.floor((s % 3600) / 60),
    r = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${pad(m)}m`;
  if (m) return `${m}m ${pad(r)}s`;
  return `${r}s`;
}

/** Seconds a job has run: to its end, or to now while it runs. */
export function jobDuration(j: { started_at?: string; finished_at?: string; duration_seconds?: number }): number | undefined {
  if (!j.started_at) return undefined;
  if (j.finished_at) return j.duration_seconds ?? (Date.parse(j.finished_at) - Date.parse(j.started_at)) / 1000;
  return (Date.now() - Date.parse(j.started_at)) / 1000;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KB', 'MB', 'GB', 'TB'];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < u.length - 1);
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${u[i]}`;
}

/** A job's name, or its short id when it has none. */
export const jobName = (j: { id: string; name?: string }) => j.name || shortId(j.id);

export const shortId = (id: string) => (id.length > 12 && /^[0-9a-f-]{36}$/.test(id) ? id.slice(0, 8) : id);

/** A colour of the stylesheet (a CSS variable of :root), for drawing on canvases in light and dark mode. */
export function cssColor(name: string, fallback: string): string {
  try {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  } catch {
    return fallback;
  }
}
