// An input that adds a job by id, suggesting the project's recent jobs.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { fmtTime, shortId } from '../format';
import type { Job } from '../types';
import { IconPlus } from './icons';

let seq = 0;

export function JobPicker({ project, exclude, onPick, label = 'Add' }: { project: string; exclude: string[]; onPick: (id: string) => void; label?: string }) {
  const [text, setText] = useState('');
  const [recent, setRecent] = useState<Job[] | null>(null);
  const [listId] = useState(() => `job-picker-${++seq}`);
  const load = () => {
    if (recent === null) api.jobs({ project, limit: 200 }).then((r) => setRecent(r.jobs), () => setRecent([]));
  };
  return (
    <form
      class="add-job"
      onSubmit={(e) => {
        e.preventDefault();
        const v = text.trim();
        if (v && !exclude.includes(v)) onPick(v);
        setText('');
      }}
    >
      <input list={listId} placeholder="Job id" value={text} onFocus={load} onInput={(e) => setText(e.currentTarget.value)} aria-label="Job id to add" />
      <datalist id={listId}>
        {(recent ?? [])
          .filter((j) => !exclude.includes(j.id))
          .map((j) => (
            <option key={j.id} value={j.id}>
              {j.name ? `${j.name} ${shortId(j.id)}` : shortId(j.id)} · {j.state} · {fmtTime(j.created_at)}
            </option>
          ))}
      </datalist>
      <button class="btn" type="submit" disabled={!text.trim()}>
        <IconPlus /> {label}
      </button>
    </form>
  );
}
