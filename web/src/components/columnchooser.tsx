// A column chooser: checkboxes in named groups, a search box, and "Hide all" / "Show all" per
// group. The jobs table uses it for its columns and for the chart's axes.
import { useState } from 'preact/hooks';
import { IconSearch } from './icons';

/** A group of columns to choose from. */
export interface ColumnGroup {
  name: string;
  cols: { id: string; label: string }[];
}

export function ColumnChooser({ groups, hidden, onChange }: { groups: ColumnGroup[]; hidden: Set<string>; onChange: (h: Set<string>) => void }) {
  const [q, setQ] = useState('');
  const needle = q.trim().toLowerCase();
  const total = groups.reduce((n, g) => n + g.cols.length, 0);
  return (
    <div class="col-chooser" data-testid="column-chooser">
      <label class="search small">
        <IconSearch />
        <input type="search" placeholder="Search columns" value={q} onInput={(e) => setQ(e.currentTarget.value)} autoFocus />
      </label>
      <div class="col-list">
        {total === 0 && <div class="subtle">No columns.</div>}
        {groups.map((g) => {
          const cols = g.cols.filter((c) => !needle || c.label.toLowerCase().includes(needle));
          if (!cols.length) return null;
          return (
            <div key={g.name} class="col-group">
              <div class="col-group-head">
                <span>{g.name}</span>
                <button
                  class="link-btn"
                  onClick={() => {
                    const h = new Set(hidden);
                    const allShown = cols.every((c) => !h.has(c.id));
                    for (const c of cols) allShown ? h.add(c.id) : h.delete(c.id);
                    onChange(h);
                  }}
                >
                  {cols.every((c) => !hidden.has(c.id)) ? 'Hide all' : 'Show all'}
                </button>
              </div>
              {cols.map((c) => (
                <label key={c.id} class="check">
                  <input
                    type="checkbox"
                    checked={!hidden.has(c.id)}
                    onChange={(e) => {
                      const h = new Set(hidden);
                      if (e.currentTarget.checked) h.delete(c.id);
                      else h.add(c.id);
                      onChange(h);
                    }}
                  />
                  <span>{c.label}</span>
                </label>
              ))}
            </div>
          );
        })}
        {groups.length > 0 && groups.every((g) => g.name === 'Job') && <div class="subtle small">Log some parameters or metrics to get more columns.</div>}
      </div>
    </div>
  );
}
