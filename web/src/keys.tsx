// Keyboard shortcuts: a page registers its keys with useKeys (ignored while typing in a field or
// with a dialog open), and `?` shows every shortcut of the page in an overlay.
import { useEffect, useRef, useState } from 'preact/hooks';
import { Modal } from './components/ui';

/** A shortcut: the key (KeyboardEvent.key), what it does, and its handler. */
export interface Shortcut {
  key: string;
  label?: string; // how the help shows the key (default: the key)
  help: string;
  run: (e: KeyboardEvent) => void;
}

const active = new Set<{ current: Shortcut[] }>();

/** Whether a key press belongs to a field, a dialog or a shortcut of the browser. */
function ignored(e: KeyboardEvent): boolean {
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return true;
  const t = e.target as HTMLElement | null;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return true;
  // Enter on a focused button or link is that button's.
  if (e.key === 'Enter' && t?.closest?.('button,a,summary,[role="button"]')) return true;
  return !!document.querySelector('.modal-backdrop');
}

/** Registers a page's shortcuts while it is shown. */
export function useKeys(keys: Shortcut[]) {
  const ref = useRef(keys);
  ref.current = keys;
  useEffect(() => {
    active.add(ref);
    const down = (e: KeyboardEvent) => {
      if (ignored(e)) return;
      const k = ref.current.find((s) => s.key === e.key);
      if (!k) return;
      e.preventDefault();
      k.run(e);
    };
    document.addEventListener('keydown', down);
    return () => {
      active.delete(ref);
      document.removeEventListener('keydown', down);
    };
  }, []);
}

/** The `?` overlay: the shortcuts of the page shown. */
export function KeyboardHelp() {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const down = (e: KeyboardEvent) => {
      if (e.key !== '?' || ignored(e)) return;
      e.preventDefault();
      setOpen(true);
    };
    document.addEventListener('keydown', down);
    return () => document.removeEventListener('keydown', down);
  }, []);
  if (!open) return null;
  const keys = [...active].flatMap((r) => r.current);
  return (
    <Modal title="Keyboard shortcuts" onClose={() => setOpen(false)}>
      <table class="kv keys-help" data-testid="keyboard-help">
        <tbody>
          {keys.map((k) => (
            <tr key={k.key}>
              <th>
                <kbd>{k.label ?? k.key}</kbd>
              </th>
              <td>{k.help}</td>
            </tr>
          ))}
          <tr>
            <th>
              <kbd>?</kbd>
            </th>
            <td>This help</td>
          </tr>
        </tbody>
      </table>
    </Modal>
  );
}
