// The application shell: header, routes, toasts and dialogs.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { checkWho, signOut, useWho } from './auth';
import { ConfirmHost } from './components/ui';
import { IconFolder, IconQueue, Logo } from './components/icons';
import { debounce, useJobEvents, useLive } from './events';
import { JobPage } from './pages/job';
import { LoginPage } from './pages/login';
import { ComparePage } from './pages/compare';
import { NotFound } from './pages/notfound';
import { OverviewPage } from './pages/overview';
import { ProjectJobsPage } from './pages/jobs';
import { ProjectsPage } from './pages/projects';
import { QueuePage } from './pages/queue';
import { ProjectSearchesPage, SearchPage } from './pages/search';
import { Link, match, navigate, useLocation } from './router';
import { KeyboardHelp } from './keys';
import { Toasts } from './toast';
import type { Health } from './types';

function QueueCount() {
  const [n, setN] = useState<{ q: number; r: number } | null>(null);
  const load = () =>
    api.queue().then(
      (q) => setN({ q: q.queued_total, r: q.running.length }),
      () => setN(null),
    );
  const [reload] = useState(() => debounce(load, 400));
  useEffect(() => void load(), []);
  useJobEvents(reload);
  if (!n || (!n.q && !n.r)) return null;
  return (
    <span class="nav-count" title={`${n.r} running, ${n.q} queued`} data-testid="queue-count">
      {n.r ? <span class="dot dot-running" /> : null}
      {n.r + n.q}
    </span>
  );
}

/** The signed-in user and Sign out, when the server checks tokens (nothing otherwise). */
function UserMenu() {
  const who = useWho();
  useEffect(() => {
    if (!who) checkWho();
  }, []);
  if (!who?.auth || !who.user) return null;
  return (
    <span class="user-menu" data-testid="user-menu">
      <span class="user-who" title={`Signed in as ${who.user}${who.admin ? ' (admin: may stop and delete any job)' : ''}`}>
        <span class="user-avatar" aria-hidden="true">
          {who.user.slice(0, 1).toUpperCase()}
        </span>
        <span class="user-name" data-testid="user-name">
          {who.user}
        </span>
        {who.admin && <span class="user-role">admin</span>}
      </span>
      <button class="signout" onClick={signOut} data-testid="sign-out">
        Sign out
      </button>
    </span>
  );
}

function Header({ path }: { path: string }) {
  const live = useLive();
  const [health, setHealth] = useState<Health | null>(null);
  useEffect(() => {
    api.health().then(setHealth, () => setHealth(null));
  }, []);
  const on = (p: string) => (path === p || path.startsWith(p + '/') ? ' active' : '');
  return (
    <header class="topbar">
      <Link href="/projects" class="brand" aria-label="Atlas home">
        <Logo />
        <span>Atlas</span>
      </Link>
      <nav class="nav">
        <Link href="/projects" class={'nav-link' + on('/projects')}>
          <IconFolder /> Projects
        </Link>
        <Link href="/queue" class={'nav-link' + on('/queue')}>
          <IconQueue /> Queue <QueueCount />
        </Link>
      </nav>
      <div class="topbar-right">
        {health && (
          <span class="server-info" title={`atlas-server ${health.version}, ${health.workers} worker slot(s), ${health.gpus} GPU(s)`}>
            {health.executor} · {health.workers} worker{health.workers === 1 ? '' : 's'}
            {health.gpus ? ` · ${health.gpus} GPU${health.gpus === 1 ? '' : 's'}` : ''}
          </span>
        )}
        <span class={`live ${live ? 'on' : 'off'}`} title={live ? 'Receiving live updates' : 'Live updates disconnected; reconnecting'} data-testid="live">
          <span class="dot" /> {live ? 'Live' : 'Offline'}
        </span>
        <UserMenu />
      </div>
    </header>
  );
}

function Routes({ path }: { path: string }) {
  let m: Record<string, string> | null;
  if (path === '/' || path === '') {
    navigate('/projects', { replace: true });
    return null;
  }
  if (path === '/projects' || path === '/projects/') return <ProjectsPage />;
  if ((m = match('/projects/:name', path)) || (m = match('/projects/:name/jobs', path)) || (m = match('/projects/:name/job_listing', path)))
    return <ProjectJobsPage key={m.name} project={m.name} />;
  if ((m = match('/projects/:name/overview', path))) return <OverviewPage key={m.name} project={m.name} />;
  if ((m = match('/projects/:name/compare', path))) return <ComparePage key={m.name} project={m.name} />;
  if ((m = match('/projects/:name/searches', path))) return <ProjectSearchesPage key={m.name} project={m.name} />;
  if ((m = match('/searches/:id', path))) return <SearchPage key={m.id} id={m.id} />;
  if ((m = match('/jobs/:id', path))) return <JobPage key={m.id} id={m.id} />;
  if (path === '/queue') return <QueuePage />;
  return <NotFound />;
}

export function App() {
  const loc = useLocation();
  if (loc.path === '/login')
    return (
      <>
        <LoginPage />
        <Toasts />
      </>
    );
  return (
    <>
      <Header path={loc.path} />
      <main class="main">
        <Routes path={loc.path} />
      </main>
      <Toasts />
      <ConfirmHost />
      <KeyboardHelp />
    </>
  );
}
