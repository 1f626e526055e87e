// A job's output, streamed live from GET /logs?follow=true. A long log loads from its tail (the
// last 2 MB, from a whole line) and earlier output 2 MB at a time on demand. Carriage returns
// collapse progress bars, ANSI colours are rendered, and only the lines on screen are in the
// DOM, so logs of any length scroll smoothly.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { errorMessage, logsURL, unauthorized } from '../api';
import { LogModel, plain, segments } from '../ansi';
import type { Style } from '../ansi';
import { fmtBytes } from '../format';
import { IconDownload, Spinner } from './icons';

const LINE_H = 18;
/** How much of a log loads first (its end), and how much more each "Load earlier output". */
export const LOG_CHUNK = 2 << 20;
const MAX_LINES = 200_000;
/** Earlier output is offered while the view holds fewer lines than this. */
const EARLIER_UNTIL = MAX_LINES - 40_000;
const BANNER_ROWS = 2; // the "earlier output" bar above the first line loaded

function css(s: Style): Record<string, string> | undefined {
  if (!s.fg && !s.bg && !s.bold && !s.dim && !s.italic && !s.underline && !s.inverse) return undefined;
  const o: Record<string, string> = {};
  let fg = s.fg,
    bg = s.bg;
  if (s.inverse) [fg, bg] = [bg ?? '#1b1f27', fg ?? '#d6dae2'];
  if (fg) o.color = fg;
  if (bg) o.background = bg;
  if (s.bold) o.fontWeight = '700';
  if (s.dim) o.opacity = '0.65';
  if (s.italic) o.fontStyle = 'italic';
  if (s.underline) o.textDecoration = 'underline';
  return o;
}

async function failure(res: Response): Promise<Error> {
  const msg = await errorMessage(res);
  if (res.status === 401) unauthorized(msg);
  return new Error(msg);
}

/** Reads exactly n bytes from the start of a response (or fewer if it ends), then cancels it. */
async function readBytes(res: Response, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  const reader = res.body!.getReader();
  while (got < n) {
    const { done, value } = await reader.read();
    if (done) break;
    const k = Math.min(value.byteLength, n - got);
    buf.set(value.subarray(0, k), got);
    got += k;
  }
  reader.cancel().catch(() => {});
  return buf.subarray(0, got);
}

export function LogView({ jobId, active, queued = false }: { jobId: string; active: boolean; queued?: boolean }) {
  const model = useRef(new LogModel(MAX_LINES));
  const bytes = useRef(0); // the offset of the next byte to read: the end of what is loaded
  const head = useRef(-1); // the offset of the first byte loaded; -1 until the first answer
  const [headAt, setHeadAt] = useState(0);
  const [, setVer] = useState(0);
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState('');
  const [earlier, setEarlier] = useState<'idle' | 'loading'>('idle');
  const [find, setFind] = useState('');
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewH, setViewH] = useState(400);
  const stick = useRef(true);
  const shift = useRef(0); // rows added above the view, to keep it on the same lines
  const activeRef = useRef(active);
  activeRef.current = active;
  const streamGen = useRef(0);

  // Stream: the tail first, then from the last byte received; reconnect while the job is not
  // finished.
  const startStream = () => {
    const gen = ++streamGen.current;
    const ac = new AbortController();
    let raf = 0;
    const flush = () => {
      if (raf) return;
      raf = requestAnimationFrame(() => {
        raf = 0;
        if (gen === streamGen.current) setVer((v) => v + 1);
      });
    };
    (async () => {
      let failures = 0;
      while (gen === streamGen.current) {
        const follow = activeRef.current;
        try {
          setStreaming(follow);
          const first = head.current < 0;
          const res = await fetch(first ? logsURL(jobId, 0, follow, LOG_CHUNK) : logsURL(jobId, bytes.current, follow), { signal: ac.signal, cache: 'no-store' });
          if (!res.ok) throw await failure(res);
          if (first) {
            // Without the header the log is shorter than the tail asked for: it starts at 0.
            const off = Number(res.headers.get('X-Log-Offset') ?? 0) || 0;
            head.current = bytes.current = off;
            setHeadAt(off);
          }
          setError('');
          failures = 0;
          const reader = res.body!.getReader();
          const dec = new TextDecoder('utf-8');
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            bytes.current += value.byteLength;
            if (model.current.push(dec.decode(value, { stream: true }))) flush();
          }
          const tail = dec.decode();
          if (tail && model.current.push(tail)) flush();
        } catch (e) {
          if ((e as Error).name === 'AbortError') return;
          failures++;
          setError((e as Error).message);
        }
        setStreaming(false);
        if (!activeRef.current) return;
        // The job still runs (the connection dropped, or it had not started): try again soon.
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** Math.min(failures, 4))));
      }
    })();
    return () => {
      ac.abort();
      cancelAnimationFrame(raf);
      if (streamGen.current === gen) streamGen.current++;
    };
  };

  useEffect(() => startStream(), [jobId]);

  /** Loads the 2 MB before the first line loaded, from its first whole line. */
  const loadEarlier = async () => {
    const end = head.current;
    if (end <= 0 || earlier === 'loading') return;
    const from = Math.max(0, end - LOG_CHUNK);
    setEarlier('loading');
    try {
      const res = await fetch(logsURL(jobId, from), { cache: 'no-store' });
      if (!res.ok) throw await failure(res);
      const buf = await readBytes(res, end - from);
      if (buf.length < end - from) throw new Error('the log is shorter than before; reload the page');
      let cut = 0;
      if (from > 0) {
        const nl = buf.indexOf(10);
        cut = nl >= 0 ? nl + 1 : 0; // a line longer than the chunk shows from its middle
      }
      const bannerBefore = BANNER_ROWS;
      const added = model.current.prepend(new TextDecoder('utf-8').decode(buf.subarray(cut)));
      head.current = from + cut;
      shift.current += added + (head.current > 0 ? BANNER_ROWS : 0) - bannerBefore;
      setHeadAt(head.current);
      setVer((v) => v + 1);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setEarlier('idle');
    }
  };

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setViewH(el.clientHeight));
    ro.observe(el);
    setViewH(el.clientHeight);
    return () => ro.disconnect();
  }, []);

  const m = model.current;
  const needle = find.trim().toLowerCase();
  const matches: number[] | null = needle ? [] : null;
  if (matches) for (let i = 0; i < m.count; i++) if (plain(m.lines[i]).toLowerCase().includes(needle)) matches.push(i);
  const count = matches ? matches.length : m.count;
  const partial = headAt > 0 && !m.dropped; // earlier output exists and can be loaded
  const top = partial ? BANNER_ROWS : 0;

  // Keep the view at the end while new lines arrive, unless the user scrolled up; keep it on the
  // same lines when earlier output is put above them.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (stick.current) el.scrollTop = el.scrollHeight;
    else if (shift.current) el.scrollTop += shift.current * LINE_H;
    shift.current = 0;
  });

  const start = Math.max(0, Math.floor(scrollTop / LINE_H) - top - 20);
  const end = Math.min(count, Math.ceil((scrollTop + viewH) / LINE_H) + 20);
  const lines = [];
  for (let k = start; k < end; k++) {
    const i = matches ? matches[k] : k;
    lines.push(
      <div key={k} class="log-line" style={{ top: (k + top) * LINE_H + 'px' }} data-line={i}>
        {/* Line numbers only when counted from the first line (unknown for a tail). */}
        <span class="log-no">{partial ? '' : i + 1 + m.dropped}</span>
        <span class="log-text">
          {segments(m.lines[i], m.starts[i]).map((sg, j) => (
            <span key={j} style={css(sg.style)}>
              {sg.text}
            </span>
          ))}
        </span>
      </div>,
    );
  }
  const canLoadEarlier = m.lines.length < EARLIER_UNTIL;

  return (
    <div class="logview">
      <div class="log-toolbar">
        <span class="subtle" data-testid="log-status">
          {queued ? (
            'Waiting for the job to start…'
          ) : streaming ? (
            <>
              <Spinner size={12} /> Live
            </>
          ) : active ? (
            'Waiting for output…'
          ) : (
            'Complete'
          )}{' '}
          · {m.count.toLocaleString()} line{m.count === 1 ? '' : 's'}
          {m.dropped ? ` (first ${m.dropped.toLocaleString()} not shown)` : ''}
          {partial ? ` (the last ${fmtBytes(bytes.current - headAt)} of ${fmtBytes(bytes.current)})` : ''}
        </span>
        {error && <span class="log-error">{error}</span>}
        <span class="grow" />
        <input class="log-find" type="search" placeholder={partial ? 'Find in loaded lines' : 'Find in log'} value={find} onInput={(e) => setFind(e.currentTarget.value)} />
        {matches && <span class="subtle small">{matches.length} match{matches.length === 1 ? '' : 'es'}</span>}
        <button
          class="btn small"
          onClick={() => {
            stick.current = true;
            const el = box.current;
            if (el) el.scrollTop = el.scrollHeight;
          }}
        >
          End
        </button>
        <a class="btn small" href={logsURL(jobId)} download={`${jobId}.log`} title="Download the full log">
          <IconDownload size={13} /> Download
        </a>
      </div>
      <div
        class="log-box"
        ref={box}
        data-testid="log"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 24;
          setScrollTop(el.scrollTop);
        }}
      >
        {count === 0 && !partial ? (
          <div class="log-empty">{needle ? 'No line matches.' : queued ? 'The job is queued. Its output appears here as soon as it starts.' : active ? 'No output yet. New lines appear here as the job writes them.' : 'This job wrote no output.'}</div>
        ) : (
          <div class="log-inner" style={{ height: (count + top) * LINE_H + 'px' }}>
            {partial && (
              <div class="log-earlier" style={{ height: BANNER_ROWS * LINE_H + 'px' }} data-testid="log-earlier">
                <span>{fmtBytes(headAt)} of earlier output not loaded</span>
                {canLoadEarlier ? (
                  <button class="log-earlier-btn" onClick={loadEarlier} disabled={earlier === 'loading'} data-testid="load-earlier">
                    {earlier === 'loading' ? (
                      <>
                        <Spinner size={11} /> Loading…
                      </>
                    ) : (
                      `Load earlier output (${fmtBytes(Math.min(LOG_CHUNK, headAt))})`
                    )}
                  </button>
                ) : (
                  <a href={logsURL(jobId)} download={`${jobId}.log`}>
                    Download the full log
                  </a>
                )}
              </div>
            )}
            {count === 0 && needle && (
              <div class="log-empty" style={{ paddingTop: '4px' }}>
                No loaded line matches.
              </div>
            )}
            {lines}
          </div>
        )}
      </div>
    </div>
  );
}
