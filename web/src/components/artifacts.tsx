// A job's artifacts: a list with downloads, and a preview of images, audio, video, text, JSON
// and CSV. Text previews read at most the first 256 KB (a Range request).
import { useEffect, useState } from 'preact/hooks';
import { artifactURL } from '../api';
import { fmtBytes, fmtTime } from '../format';
import type { Artifact } from '../types';
import { IconAudio, IconDownload, IconFile, IconImage } from './icons';
import { Empty, Loading } from './ui';

const PREVIEW_BYTES = 256 * 1024;

type Kind = 'image' | 'audio' | 'video' | 'json' | 'csv' | 'text' | 'other';

export function kindOf(filename: string): Kind {
  const ext = (filename.split('.').pop() ?? '').toLowerCase();
  if (['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp', 'ico', 'avif'].includes(ext)) return 'image';
  if (['wav', 'mp3', 'ogg', 'oga', 'flac', 'm4a', 'aac', 'opus'].includes(ext)) return 'audio';
  if (['mp4', 'webm', 'ogv', 'mov'].includes(ext)) return 'video';
  if (ext === 'json' || ext === 'ipynb') return 'json';
  if (ext === 'csv' || ext === 'tsv') return 'csv';
  if (
    ['txt', 'log', 'md', 'py', 'yaml', 'yml', 'toml', 'ini', 'cfg', 'conf', 'sh', 'jsonl', 'ndjson', 'xml', 'html', 'js', 'ts', 'c', 'h', 'cpp', 'go', 'rs', 'java', 'r', 'sql', 'tex', 'rst', 'out', 'err', ''].includes(ext) ||
    /readme|license|makefile|dockerfile/i.test(filename)
  )
    return 'text';
  return 'other';
}

/** Parses CSV (quotes, doubled quotes, newlines in quotes); at most maxRows rows. */
export function parseCSV(text: string, sep = ',', maxRows = 200): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const c = text[i];
    if (q) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else q = false;
      } else cell += c;
    } else if (c === '"' && cell === '') q = true;
    else if (c === sep) {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if ((cell || row.length) && rows.length < maxRows) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

function Preview({ jobId, a }: { jobId: string; a: Artifact }) {
  const kind = kindOf(a.filename);
  const url = artifactURL(jobId, a.key);
  const [text, setText] = useState<string | null>(null);
  const [err, setErr] = useState('');
  const textual = kind === 'text' || kind === 'json' || kind === 'csv' || (kind === 'other' && a.size <= PREVIEW_BYTES);

  useEffect(() => {
    setText(null);
    setErr('');
    if (!textual) return;
    const ac = new AbortController();
    fetch(url, { headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` }, signal: ac.signal })
      .then(async (r) => {
        if (!r.ok && r.status !== 206) throw new Error((await r.json().catch(() => null))?.error ?? `${r.status} ${r.statusText}`);
        const buf = new Uint8Array(await r.arrayBuffer());
        if (kind === 'other' && buf.subarray(0, 4096).includes(0)) throw new Error('binary');
        setText(new TextDecoder().decode(buf));
      })
      .catch((e) => e.name !== 'AbortError' && setErr(e.message));
    return () => ac.abort();
  }, [url]);

  const truncated = a.size > PREVIEW_BYTES;
  let body;
  if (kind === 'image')
    body = (
      <img
        class="artifact-img"
        src={url}
        alt={a.filename}
        data-testid="artifact-image"
        // Small images (thumbnails, MNIST digits) are shown larger, with sharp pixels.
        onLoad={(e) => e.currentTarget.naturalWidth < 200 && e.currentTarget.classList.add('upscaled')}
      />
    );
  else if (kind === 'audio') body = <audio controls src={url} preload="metadata" data-testid="artifact-audio" />;
  else if (kind === 'video') body = <video controls src={url} preload="metadata" class="artifact-video" />;
  else if (err === 'binary' || (!textual && kind === 'other'))
    body = (
      <Empty title="No preview for this file type">
        <a class="btn" href={artifactURL(jobId, a.key, true)}>
          <IconDownload /> Download {a.filename}
        </a>
      </Empty>
    );
  else if (err) body = <div class="error-box">{err}</div>;
  else if (text === null) body = <Loading />;
  else if (kind === 'json') {
    let pretty = text;
    if (!truncated)
      try {
        pretty = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        /* show as is */
      }
    body = (
      <pre class="artifact-text" data-testid="artifact-text">
        {pretty}
      </pre>
    );
  } else if (kind === 'csv') {
    const rows = parseCSV(text, a.filename.toLowerCase().endsWith('.tsv') ? '\t' : ',');
    const [head, ...rest] = rows;
    body = (
      <div class="csv-wrap">
        <table class="csv" data-testid="artifact-csv">
          {head && (
            <thead>
              <tr>
                {head.map((h, i) => (
                  <th key={i}>{h}</th>
                ))}
              </tr>
            </thead>
          )}
          <tbody>
            {rest.map((r, i) => (
              <tr key={i}>
                {r.map((c, k) => (
                  <td key={k}>{c}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length >= 200 && <div class="subtle small pad">First 200 rows.</div>}
      </div>
    );
  } else
    body = (
      <pre class="artifact-text" data-testid="artifact-text">
        {text}
      </pre>
    );

  return (
    <div class="artifact-preview">
      <div class="artifact-preview-head">
        <div>
          <strong>{a.key}</strong> <span class="subtle">{a.filename}</span>
        </div>
        <a class="btn small" href={artifactURL(jobId, a.key, true)} data-testid="artifact-download">
          <IconDownload size={13} /> Download
        </a>
      </div>
      {truncated && textual && <div class="subtle small pad">Showing the first {fmtBytes(PREVIEW_BYTES)} of {fmtBytes(a.size)}.</div>}
      <div class="artifact-body">{body}</div>
    </div>
  );
}

export function Artifacts({ jobId, artifacts, selected, onSelect }: { jobId: string; artifacts: Artifact[]; selected?: string; onSelect: (key: string) => void }) {
  if (!artifacts.length) return <Empty title="No artifacts">Files saved with foundations.save_artifact appear here.</Empty>;
  const cur = artifacts.find((a) => a.key === selected) ?? artifacts.find((a) => kindOf(a.filename) === 'image') ?? artifacts[0];
  return (
    <div class="artifacts">
      <ul class="artifact-list" data-testid="artifact-list">
        {artifacts.map((a) => {
          const k = kindOf(a.filename);
          return (
            <li key={a.key} class={a.key === cur.key ? 'on' : ''}>
              <button class="artifact-item" onClick={() => onSelect(a.key)} data-key={a.key}>
                <span class="artifact-icon">{k === 'image' ? <IconImage /> : k === 'audio' ? <IconAudio /> : <IconFile />}</span>
                <span class="artifact-name">
                  <span class="artifact-key">{a.key}</span>
                  <span class="subtle small" title={`${a.filename}, ${fmtBytes(a.size)}, saved ${fmtTime(a.created_at, true)}`}>
                    {a.filename} · {fmtBytes(a.size)}
                  </span>
                </span>
              </button>
              <a class="icon-btn" href={artifactURL(jobId, a.key, true)} title={`Download ${a.filename}`} aria-label={`Download ${a.filename}`}>
                <IconDownload />
              </a>
            </li>
          );
        })}
      </ul>
      <Preview key={cur.key} jobId={jobId} a={cur} />
    </div>
  );
}
