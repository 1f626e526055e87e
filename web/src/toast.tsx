// Toasts: short messages in the corner. Errors show the server's one-line message.
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api';

export interface Toast {
  id: number;
  kind: 'error' | 'success' | 'info';
  text: string;
}

let seq = 0;
let toasts: Toast[] = [];
const subs = new Set<(t: Toast[]) => void>();

function emit() {
  for (const s of subs) s(toasts);
}

export function dismiss(id: number) {
  toasts = toasts.filter((t) => t.id !== id);
  emit();
}

export function toast(text: string, kind: Toast['kind'] = 'info') {
  const t = { id: ++seq, kind, text };
  toasts = [...toasts.slice(-4), t];
  emit();
  window.setTimeout(() => dismiss(t.id), kind === 'error' ? 9000 : 4000);
}

export function toastError(e: unknown, prefix = '') {
  if ((e as Error)?.name === 'AbortError') return;
  if (e instanceof ApiError && e.status === 401) return; // the sign-in page says it
  const msg = e instanceof ApiError || e instanceof Error ? e.message : String(e);
  toast(prefix ? `${prefix}: ${msg}` : msg, 'error');
}

export function Toasts() {
  const [list, setList] = useState(toasts);
  useEffect(() => {
    subs.add(setList);
    return () => void subs.delete(setList);
  }, []);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`} data-testid="toast">
          <span class="toast-icon">{t.kind === 'error' ? '!' : t.kind === 'success' ? '✓' : 'i'}</span>
          <span class="toast-text">{t.text}</span>
          <button class="toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
