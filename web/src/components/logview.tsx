// A job's output, streamed live from GET /logs?follow=true. Carriage returns collapse progress
// bars, ANSI colours are rendered, and only the lines on screen are in the DOM, so logs of any
// length scroll smoothly.
import { useEffect, useRef, useState } from 'preact/hooks';
import { logsURL } from '../api';
import { LogModel, plain, segments } from '../ansi';
import type { Style } from '../ansi';
import { IconDownload, Spinner } from './icons';

const LINE_H = 18;

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

export function LogView({ jobId, active, queued = false }: { jobId: string; active: boolean; queued?: boolean }) {
  const model = useRef(new LogModel());
  const bytes = useRef(0);
  const [, setVer] = useState(0);
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState('');
  const [find, setFind] = useState('');
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewH, setViewH] = useState(400);
  const stick = useRef(true);
  const activeRef = useRef(active);
  activeRef.current = active;
  const streamGen = useRef(0);

  // Stream: read from the last byte received; reconnect while the job is not finished.
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
          const res = await fetch(logsURL(jobId, bytes.current, follow), { signal: ac.signal, cache: 'no-store' });
          if (!res.ok) {
            let msg = `${res.status} ${res.statusText}`;
            try {
              msg = (await res.json()).error ?? msg;
            } catch {
              /* keep the status */
            }
            throw new Error(msg);
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

  // Keep the view at the end while new lines arrive, unless the user scrolled up.
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });

  const start = Math.max(0, Math.floor(scrollTop / LINE_H) - 20);
  const end = Math.min(count, Math.ceil((scrollTop + viewH) / LINE_H) + 20);
  const lines = [];
  for (let k = start; k < end; k++) {
    const i = matches ? matches[k] : k;
    lines.push(
      <div key={k} class="log-line" style={{ top: k * LINE_H + 'px' }}>
        <span class="log-no">{i + 1 + m.dropped}</span>
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
        </span>
        {error && <span class="log-error">{error}</span>}
        <span class="grow" />
        <input class="log-find" type="search" placeholder="Find in log" value={find} onInput={(e) => setFind(e.currentTarget.value)} />
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
        {count === 0 ? (
          <div class="log-empty">{needle ? 'No line matches.' : queued ? 'The job is queued. Its output appears here as soon as it starts.' : active ? 'No output yet. New lines appear here as the job writes them.' : 'This job wrote no output.'}</div>
        ) : (
          <div class="log-inner" style={{ height: count * LINE_H + 'px' }}>
            {lines}
          </div>
        )}
      </div>
    </div>
  );
}
