// Who is signed in. When atlas-server runs with --auth, every API request needs a token; the
// browser keeps it in the HttpOnly cookie that POST /login sets. Any 401 sends the user to the
// sign-in page (/login?next=<the page they wanted>), which comes back after signing in.
import { useEffect, useState } from 'preact/hooks';
import { api, setUnauthorizedHandler } from './api';
import { closeEvents } from './events';
import { navigate } from './router';
import type { Who } from './types';

let who: Who | null = null;
let ended = false; // a session ended: the server refused a token that had worked
const subs = new Set<(w: Who | null) => void>();

export function setWho(w: Who | null) {
  who = w;
  if (w?.user) ended = false;
  for (const s of [...subs]) s(w);
}

/** The signed-in user, { auth: false } without authentication, null while unknown. */
export function useWho(): Who | null {
  const [w, setW] = useState(who);
  useEffect(() => {
    subs.add(setW);
    setW(who);
    return () => void subs.delete(setW);
  }, []);
  return w;
}

/** Whether the last session ended by a refused token (rather than never having signed in). */
export const sessionEnded = () => ended;

/** Asks the server who the browser is; a 401 goes to the sign-in page. */
export function checkWho() {
  api.whoami().then(setWho, () => {});
}

/** Where a page that needs signing in sends the user: back to itself afterwards. */
export function loginHref(): string {
  const here = location.pathname + location.search;
  return location.pathname === '/' || location.pathname === '/login' ? '/login' : `/login?next=${encodeURIComponent(here)}`;
}

/** The page to go to after signing in: a path of this app, never another site. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || next.startsWith('/login')) return '/projects';
  return next;
}

setUnauthorizedHandler((msg) => {
  // The server says "invalid or revoked token" when the browser's cookie no longer works.
  ended = !!who?.user || /revoked/.test(msg);
  who = null;
  for (const s of [...subs]) s(null);
  closeEvents();
  if (location.pathname !== '/login') navigate(loginHref(), { replace: true });
});

export async function signOut() {
  try {
    await api.logout();
  } catch {
    /* a revoked cookie makes the server refuse even this; signing in again replaces it */
  }
  ended = false;
  setWho(null);
  closeEvents();
  navigate('/login');
}
