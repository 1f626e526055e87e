// Small shared pieces: state badges, copy buttons, dialogs, popovers, empty states.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { toast } from '../toast';
import type { State } from '../types';
import { IconCheck, IconClock, IconCopy, IconStop, IconX, Spinner } from './icons';

const STATE_LABEL: Record<string, string> = {
  queued: 'Queued',
  starting: 'Starting',
  running: 'Running',
  stopping: 'Stopping',
  completed: 'Completed',
  failed: 'Failed',
  stopped: 'Stopped',
};

export function StateIcon({ state, size = 14 }: { state: State | string; size?: number }) {
  switch (state) {
    case 'completed':
      return <IconCheck size={size} />;
    case 'failed':
      return <IconX size={size} />;
    case 'stopped':
      return <IconStop size={size} />;
    case 'running':
    case 'starting':
    case 'stopping':
      return <Spinner size={size} />;
    default:
      return <IconClock size={size} />;
  }
}

export function StateBadge({ state, compact = false }: { state: State | string; compact?: boolean }) {
  const label = STATE_LABEL[state] ?? state;
  return (
    <span class={`badge state-${state}${compact ? ' badge-compact' : ''}`} title={label} data-state={state}>
      <StateIcon state={state} size={compact ? 13 : 14} />
      {!compact && <span>{label}</span>}
    </span>
  );
}

export function CopyButton({ text, label = 'Copy', class: cls = '' }: { text: string; label?: string; class?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class={`icon-btn copy-btn ${cls}`}
      title={`${label}: ${text}`}
      aria-label={label}
      onClick={(e) => {
        e.stopPropagation();
        e.preventDefault();
        const ok = () => {
          setDone(true);
          toast('Copied ' + text, 'success');
          window.setTimeout(() => setDone(false), 1200);
        };
        if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(ok, () => fallbackCopy(text) && ok());
        else if (fallbackCopy(text)) ok();
      }}
    >
      {done ? <IconCheck size={13} /> : <IconCopy size={13} />}
    </button>
  );
}

function fallbackCopy(text: string): boolean {
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

export function Modal({ title, onClose, children, footer, wide }: { title: string; onClose: () => void; children: ComponentChildren; footer?: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const k = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    document.addEventListener('keydown', k);
    const first = ref.current?.querySelector<HTMLElement>('[data-autofocus], input, textarea, button.primary, button.danger');
    first?.focus();
    return () => document.removeEventListener('keydown', k);
  }, []);
  return (
    <div class="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div class={`modal${wide ? ' modal-wide' : ''}`} role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <div class="modal-head">
          <h2>{title}</h2>
          <button class="icon-btn" aria-label="Close" onClick={onClose}>
            <IconX />
          </button>
        </div>
        <div class="modal-body">{children}</div>
        {footer && <div class="modal-foot">{footer}</div>}
      </div>
    </div>
  );
}

interface ConfirmOpts {
  title: string;
  body: ComponentChildren;
  confirm: string;
  danger?: boolean;
  confirmDisabled?: boolean;
}
let showConfirm: ((o: ConfirmOpts & { resolve: (v: boolean) => void }) => void) | null = null;

/** Asks the user to confirm; resolves true when confirmed. */
export function confirmDialog(o: ConfirmOpts): Promise<boolean> {
  return new Promise((resolve) => (showConfirm ? showConfirm({ ...o, resolve }) : resolve(window.confirm(o.title))));
}

export function ConfirmHost() {
  const [cur, setCur] = useState<(ConfirmOpts & { resolve: (v: boolean) => void }) | null>(null);
  useEffect(() => {
    showConfirm = setCur;
    return () => void (showConfirm = null);
  }, []);
  if (!cur) return null;
  const close = (v: boolean) => {
    cur.resolve(v);
    setCur(null);
  };
  return (
    <Modal
      title={cur.title}
      onClose={() => close(false)}
      footer={
        <>
          <button class="btn" onClick={() => close(false)}>
            Cancel
          </button>
          <button class={cur.danger ? 'btn danger' : 'btn primary'} disabled={cur.confirmDisabled} onClick={() => close(true)} data-testid="confirm">
            {cur.confirm}
          </button>
        </>
      }
    >
      {cur.body}
    </Modal>
  );
}

/** A button that opens a panel below it; clicking outside or Escape closes it. */
export function Popover({ label, children, class: cls = '', align = 'left', title, open: openProp, onOpenChange, testid }: {
  label: ComponentChildren;
  children: ComponentChildren | ((close: () => void) => ComponentChildren);
  class?: string;
  align?: 'left' | 'right';
  title?: string;
  open?: boolean;
  onOpenChange?: (v: boolean) => void;
  testid?: string;
}) {
  const [openState, setOpenState] = useState(false);
  const open = openProp ?? openState;
  const setOpen = (v: boolean) => (onOpenChange ? onOpenChange(v) : setOpenState(v));
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const down = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    const key = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('mousedown', down);
    document.addEventListener('keydown', key);
    return () => {
      document.removeEventListener('mousedown', down);
      document.removeEventListener('keydown', key);
    };
  }, [open]);
  const close = () => setOpen(false);
  return (
    <div class="popover-wrap" ref={ref}>
      <button type="button" class={`btn ${cls}${open ? ' active' : ''}`} title={title} onClick={() => setOpen(!open)} aria-expanded={open} data-testid={testid}>
        {label}
      </button>
      {open && <div class={`popover popover-${align}`}>{typeof children === 'function' ? children(close) : children}</div>}
    </div>
  );
}

export function Empty({ title, children, icon }: { title: string; children?: ComponentChildren; icon?: JSX.Element }) {
  return (
    <div class="empty">
      {icon && <div class="empty-icon">{icon}</div>}
      <div class="empty-title">{title}</div>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="loading">
      <Spinner size={16} /> {label}
    </div>
  );
}

export function TagChip({ k, v, onRemove }: { k: string; v?: string; onRemove?: () => void }) {
  return (
    <span class="tag" title={v ? `${k}: ${v}` : k}>
      <span class="tag-k">{k}</span>
      {v ? <span class="tag-v">{v}</span> : null}
      {onRemove && (
        <button class="tag-x" aria-label={`Remove tag ${k}`} onClick={onRemove}>
          ×
        </button>
      )}
    </span>
  );
}
