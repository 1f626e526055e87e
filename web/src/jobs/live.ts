// Keeping the jobs table and its chart live: re-reading the rows on screen when jobs of the project
// change or track new values (from the server's events; polling only while the stream is down),
// re-reading the chart less often, and the clock that running jobs' durations tick with.
import { useEffect, useRef, useState } from 'preact/hooks';
import { debounce, useJobEvents, usePollWhileOffline, useTracked } from '../events';
import type { JobPages } from './jobpages';

/**
 * Follows the project's jobs for the table (list) and the chart. The page sets inView to the
 * rows it renders; onDeleted hears of each job deleted. Returns the clock of running jobs'
 * durations, and chartN, which changes when the chart should re-read the jobs.
 */
export function useLiveTable(project: string, list: JobPages, showChart: boolean, onDeleted: (id: string) => void) {
  // Debounced and event callbacks are made once: they refresh through the current query's list.
  const listRef = useRef(list);
  listRef.current = list;
  const [chartN, setChartN] = useState(0);
  const [now, setNow] = useState(Date.now());

  // Live: re-read what is on screen when a job of this project changes.
  const [onChange] = useState(() => debounce(() => listRef.current.refresh(), 600));
  // The chart reads every job of the project: at most every 3 s.
  const [onChartChange] = useState(() => debounce(() => setChartN((n) => n + 1), 3000));
  useJobEvents((e) => {
    if (e && e.project !== project) return;
    if (e?.deleted) onDeleted(e.id);
    onChange();
    onChartChange();
  });

  // Running jobs on screen: their values change without state changes. The server announces
  // new values (`event: track`, at most once a second per job): re-read the rows on screen when
  // one of them tracked some, at most once a second; the chart, at most every 10 s. Only while the
  // event stream is down do the rows of running jobs get polled.
  const inView = useRef({ active: false, ids: new Set<string>() });
  useTracked((e) => e.project === project && inView.current.ids.has(e.id), () => list.refresh(), 1000);
  useTracked((e) => e.project === project && showChart, () => setChartN((n) => n + 1), 10000);
  usePollWhileOffline(() => inView.current.active && list.refresh(), 10000);
  // Durations of running jobs tick each second.
  useEffect(() => {
    const t = window.setInterval(() => {
      if (!inView.current.active) return;
      setNow(Date.now());
    }, 1000);
    return () => window.clearInterval(t);
  }, []);

  return { now, chartN, rereadChart: () => setChartN((n) => n + 1), inView };
}
