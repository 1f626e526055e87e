// One EventSource on /api/v1/events for the whole app. Pages subscribe to job changes; the
// server may drop changes for slow readers, so pages re-read state instead of patching it from
// the event alone, and re-read everything after a reconnect.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JobEvent } from './types';

type Listener = (e: JobEvent | null) => void; // null: reconnected, re-read everything
const listeners = new Set<Listener>();
const statusListeners = new Set<(live: boolean) => void>();
let source: EventSource | null = null;
let live = false;
let wasLive = false;

function setLive(v: boolean) {
  if (v === live) return;
  live = v;
  for (const l of statusListeners) l(v);
}

function connect() {
  if (source) return;
  source = new EventSource('/api/v1/events');
  source.onopen = () => {
    setLive(true);
    if (wasLive) for (const l of [...listeners]) l(null);
    wasLive = true;
  };
  source.onerror = () => setLive(false); // EventSource reconnects by itself
  source.addEventListener('job', (ev) => {
    let e: JobEvent;
    try {
      e = JSON.parse((ev as MessageEvent).data);
    } catch {
      return;
    }
    for (const l of [...listeners]) l(e);
  });
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
