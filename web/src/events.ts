// One EventSource on /api/v1/events for the whole app. Pages subscribe to job changes and to
// `track` events (a job tracked new values); the server may drop events for slow readers, so
// pages re-read state instead of patching it from the event alone, and re-read everything after
// a reconnect. Nothing polls while the stream is up; usePollWhileOffline is the fallback.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JobEvent, SearchEvent, TrackEvent } from './types';

type Listener = (e: JobEvent | null) => void; // null: reconnected, re-read everything
type TrackListener = (e: TrackEvent) => void;
const listeners = new Set<Listener>();
const trackListeners = new Set<TrackListener>();
const searchListeners = new Set<(e: SearchEvent) => void>();
const statusListeners = new Set<(live: boolean) => void>();
let source: EventSource | null = null;
let live = false;
let wasLive = false;
let retry: number | undefined;
let retryDelay = 1000;

function setLive(v: boolean) {
  if (v === live) return;
  live = v;
  for (const l of statusListeners) l(v);
}

function parse<T>(ev: Event): T | null {
  try {
    return JSON.parse((ev as MessageEvent).data) as T;
  } catch {
    return null;
  }
}

function connect() {
  if (source || retry !== undefined) return;
  const es = new EventSource('/api/v1/events');
  source = es;
  es.onopen = () => {
    retryDelay = 1000;
    setLive(true);
    if (wasLive) for (const l of [...listeners]) l(null);
    wasLive = true;
  };
  es.onerror = () => {
    setLive(false);
    // EventSource reconnects by itself after a network error, but gives up for good after an
    // HTTP error (a 401 before signing in, a proxy's 502): then start over, backing off.
    if (es.readyState !== EventSource.CLOSED || source !== es) return;
    source = null;
    if (location.pathname === '/login') return; // signing in connects again
    retry = window.setTimeout(() => {
      retry = undefined;
      if (listeners.size || trackListeners.size || searchListeners.size || statusListeners.size) connect();
    }, retryDelay);
    retryDelay = Math.min(30000, retryDelay * 2);
  };
  es.addEventListener('job', (ev) => {
    const e = parse<JobEvent>(ev);
    if (e) for (const l of [...listeners]) l(e);
  });
  es.addEventListener('track', (ev) => {
    const e = parse<TrackEvent>(ev);
    if (e) for (const l of [...trackListeners]) l(e);
  });
  es.addEventListener('search', (ev) => {
    const e = parse<SearchEvent>(ev);
    if (e) for (const l of [...searchListeners]) l(e);
  });
}

/** Closes the stream (signing out); the next subscriber opens it again. */
export function closeEvents() {
  source?.close();
  source = null;
  if (retry !== undefined) window.clearTimeout(retry);
  retry = undefined;
  retryDelay = 1000;
  wasLive = false;
  setLive(false);
}

/** Calls fn for every job change (and with null after a reconnect). */
export function useJobEvents(fn: Listener) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    connect();
    const l: Listener = (e) => ref.current(e);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
}

/** Calls fn when a search changed: its state, or a decision at a rung. */
export function useSearchEvents(fn: (e: SearchEvent) => void) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    connect();
    const l = (e: SearchEvent) => ref.current(e);
    searchListeners.add(l);
    return () => void searchListeners.delete(l);
  }, []);
}

/** Calls fn when a job tracked new values (metrics, params, tags, artifacts). */
export function useTrackEvents(fn: TrackListener) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    connect();
    const l: TrackListener = (e) => ref.current(e);
    trackListeners.add(l);
    return () => void trackListeners.delete(l);
  }, []);
}

// The server announces new values at most once a second per job and drops (rather than delays)
// the announcements in between, so the last values of a burst can come unannounced: after a
// job's announcements stop, re-read once more.
const TRAILING_MS = 1500;

/**
 * Calls fn (debounced: at most once per wait ms) when a job that want() accepts tracked new
 * values, and once more 1.5 s after that job's last announcement.
 */
export function useTracked(want: (e: TrackEvent) => boolean, fn: () => void, wait: number) {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const wantRef = useRef(want);
  wantRef.current = want;
  const st = useRef({ soon: undefined as number | undefined, trailing: new Map<string, number>() });
  const schedule = () => {
    const s = st.current;
    if (s.soon === undefined)
      s.soon = window.setTimeout(() => {
        s.soon = undefined;
        fnRef.current();
      }, wait);
  };
  useTrackEvents((e) => {
    if (!wantRef.current(e)) return;
    schedule();
    const tr = st.current.trailing;
    window.clearTimeout(tr.get(e.id));
    tr.set(
      e.id,
      window.setTimeout(() => {
        tr.delete(e.id);
        schedule();
      }, TRAILING_MS),
    );
  });
  useEffect(
    () => () => {
      const s = st.current;
      window.clearTimeout(s.soon);
      for (const t of s.trailing.values()) window.clearTimeout(t);
      s.trailing.clear();
    },
    [],
  );
}

export function useLive(): boolean {
  const [v, setV] = useState(live);
  useEffect(() => {
    connect();
    statusListeners.add(setV);
    setV(live);
    return () => void statusListeners.delete(setV);
  }, []);
  return v;
}

/** Calls fn every ms while enabled and the event stream is down: the fallback for live pages. */
export function usePollWhileOffline(fn: () => void, ms: number, enabled = true) {
  const on = useLive();
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (on || !enabled) return;
    const t = window.setInterval(() => ref.current(), ms);
    return () => window.clearInterval(t);
  }, [on, enabled, ms]);
}

/** Debounces calls: at most one run of fn per wait ms, trailing. */
export function debounce(fn: () => void, wait: number): () => void {
  let t: number | undefined;
  return () => {
    if (t !== undefined) return;
    t = window.setTimeout(() => {
      t = undefined;
      fn();
    }, wait);
  };
}
