// A History-API router: the path picks the page, the query string holds each page's view state
// (sort, filters, columns, tab), so that a URL can be shared.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

type Listener = () => void;
const listeners = new Set<Listener>();

function notify() {
  for (const l of [...listeners]) l();
}
window.addEventListener('popstate', notify);

export function navigate(to: string, opts: { replace?: boolean } = {}) {
  const cur = location.pathname + location.search;
  if (to === cur) return;
  const samePath = new URL(to, location.href).pathname === location.pathname;
  if (opts.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  if (!samePath) window.scrollTo(0, 0);
  notify();
}

export interface Loc {
  path: string;
  query: URLSearchParams;
  search: string;
}

function current(): Loc {
  return { path: location.pathname, query: new URLSearchParams(location.search), search: location.search };
}

export function useLocation(): Loc {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const l = () => {
      const next = current();
      setLoc((prev) => (prev.path === next.path && prev.search === next.search ? prev : next));
    };
    listeners.add(l);
    l();
    return () => void listeners.delete(l);
  }, []);
  return loc;
}

/** Changes some query parameters of the current URL (null or '' removes one). */
export function setQuery(changes: Record<string, string | null | undefined>, opts: { replace?: boolean } = {}) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  navigate(location.pathname + (s ? '?' + s : ''), opts);
}

/** Matches a pattern like /projects/:name/jobs; returns the decoded params or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const pp = pattern.split('/').filter(Boolean);
  const xs = path.split('/').filter(Boolean);
  if (pp.length !== xs.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < pp.length; i++) {
    if (pp[i].startsWith(':')) {
      try {
        out[pp[i].slice(1)] = decodeURIComponent(xs[i]);
      } catch {
        return null;
      }
    } else if (pp[i] !== xs[i]) return null;
  }
  return out;
}

interface LinkProps {
  href: string;
  children?: ComponentChildren;
  replace?: boolean;
  class?: string;
  title?: string;
  onClick?: (e: MouseEvent) => void;
  [attr: `data-${string}` | `aria-${string}`]: string | undefined;
}

export function Link({ href, replace, onClick, ...rest }: LinkProps) {
  return (
    <a
      href={href}
      {...rest}
      onClick={(e) => {
        if (onClick) onClick(e);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href, { replace });
      }}
    />
  );
}

/** The jobs page of a project, with the view (sort, filters, columns) last used in this tab. */
export function projectHref(name: string): string {
  let view = '';
  try {
    view = sessionStorage.getItem('atlas.view.' + name) ?? '';
  } catch {
    /* storage disabled */
  }
  return `/projects/${encodeURIComponent(name)}${view}`;
}

export function rememberProjectView(name: string, search: string) {
  try {
    sessionStorage.setItem('atlas.view.' + name, search);
  } catch {
    /* storage disabled */
  }
}
