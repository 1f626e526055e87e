// The sign-in page, shown when atlas-server runs with --auth and the browser has no valid
// token: the token goes to POST /login, which keeps it in an HttpOnly cookie.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { safeNext, sessionEnded, setWho } from '../auth';
import { Logo } from '../components/icons';
import { navigate, useLocation } from '../router';

export function LoginPage() {
  const loc = useLocation();
  const next = safeNext(loc.query.get('next'));
  const [token, setToken] = useState('');
  const [show, setShow] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [ended] = useState(sessionEnded);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    document.title = 'Sign in · Atlas';
    // Nothing to do here without authentication, or with a cookie that still works.
    api.whoami().then(
      (w) => {
        if (!w.auth || w.user) {
          setWho(w);
          navigate(next, { replace: true });
        }
      },
      () => {},
    );
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const t = token.trim();
    if (!t || busy) return;
    setBusy(true);
    setError('');
    try {
      const w = await api.login(t);
      setWho(w);
      navigate(next, { replace: true });
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
      input.current?.select();
    }
  };

  return (
    <div class="login-screen">
      <form class="login-card" onSubmit={submit} data-testid="login">
        <div class="login-brand">
          <Logo size={40} />
        </div>
        <h1>Sign in to Atlas</h1>
        <p class="login-lead">This server asks for an API token.</p>
        {ended && !error && (
          <div class="alert alert-stopped small" data-testid="session-ended">
            Your session has ended: the server no longer accepts its token. Sign in again.
          </div>
        )}
        <label class="field login-field">
          <span>API token</span>
          <span class="token-input">
            <input
              ref={input}
              type={(show ? 'text' : 'password') as 'password'}
              name="token"
              autoComplete="current-password"
              spellcheck={false}
              placeholder="atl_…"
              value={token}
              onInput={(e) => setToken(e.currentTarget.value)}
              aria-invalid={error ? 'true' : undefined}
              aria-describedby={error ? 'login-error' : undefined}
              autoFocus
              data-testid="token-input"
            />
            <button type="button" class="link-btn token-show" onClick={() => setShow(!show)} aria-pressed={show}>
              {show ? 'Hide' : 'Show'}
            </button>
          </span>
        </label>
        {error && (
          <div class="error-box small" role="alert" id="login-error" data-testid="login-error">
            {error}
          </div>
        )}
        <button class="btn primary login-submit" type="submit" disabled={busy || !token.trim()} data-testid="sign-in">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="login-hint">
          No token? An admin creates one with <code>atlas-server token create &lt;user&gt;</code>
        </p>
      </form>
    </div>
  );
}
