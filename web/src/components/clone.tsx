// "Clone and edit": queue a copy of a job with some of its submitted params changed (and a name),
// through POST /api/v1/jobs/{id}/clone. Values are read as JSON when they parse (0.1, true, [1, 2],
// "text"), else as text.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { fullValue, jobName } from '../format';
import { navigate } from '../router';
import { toast, toastError } from '../toast';
import type { Job } from '../types';
import { Modal } from './ui';

/** A param's value as typed: JSON when it parses, else the text itself. */
export function parseParam(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A value as the form shows it: text as itself unless it would read back as something else. */
const showParam = (v: unknown) => (typeof v === 'string' && parseParam(v) === v ? v : JSON.stringify(v));

export function CloneDialog({ job, onClose }: { job: Job; onClose: () => void }) {
  const submitted = job.submitted_params ?? {};
  const [rows, setRows] = useState<{ key: string; value: string; orig?: string }[]>(() =>
    Object.keys(submitted)
      .sort()
      .map((k) => ({ key: k, value: showParam(submitted[k]), orig: k })),
  );
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (i: number, patch: Partial<{ key: string; value: string }>) => setRows(rows.map((r, k) => (k === i ? { ...r, ...patch } : r)));

  const submit = async () => {
    // Only what changed goes with the request: the server keeps the rest of the job's params.
    const params: Record<string, unknown> = {};
    for (const r of rows) {
      const key = r.key.trim();
      if (!key) continue;
      const v = parseParam(r.value);
      if (r.orig === key && fullValue(v) === fullValue(submitted[key])) continue;
      params[key] = v;
    }
    setBusy(true);
    try {
      const res = await api.clone(job.id, params, name.trim() || undefined);
      toast(`Queued ${jobName(res.job)}`, 'success');
      onClose();
      navigate(`/jobs/${encodeURIComponent(res.job.id)}`);
    } catch (e) {
      toastError(e, 'Clone');
      setBusy(false);
    }
  };

  return (
    <Modal
      title={`Clone ${jobName(job)} and edit`}
      onClose={onClose}
      wide
      footer={
        <>
          <button class="btn" onClick={onClose}>
            Cancel
          </button>
          <button class="btn primary" onClick={submit} disabled={busy} data-testid="clone-submit">
            Queue the clone
          </button>
        </>
      }
    >
      <p class="subtle">
        A new job of {job.project} with the same files, command and resources, and these params. Values are JSON (<code>0.1</code>, <code>true</code>, <code>"text"</code>) or plain text.
      </p>
      <div class="clone-form" data-testid="clone-dialog">
        <label class="clone-row">
          <span class="clone-k">Name</span>
          <input type="text" value={name} placeholder="made up when empty" onInput={(e) => setName(e.currentTarget.value)} data-testid="clone-name" />
        </label>
        {rows.map((r, i) => (
          <div key={i} class="clone-row">
            {r.orig ? (
              <span class="clone-k mono">{r.key}</span>
            ) : (
              <input class="clone-k mono" type="text" placeholder="param" value={r.key} onInput={(e) => set(i, { key: e.currentTarget.value })} aria-label="New param name" />
            )}
            <input class="mono" type="text" value={r.value} onInput={(e) => set(i, { value: e.currentTarget.value })} aria-label={`Value of ${r.key || 'the new param'}`} data-param={r.key} />
          </div>
        ))}
        <button class="btn small ghost" onClick={() => setRows([...rows, { key: '', value: '' }])} data-testid="clone-add-param">
          Add a param
        </button>
      </div>
    </Modal>
  );
}
