// What can be done with the jobs selected in the table: the actions bar (compare, stop, delete,
// clear), and stopping or deleting them after a confirmation that says what will happen to each.
import { api } from '../api';
import { IconCompare, IconStop, IconTrash, IconX } from '../components/icons';
import { confirmDialog, StateBadge } from '../components/ui';
import { shortId } from '../format';
import { toast, toastError } from '../toast';
import { isActive, isFinished } from '../types';
import type { Job } from '../types';

export function SelectionActions({ count, onCompare, onStop, onDelete, onClear }: {
  count: number;
  onCompare: () => void;
  onStop: () => void;
  onDelete: () => void;
  onClear: () => void;
}) {
  return (
    <div class="selection-actions" data-testid="selection-actions">
      <span class="sel-count">{count} selected</span>
      <button class="btn" onClick={onCompare} data-testid="compare-selected">
        <IconCompare /> Compare
      </button>
      <button class="btn" onClick={onStop} data-testid="stop-selected">
        <IconStop /> Stop
      </button>
      <button class="btn danger-outline" onClick={onDelete} data-testid="delete-selected">
        <IconTrash /> Delete
      </button>
      <button class="icon-btn" title="Clear the selection" aria-label="Clear the selection" onClick={onClear}>
        <IconX />
      </button>
    </div>
  );
}

/** Asks, then stops the active ones of jobs (finished ones are left as they are); false if not confirmed. */
export async function stopJobs(jobs: Job[]): Promise<boolean> {
  const active = jobs.filter((j) => isActive(j.state));
  const done = jobs.length - active.length;
  const ok = await confirmDialog({
    title: active.length ? `Stop ${active.length} job${active.length === 1 ? '' : 's'}?` : 'Nothing to stop',
    body: (
      <div>
        {active.length > 0 && <p>Running jobs get SIGTERM, then SIGKILL after the grace period; queued jobs leave the queue.</p>}
        {done > 0 && (
          <p class="note">
            {done} selected job{done === 1 ? ' has' : 's have'} already finished and {done === 1 ? 'is' : 'are'} left as {done === 1 ? 'it is' : 'they are'}.
          </p>
        )}
      </div>
    ),
    confirm: 'Stop',
    danger: true,
    confirmDisabled: active.length === 0,
  });
  if (!ok) return false;
  toast(`Stopping ${active.length} job${active.length === 1 ? '' : 's'}…`);
  const stopped = await Promise.all(
    active.map((j) =>
      api.stopAndWait(j.id).then(
        () => true,
        (e) => (toastError(e, `Stop ${shortId(j.id)}`), false),
      ),
    ),
  );
  const n = stopped.filter(Boolean).length;
  if (n) toast(`Stopped ${n} job${n === 1 ? '' : 's'}`, 'success');
  return true;
}

/**
 * Asks, then deletes the finished ones of jobs (queued and running ones are named as not
 * deletable); resolves with the ids deleted, or null if not confirmed.
 */
export async function deleteJobs(jobs: Job[]): Promise<Set<string> | null> {
  const finished = jobs.filter((j) => isFinished(j.state));
  const blocked = jobs.filter((j) => !isFinished(j.state));
  const ok = await confirmDialog({
    title: finished.length ? `Delete ${finished.length} job${finished.length === 1 ? '' : 's'}?` : 'These jobs cannot be deleted',
    body: (
      <div data-testid="delete-dialog">
        {finished.length > 0 && <p>Their records, logs, archives and artifacts are deleted. This cannot be undone.</p>}
        {blocked.length > 0 && (
          <div class="warn" data-testid="cannot-delete">
            <strong>
              {blocked.length} job{blocked.length === 1 ? ' is' : 's are'} still queued or running and cannot be deleted.
            </strong>{' '}
            Stop {blocked.length === 1 ? 'it' : 'them'} first:
            <ul class="idlist">
              {blocked.slice(0, 6).map((j) => (
                <li key={j.id}>
                  {j.name && <span>{j.name} </span>}<span class="mono">{shortId(j.id)}</span> <StateBadge state={j.state} />
                </li>
              ))}
              {blocked.length > 6 && <li>… and {blocked.length - 6} more</li>}
            </ul>
          </div>
        )}
      </div>
    ),
    confirm: finished.length ? `Delete ${finished.length}` : 'Delete',
    danger: true,
    confirmDisabled: finished.length === 0,
  });
  if (!ok) return null;
  let n = 0;
  const gone = new Set<string>();
  for (const j of finished) {
    try {
      await api.remove(j.id);
      gone.add(j.id);
      n++;
    } catch (e) {
      toastError(e, `Delete ${shortId(j.id)}`);
    }
  }
  if (n) toast(`Deleted ${n} job${n === 1 ? '' : 's'}`, 'success');
  return gone;
}
