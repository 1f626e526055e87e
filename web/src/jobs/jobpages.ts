// The jobs table's data: pages of a project's job list for one query (sort and filters), fetched
// on demand for the rows on screen and re-read when jobs change. Holds no view state.
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { toastError } from '../toast';
import type { Filter, Job } from '../types';

/** Rows a request asks for. */
export const PAGE = 100;

interface ListState {
  gen: number;
  dataGen: number; // the query generation of the rows held
  dataKey: string; // the query of the rows held
  total: number;
  pages: Map<number, Job[]>;
  params: string[];
  metrics: string[];
  loaded: boolean;
  error: string;
}

/** The pages of the job list for one query; the rows are read with row(i) after ensure(). */
export function useJobPages(project: string, sort: string, desc: boolean, filters: Filter[]) {
  const key = JSON.stringify([project, sort, desc, filters]);
  const st = useRef<ListState>({ gen: 0, dataGen: 0, dataKey: '', total: 0, pages: new Map(), params: [], metrics: [], loaded: false, error: '' });
  const inflight = useRef(new Map<number, AbortController>());
  const want = useRef<[number, number]>([0, 1]);
  const [, setTick] = useState(0);
  const bump = () => setTick((t) => t + 1);

  const fetchPage = (page: number, gen: number, replaceAll: boolean) => {
    const queryKey = key;
    if (inflight.current.has(page) && !replaceAll) return;
    inflight.current.get(page)?.abort();
    const ac = new AbortController();
    inflight.current.set(page, ac);
    const t0 = performance.now();
    api
      .jobs({ project, sort: sort || undefined, desc, filters, limit: PAGE, offset: page * PAGE }, ac.signal)
      .then((res) => {
        if (inflight.current.get(page) === ac) inflight.current.delete(page);
        if (st.current.gen !== gen) return;
        const s = st.current;
        if (replaceAll) s.pages = new Map();
        s.dataGen = gen;
        s.dataKey = queryKey;
        s.pages.set(page, res.jobs);
        s.total = res.total;
        if (res.params) s.params = res.params;
        if (res.metrics) s.metrics = res.metrics;
        s.loaded = true;
        s.error = '';
        (window as unknown as { __atlasFetchMs?: number }).__atlasFetchMs = performance.now() - t0;
        bump();
      })
      .catch((e) => {
        if (inflight.current.get(page) === ac) inflight.current.delete(page);
        if (e.name === 'AbortError' || st.current.gen !== gen) return;
        st.current.error = e.message;
        st.current.loaded = true;
        toastError(e);
        bump();
      });
  };

  // A new query: keep showing the old rows until the first page of the new one arrives. A
  // layout effect, so that the request leaves right after the click is rendered.
  useLayoutEffect(() => {
    const gen = ++st.current.gen;
    for (const ac of inflight.current.values()) ac.abort();
    inflight.current.clear();
    fetchPage(0, gen, true);
  }, [key]);

  const pagesFor = (start: number, end: number) => {
    const out: number[] = [];
    for (let p = Math.floor(start / PAGE); p <= Math.floor(Math.max(start, end - 1) / PAGE); p++) out.push(p);
    return out;
  };

  /** Asks for the rows [start, end) to be loaded. */
  const ensure = (start: number, end: number) => {
    want.current = [start, end];
    const s = st.current;
    if (!s.loaded) return;
    // Pages far from the view are dropped, so memory stays bounded however far one scrolls.
    const lo = Math.floor(start / PAGE) - 10,
      hi = Math.floor(end / PAGE) + 10;
    for (const p of [...s.pages.keys()]) if (p < lo || p > hi) s.pages.delete(p);
    for (const p of pagesFor(start, Math.min(end, s.total))) if (!s.pages.has(p)) fetchPage(p, s.gen, false);
  };

  /** Re-reads the pages on screen (after job changes), keeping the rows shown meanwhile. */
  const refresh = () => {
    const s = st.current;
    const [a, b] = want.current;
    const keep = new Set(pagesFor(a, b));
    for (const p of [...s.pages.keys()]) if (!keep.has(p)) s.pages.delete(p);
    for (const p of keep) fetchPage(p, s.gen, false);
  };

  const row = (i: number): Job | undefined => st.current.pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  const loadedJobs = (): Job[] => [...st.current.pages.values()].flat();
  // False from the render that changes the query until its rows arrive.
  const ready = st.current.dataKey === key;
  return { s: st.current, ensure, refresh, row, loadedJobs, ready };
}

export type JobPages = ReturnType<typeof useJobPages>;
