// Job counts by state: a thin stacked bar and labelled pills.
import { STATES } from '../types';

export function CountsBar({ counts, total }: { counts: Record<string, number>; total: number }) {
  if (!total) return <div class="countsbar countsbar-empty" />;
  return (
    <div class="countsbar" aria-hidden="true">
      {STATES.map((s) => (counts[s] ? <span key={s} class={`seg state-bg-${s}`} style={{ flexGrow: counts[s] }} /> : null))}
    </div>
  );
}

export function CountPills({ counts }: { counts: Record<string, number> }) {
  return (
    <div class="count-pills">
      {STATES.filter((s) => counts[s]).map((s) => (
        <span key={s} class={`count-pill state-${s}`} data-state={s}>
          <span class="dot" /> {counts[s].toLocaleString()} {s}
        </span>
      ))}
    </div>
  );
}
