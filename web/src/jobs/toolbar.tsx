// The controls above the jobs table: the job id search, the "Filter" menu of fields, the column
// chooser, reloading, then the selection's actions or the job count; below
// them, the filters in force as chips.
import { Fragment } from 'preact';
import type { ComponentChildren } from 'preact';
import { ColumnChooser } from '../components/columnchooser';
import type { ColumnGroup } from '../components/columnchooser';
import { IconColumns, IconFilter, IconRefresh, IconSearch } from '../components/icons';
import { Popover } from '../components/ui';
import { colLabel, describeFilter, withFilter } from '../filters';
import type { Filter } from '../types';

/** The fields the "Filter" menu offers: the job's, then each parameter and metric. */
function filterOptions(params: string[], metrics: string[]) {
  return [
    { id: 'state', label: 'Status' },
    { id: 'id', label: 'Job ID' },
    { id: 'user', label: 'User' },
    { id: 'tags', label: 'Tag' },
    { id: 'created_at', label: 'Launched' },
    { id: 'duration', label: 'Duration' },
    ...params.map((p) => ({ id: 'param:' + p, label: p, group: 'Parameters' })),
    ...metrics.map((m) => ({ id: 'metric:' + m, label: m, group: 'Metrics' })),
  ];
}

/** The "Filter" button: a menu of fields; picking one opens its editor (onFilter) where the menu was. */
function FilterMenu({ params, metrics, onFilter }: { params: string[]; metrics: string[]; onFilter: (col: string, el: HTMLElement) => void }) {
  const options = filterOptions(params, metrics);
  return (
    <Popover label={<><IconFilter /> Filter</>} testid="add-filter">
      {(close) => (
        <div class="menu" data-testid="filter-menu">
          {options.map((o, i) => {
            const g = 'group' in o ? o.group : undefined;
            const prev = i > 0 && 'group' in options[i - 1] ? (options[i - 1] as { group?: string }).group : undefined;
            return (
              <Fragment key={o.id}>
                {g && g !== prev && <div class="menu-head">{g}</div>}
                <button
                  class="menu-item"
                  data-field={o.id}
                  onClick={(e) => {
                    close();
                    onFilter(o.id, (e.currentTarget as HTMLElement).closest('.popover-wrap') as HTMLElement);
                  }}
                >
                  {o.label}
                </button>
              </Fragment>
            );
          })}
        </div>
      )}
    </Popover>
  );
}

export function JobsToolbar(p: {
  idSearch: string;
  setIdSearch: (v: string) => void;
  filters: Filter[];
  setFilters: (fs: Filter[]) => void;
  params: string[];
  metrics: string[];
  onFilter: (col: string, el: HTMLElement) => void;
  colGroups: ColumnGroup[];
  hidden: Set<string>;
  setHidden: (h: Set<string>) => void;
  onReload: () => void;
  extra?: ComponentChildren; // more buttons, after the column chooser
  children: ComponentChildren; // at the right end: the selection's actions or the job count
}) {
  const searchId = (v: string) => p.setFilters(withFilter(p.filters, 'id', v ? { field: 'id', op: 'contains', values: [v] } : null));
  return (
    <div class="toolbar">
      <label class="search">
        <IconSearch />
        <input
          type="search"
          placeholder="Job ID contains…"
          value={p.idSearch}
          data-testid="id-search"
          onInput={(e) => p.setIdSearch(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') searchId(e.currentTarget.value.trim());
          }}
          onSearch={(e: Event) => searchId((e.currentTarget as HTMLInputElement).value.trim())}
        />
      </label>
      <FilterMenu params={p.params} metrics={p.metrics} onFilter={p.onFilter} />
      <Popover label={<><IconColumns /> Columns</>} testid="columns-button">
        <ColumnChooser groups={p.colGroups} hidden={p.hidden} onChange={p.setHidden} />
      </Popover>
      {p.extra}
      <button class="btn" title="Reload the jobs" onClick={p.onReload}>
        <IconRefresh />
      </button>
      <span class="grow" />
      {p.children}
    </div>
  );
}

/** How many jobs the project has, or match the filters. */
export function JobTotal({ total, filtered }: { total: number; filtered: boolean }) {
  return (
    <span class="subtle" data-testid="job-total">
      {total.toLocaleString()} job{total === 1 ? '' : 's'}
      {filtered ? (total === 1 ? ' matches' : ' match') : ''}
    </span>
  );
}

/** The filters in force, one chip each: the body opens its editor, × removes it. */
export function FilterChips({ filters, setFilters, onEdit, onRemoveId, onClear }: {
  filters: Filter[];
  setFilters: (fs: Filter[]) => void;
  onEdit: (col: string, el: HTMLElement) => void;
  onRemoveId: () => void; // the id filter is removed (the search box empties)
  onClear: () => void;
}) {
  return (
    <div class="chips" data-testid="filter-chips">
      {filters.map((f) => (
        <span key={f.field} class="chip" data-field={f.field}>
          <button
            class="chip-body"
            onClick={(e) => {
              const col = f.field === 'tag' ? 'tags' : f.field;
              onEdit(col, e.currentTarget as HTMLElement);
            }}
          >
            {describeFilter(f)}
          </button>
          <button
            class="chip-x"
            aria-label={`Remove filter ${colLabel(f.field)}`}
            onClick={() => {
              if (f.field === 'id') onRemoveId();
              setFilters(filters.filter((x) => x !== f));
            }}
          >
            ×
          </button>
        </span>
      ))}
      <button class="link-btn" onClick={onClear}>
        Clear all
      </button>
    </div>
  );
}
