// The jobs table's filter editor: a status checklist, a user checklist, a text "contains", or a
// number / time range, for one column; and the popup it floats in below what opened it.
import { useMemo, useState } from 'preact/hooks';
import { IconSearch } from '../components/icons';
import { StateBadge } from '../components/ui';
import { colLabel } from '../filters';
import type { FilterKind } from '../filters';
import { fmtNumber } from '../format';
import { STATES } from '../types';
import type { Filter } from '../types';

/** A copy of a set of checked values, with v checked or not. */
function withMember(set: Set<string>, v: string, on: boolean): Set<string> {
  const n = new Set(set);
  if (on) n.add(v);
  else n.delete(v);
  return n;
}

/** Users to pick from: more than this many get a search box. */
const USER_SEARCH_OVER = 8;

/** A checkbox per user of the project (GET /projects/{name} lists who submitted jobs). */
function UserChoice({ users, chosen, onChange }: { users: string[]; chosen: Set<string>; onChange: (s: Set<string>) => void }) {
  const [q, setQ] = useState('');
  const needle = q.trim().toLowerCase();
  const shown = needle ? users.filter((u) => u.toLowerCase().includes(needle)) : users;
  return (
    <div class="user-choice">
      {users.length > USER_SEARCH_OVER && (
        <label class="search small">
          <IconSearch />
          <input type="search" placeholder={`Search ${users.length} users`} value={q} onInput={(e) => setQ(e.currentTarget.value)} autoFocus aria-label="Search users" />
        </label>
      )}
      <div class="user-list">
        {shown.map((u) => (
          <label key={u} class="check" data-testid="user-option">
            <input
              type="checkbox"
              checked={chosen.has(u)}
              onChange={(e) => onChange(withMember(chosen, u, e.currentTarget.checked))}
            />
            <span>{u}</span>
          </label>
        ))}
        {!shown.length && <div class="subtle small">No user matches.</div>}
      </div>
      <div class="user-choice-foot subtle small">
        <span>{chosen.size ? `${chosen.size} of ${users.length} chosen` : 'None chosen: every user'}</span>
        {chosen.size > 0 && (
          <button type="button" class="link-btn" onClick={() => onChange(new Set())}>
            Clear
          </button>
        )}
      </div>
    </div>
  );
}

function FilterEditor({ field, kind, current, sample, users = [], onApply, onClose }: {
  field: string;
  kind: FilterKind;
  current?: Filter;
  sample: unknown[];
  users?: string[];
  onApply: (f: Filter | null) => void;
  onClose: () => void;
}) {
  const textual = kind === 'number' && (current?.op === 'contains' || current?.op === 'in' || (!current && sample.some((v) => typeof v === 'string' || typeof v === 'boolean')));
  const [mode, setMode] = useState<'range' | 'text'>(kind === 'text' || kind === 'tag' || textual ? 'text' : 'range');
  const [min, setMin] = useState(current?.min !== undefined ? String(current.min) : '');
  const [max, setMax] = useState(current?.max !== undefined ? String(current.max) : '');
  const [text, setText] = useState(current?.op === 'contains' ? current.values?.[0] ?? '' : current?.op === 'in' ? (current.values ?? []).join(', ') : '');
  const [states, setStates] = useState<Set<string>>(new Set(current?.op === 'in' ? current.values : []));
  // Users: the project's, and any the filter names that no longer submit; a "contains" filter
  // (an older link) starts with the users it matches.
  const userList = useMemo(() => [...new Set([...users, ...(current?.op === 'in' ? current.values ?? [] : [])])].sort(), [users.join('\n')]);
  const [chosenUsers, setChosenUsers] = useState<Set<string>>(() => {
    if (current?.op === 'in') return new Set(current.values);
    const t = current?.op === 'contains' ? (current.values?.[0] ?? '').toLowerCase() : '';
    return new Set(t ? userList.filter((u) => u.toLowerCase().includes(t)) : []);
  });
  const toLocal = (s: string) => {
    if (!s) return '';
    const d = new Date(Number(s) * 1000);
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  const nums = sample.filter((v): v is number => typeof v === 'number');
  const hint = nums.length ? `loaded rows: ${fmtNumber(Math.min(...nums))} … ${fmtNumber(Math.max(...nums))}` : '';

  const apply = (e?: Event) => {
    e?.preventDefault();
    if (kind === 'state') return onApply(states.size ? { field, op: 'in', values: STATES.filter((s) => states.has(s)) } : null);
    if (kind === 'user') return onApply(chosenUsers.size ? { field, op: 'in', values: [...chosenUsers].sort() } : null);
    if (mode === 'text') {
      const t = text.trim();
      if (!t) return onApply(null);
      return onApply({ field, op: 'contains', values: [t] });
    }
    const f: Filter = { field, op: 'range' };
    const parse = (s: string) => (kind === 'time' ? Date.parse(s) / 1000 : Number(s));
    if (min.trim() !== '' && Number.isFinite(parse(min))) f.min = parse(min);
    if (max.trim() !== '' && Number.isFinite(parse(max))) f.max = parse(max);
    onApply(f.min === undefined && f.max === undefined ? null : f);
  };

  return (
    <form class="filter-editor" onSubmit={apply} data-testid="filter-editor" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div class="fe-title">
        Filter <strong>{colLabel(field)}</strong>
        {/* Durations are numbers to the API: it ranges them and never matches their text. */}
        {kind === 'number' && field !== 'duration' && (
          <span class="seg-toggle">
            <button type="button" class={mode === 'range' ? 'on' : ''} onClick={() => setMode('range')}>
              Range
            </button>
            <button type="button" class={mode === 'text' ? 'on' : ''} onClick={() => setMode('text')}>
              Contains
            </button>
          </span>
        )}
      </div>
      {kind === 'state' && (
        <div class="fe-states">
          {STATES.map((s) => (
            <label key={s} class="check">
              <input
                type="checkbox"
                checked={states.has(s)}
                onChange={(e) => setStates(withMember(states, s, e.currentTarget.checked))}
              />
              <StateBadge state={s} />
            </label>
          ))}
        </div>
      )}
      {kind === 'user' && <UserChoice users={userList} chosen={chosenUsers} onChange={setChosenUsers} />}
      {kind !== 'state' && kind !== 'user' && mode === 'text' && (
        <label class="field">
          <span>{kind === 'tag' ? 'Tag name contains' : 'Contains'}</span>
          <input type="text" value={text} onInput={(e) => setText(e.currentTarget.value)} data-autofocus autoFocus name="contains" />
        </label>
      )}
      {kind !== 'state' && kind !== 'user' && mode === 'range' && (
        <div class="fe-range">
          <label class="field">
            <span>{field === 'duration' ? 'Min (s)' : 'Min'}</span>
            {kind === 'time' ? (
              <input type="datetime-local" value={toLocal(min)} onInput={(e) => setMin(String(Date.parse(e.currentTarget.value) / 1000 || ''))} />
            ) : (
              <input type="text" inputMode="decimal" value={min} onInput={(e) => setMin(e.currentTarget.value)} autoFocus name="min" placeholder={field === 'duration' ? 'seconds' : ''} />
            )}
          </label>
          <label class="field">
            <span>Max</span>
            {kind === 'time' ? (
              <input type="datetime-local" value={toLocal(max)} onInput={(e) => setMax(String(Date.parse(e.currentTarget.value) / 1000 || ''))} />
            ) : (
              <input type="text" inputMode="decimal" value={max} onInput={(e) => setMax(e.currentTarget.value)} name="max" placeholder={field === 'duration' ? 'seconds' : ''} />
            )}
          </label>
        </div>
      )}
      {hint && mode === 'range' && <div class="subtle small">{hint}</div>}
      <div class="fe-actions">
        {current && (
          <button type="button" class="btn ghost" onClick={() => onApply(null)}>
            Remove
          </button>
        )}
        <span class="grow" />
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" class="btn primary" data-testid="apply-filter">
          Apply
        </button>
      </div>
    </form>
  );
}

/** Where a filter editor floats, and for which column. */
export interface EditorAt {
  col: string;
  x: number;
  y: number;
}

/** Places the editor for a column below the element that opens it. */
export function editorBelow(col: string, el: HTMLElement): EditorAt {
  const r = el.getBoundingClientRect();
  return { col, x: Math.min(r.left, window.innerWidth - 340), y: r.bottom + 4 };
}

/** The filter editor for the column at.col, floating at (at.x, at.y) over a backdrop that closes it. */
export function FilterPopup({ at, field, users, current, sample, onApply, onClose }: {
  at: EditorAt;
  field: { field: string; kind: FilterKind };
  users: string[] | null | undefined; // the project's users; none: users are filtered by text
  current?: Filter;
  sample: unknown[];
  onApply: (f: Filter | null) => void;
  onClose: () => void;
}) {
  return (
    <div class="floating" style={{ left: Math.max(8, at.x) + 'px', top: at.y + 'px' }}>
      <div class="floating-backdrop" onMouseDown={onClose} />
      <div class="popover popover-static">
        <FilterEditor
          key={at.col}
          field={field.field}
          kind={at.col === 'duration' ? 'number' : field.kind === 'user' && !users?.length ? 'text' : field.kind}
          users={users ?? []}
          current={current}
          sample={sample}
          onClose={onClose}
          onApply={onApply}
        />
      </div>
    </div>
  );
}
