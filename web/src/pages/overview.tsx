// The project overview: metrics across jobs over time, the markdown description and notes.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api';
import { useWho } from '../auth';
import { Chart, PALETTE } from '../components/chart';
import type { Series } from '../components/chart';
import { overviewXs } from '../chartdata';
import { CountsBar } from '../components/counts';
import { ProjectHeader, useProject } from '../components/projectheader';
import { Empty, Loading } from '../components/ui';
import { debounce, useJobEvents } from '../events';
import { fmtAgo, fmtNumber, fmtTime, shortId } from '../format';
import { renderMarkdown } from '../markdown';
import { navigate } from '../router';
import { toast, toastError } from '../toast';
import type { DescriptionEdit, Note, Values } from '../types';

function MetricsOverTime({ project }: { project: string }) {
  const [keys, setKeys] = useState<string[] | null>(null);
  const [params, setParams] = useState<string[]>([]);
  const [xAxis, setXAxis] = useState('time'); // time, order, or param:<key>
  const [logY, setLogY] = useState(false);
  const [logXWanted, setLogX] = useState(false);
  const [chosen, setChosen] = useState<string[]>([]);
  const [vals, setVals] = useState<Values | null>(null);
  const [loading, setLoading] = useState(false);
  const [n, setN] = useState(0);
  const [reload] = useState(() => debounce(() => setN((x) => x + 1), 3000));
  useJobEvents((e) => (!e || e.project === project) && reload());

  useEffect(() => {
    api.jobs({ project, limit: 1 }).then(
      (r) => {
        const ms = r.metrics ?? [];
        setKeys(ms);
        setParams(r.params ?? []);
        setChosen((c) => (c.length ? c : ms.slice(0, 1)));
      },
      (e) => toastError(e),
    );
  }, [project, n]);

  useEffect(() => {
    if (!chosen.length) return setVals(null);
    const ac = new AbortController();
    setLoading(true);
    api
      .values(project, [...chosen.map((k) => 'metric:' + k), ...(xAxis.startsWith('param:') ? [xAxis] : [])], [], ac.signal)
      .then((v) => {
        setVals(v);
        setLoading(false);
      })
      .catch((e) => {
        setLoading(false);
        toastError(e, 'Chart');
      });
    return () => ac.abort();
  }, [project, chosen.join(','), n, xAxis]);

  // A log x-axis for a param whose values are all positive numbers.
  const canLogX = useMemo(() => {
    if (!vals || !xAxis.startsWith('param:')) return false;
    const xs = (vals.columns[xAxis] ?? []).filter((v) => v !== null && v !== undefined);
    return xs.length > 0 && xs.every((v) => typeof v === 'number' && v > 0);
  }, [vals, xAxis]);
  const logX = canLogX && logXWanted;

  const { series, byTime, skipped, cats } = useMemo(() => {
    const byTime = new Map<number, string>();
    const skipped: string[] = [];
    if (!vals) return { series: [] as Series[], byTime, skipped, cats: [] as string[] };
    const { xs: xsAll, cats } = overviewXs(vals, xAxis);
    xsAll.forEach((x, i) => x !== null && byTime.set(x, vals.ids[i]));
    const series: Series[] = [];
    chosen.forEach((k, si) => {
      const col = vals.columns['metric:' + k] ?? [];
      const xs: number[] = [];
      const ys: number[] = [];
      let text = false;
      col.forEach((v, i) => {
        if (typeof v === 'number' && xsAll[i] !== null && !(logY && v <= 0) && !(logX && xsAll[i]! <= 0)) {
          xs.push(xsAll[i]!);
          ys.push(v);
        } else if (v !== null && v !== undefined) text = true;
      });
      if (!xs.length && text) skipped.push(k);
      else if (xs.length) {
        // The chart's x values ascend.
        const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
        series.push({ label: k, xs: order.map((i) => xs[i]), ys: order.map((i) => ys[i]), color: PALETTE[si % PALETTE.length] });
      }
    });
    return { series, byTime, skipped, cats };
  }, [vals, xAxis, logY, logX]);
  const xDesc = xAxis === 'time' ? 'launch time' : xAxis === 'order' ? 'launch order' : xAxis.slice(6);
  const xText = (x: number) => {
    if (xAxis === 'time') return fmtTime(new Date(x * 1000).toISOString(), true);
    if (xAxis === 'order') return `#${Math.round(x)}`;
    const v = Number(x.toPrecision(9));
    return cats.length ? (cats[Math.round(v)] ?? '') : fmtNumber(v);
  };

  if (keys === null) return <Loading />;
  if (!keys.length) return <Empty title="No metrics have been logged yet!">Metrics logged with foundations.log_metric appear here, one point per job.</Empty>;
  return (
    <div>
      <div class="overview-bar">
      <div class="metric-keys">
        {keys.map((k) => (
          <label key={k} class={`key-chip${chosen.includes(k) ? ' on' : ''}`}>
            <input type="checkbox" checked={chosen.includes(k)} onChange={(e) => setChosen(e.currentTarget.checked ? [...chosen, k] : chosen.filter((x) => x !== k))} />
            {k}
          </label>
        ))}
      </div>
      <div class="metrics-opts">
      <label class="check">
        <input type="checkbox" checked={logY} onChange={(e) => setLogY(e.currentTarget.checked)} data-testid="overview-log-y" /> Log y
      </label>
      {canLogX && (
        <label class="check">
          <input type="checkbox" checked={logXWanted} onChange={(e) => setLogX(e.currentTarget.checked)} data-testid="overview-log-x" /> Log x
        </label>
      )}
      <label class="check">
        X
        <select value={xAxis} onChange={(e) => setXAxis(e.currentTarget.value)} data-testid="overview-x" aria-label="X axis">
          <option value="time">launch time</option>
          <option value="order">job order</option>
          {params.map((p) => (
            <option key={p} value={'param:' + p}>
              {p}
            </option>
          ))}
        </select>
      </label>
      </div>
      </div>
      {loading && !vals && <Loading />}
      {skipped.length > 0 && <div class="subtle small pad">{skipped.join(', ')}: text values cannot be graphed.</div>}
      {series.length > 0 && (
        <>
          <Chart series={series} time={xAxis === 'time'} logY={logY} logX={logX} scatter xLabel={xAxis === 'time' ? 'launched' : xDesc} height={300} pointSize={vals && vals.ids.length > 2000 ? 3 : vals && vals.ids.length > 300 ? 4 : 6} testid="overview-chart" xTick={cats.length ? (x) => (Number.isInteger(x) ? (cats[x] ?? '') : '') : xAxis.startsWith('param:') ? (x) => fmtNumber(Number(x.toPrecision(6))) : undefined} xValue={(x) => {
            const id = byTime.get(x);
            return id ? `${shortId(id)} · ${xText(x)}` : '';
          }} onPick={(_s, x) => {
            const id = byTime.get(x);
            if (id) navigate(`/jobs/${encodeURIComponent(id)}`);
          }} />
          <div class="subtle small">Last value of each job, by {xDesc}. Click a point to open its job.</div>
        </>
      )}
      {!loading && vals && !series.length && !skipped.length && chosen.length > 0 && <div class="subtle pad">No job has these metrics.</div>}
    </div>
  );
}

/** Who writes, as typed in this browser: recorded as given when the server has no --auth. */
function useAuthorName(): [string, (name: string) => void] {
  const [name, setName] = useState(() => localStorage.getItem('atlas.author') ?? '');
  return [
    name,
    (n: string) => {
      setName(n);
      localStorage.setItem('atlas.author', n);
    },
  ];
}

/** Without --auth, a field for the writer's name; with it, who the server will record. */
function Signature({ name, setName }: { name: string; setName: (n: string) => void }) {
  const who = useWho();
  if (who?.auth) return <span class="subtle small signature">as {who.user}</span>;
  return <input type="text" placeholder="Your name" value={name} onInput={(e) => setName(e.currentTarget.value)} aria-label="Author" />;
}

function History({ project, at }: { project: string; at?: string }) {
  const [edits, setEdits] = useState<DescriptionEdit[] | null>(null);
  useEffect(() => {
    api.descriptionHistory(project).then(setEdits, (e) => toastError(e, 'History'));
  }, [project, at]);
  if (edits === null) return <Loading />;
  return (
    <ol class="md-history" data-testid="description-history">
      {edits.map((e) => (
        <li key={e.id}>
          <strong>{e.editor || 'anonymous'}</strong>{' '}
          <span class="subtle" title={fmtTime(e.created_at, true)}>
            {fmtAgo(e.created_at)}
          </span>
          {!e.description.trim() && <span class="subtle"> (emptied)</span>}
        </li>
      ))}
    </ol>
  );
}

function Description({ project, text, by, at, onSaved }: { project: string; text: string; by?: string; at?: string; onSaved: () => void }) {
  const [editing, setEditing] = useState(false);
  const [history, setHistory] = useState(false);
  const [draft, setDraft] = useState(text);
  const [busy, setBusy] = useState(false);
  const [name, setName] = useAuthorName();
  useEffect(() => {
    if (!editing) setDraft(text);
  }, [text]);
  const save = async () => {
    setBusy(true);
    try {
      await api.setDescription(project, draft, name.trim());
      setEditing(false);
      toast('Description saved', 'success');
      onSaved();
    } catch (e) {
      toastError(e, 'Save');
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card pad-card" data-testid="description">
      <div class="card-head plain">
        <h3>Description</h3>
        {editing ? (
          <div class="card-tools">
            <Signature name={name} setName={setName} />
            <button class="btn" onClick={() => (setEditing(false), setDraft(text))}>
              Cancel
            </button>
            <button class="btn primary" onClick={save} disabled={busy} data-testid="save-description">
              Save
            </button>
          </div>
        ) : (
          <button class="btn" onClick={() => setEditing(true)} data-testid="edit-description">
            Edit
          </button>
        )}
      </div>
      {editing ? (
        <div class="md-edit">
          <textarea value={draft} onInput={(e) => setDraft(e.currentTarget.value)} rows={12} placeholder="Describe the project in Markdown: goals, data, how to run it…" aria-label="Description (Markdown)" autoFocus />
          <div class="md md-preview" dangerouslySetInnerHTML={{ __html: renderMarkdown(draft) || '<p class="subtle">Preview</p>' }} />
        </div>
      ) : text.trim() ? (
        <div class="md" data-testid="description-md" dangerouslySetInnerHTML={{ __html: renderMarkdown(text) }} />
      ) : (
        <div class="subtle">Your project overview is empty! Click Edit to add a description (Markdown).</div>
      )}
      {at && !editing && (
        <div class="subtle small md-edited" data-testid="description-edited">
          Edited by <strong>{by || 'anonymous'}</strong>{' '}
          <span title={fmtTime(at, true)}>{fmtAgo(at)}</span> ·{' '}
          <button class="link-btn" onClick={() => setHistory(!history)} aria-expanded={history}>
            {history ? 'Hide history' : 'History'}
          </button>
        </div>
      )}
      {history && !editing && <History project={project} at={at} />}
    </section>
  );
}

function Notes({ project }: { project: string }) {
  const [notes, setNotes] = useState<Note[] | null>(null);
  const [author, setAuthor] = useAuthorName();
  const [msg, setMsg] = useState('');
  const load = () => api.notes(project).then(setNotes, (e) => toastError(e, 'Notes'));
  useEffect(() => void load(), [project]);
  const add = async (e: Event) => {
    e.preventDefault();
    if (!msg.trim()) return;
    try {
      await api.addNote(project, author.trim(), msg);
      setMsg('');
      load();
    } catch (err) {
      toastError(err, 'Note');
    }
  };
  return (
    <section class="card pad-card" data-testid="notes">
      <h3>Notes</h3>
      <form class="note-form" onSubmit={add}>
        <textarea placeholder="Add a note…" value={msg} onInput={(e) => setMsg(e.currentTarget.value)} rows={3} aria-label="Note" onKeyDown={(e) => (e.ctrlKey || e.metaKey) && e.key === 'Enter' && add(e)} />
        <div class="note-form-row">
          <Signature name={author} setName={setAuthor} />
          <button class="btn primary" type="submit" disabled={!msg.trim()}>
            Add note
          </button>
        </div>
      </form>
      {notes === null && <Loading />}
      {notes && notes.length === 0 && <div class="subtle small">No notes yet.</div>}
      <ul class="notes">
        {notes?.map((n) => (
          <li key={n.id} class="note">
            <div class="note-head">
              <span class="avatar">{(n.author || '?').slice(0, 1).toUpperCase()}</span>
              <strong>{n.author || 'anonymous'}</strong>
              <span class="subtle small" title={fmtTime(n.created_at, true)}>
                {fmtAgo(n.created_at)}
              </span>
            </div>
            <div class="md note-body" dangerouslySetInnerHTML={{ __html: renderMarkdown(n.message) }} />
          </li>
        ))}
      </ul>
    </section>
  );
}

export function OverviewPage({ project }: { project: string }) {
  const [proj, reloadProject] = useProject(project);
  useEffect(() => {
    document.title = `${project} overview · Atlas`;
  }, [project]);
  if (proj === null)
    return (
      <div class="page">
        <ProjectHeader name={project} project={proj} tab="overview" />
        <Empty title={`No project named “${project}”`} />
      </div>
    );
  return (
    <div class="page page-wide">
      <ProjectHeader name={project} project={proj} tab="overview" />
      <div class="overview-grid">
        <div class="overview-main">
          {proj && <Description project={project} text={proj.description} by={proj.description_by} at={proj.description_at} onSaved={reloadProject} />}
          <section class="card pad-card">
            <h3>Metrics across jobs</h3>
            <MetricsOverTime project={project} />
          </section>
        </div>
        <div class="overview-side">
          {proj && (
            <section class="card pad-card">
              <h3>Jobs</h3>
              <div class="big-number">{proj.jobs.toLocaleString()}</div>
              <CountsBar counts={proj.counts} total={proj.jobs} />
              <table class="kv small-kv">
                <tbody>
                  {Object.entries(proj.counts).map(([s, c]) => (
                    <tr key={s}>
                      <th>
                        <span class={`dot state-bg-${s}`} /> {s}
                      </th>
                      <td>{c.toLocaleString()}</td>
                    </tr>
                  ))}
                  <tr>
                    <th>last activity</th>
                    <td>{fmtAgo(proj.last_activity)}</td>
                  </tr>
                </tbody>
              </table>
            </section>
          )}
          <Notes project={project} />
        </div>
      </div>
    </div>
  );
}

