// Browser tests of the GUI against atlas-server --auth: the sign-in page, the signed-in user in
// the header, signing out, a revoked token, the table's user filter and a 403 in a toast. Users
// and tokens are made with `atlas-server user add` and `atlas-server token create` before the
// server starts; jobs are recorded through the API in execution mode (no process runs), each
// with its user's token. Every wait is on a condition.
//
//   node --test tests/auth.test.mjs        (from web/, after `npm run build` and `make build`)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CI, collectErrors, here, launchBrowser, missing, serverBin, startServer } from './lib.mjs';

const shots = path.join(here, 'screenshots');
const PROJECT = 'auth-test';
// More users than the filter lists without a search box.
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan'];

const reason = missing();
if (reason && CI) {
  test('web GUI with authentication: environment', () => assert.fail(`CI=true but ${reason}`));
} else if (reason) {
  test('web GUI with authentication in Chromium', { skip: reason }, () => {});
} else {
  suite();
}

function suite() {
  let server, browser, page, home, base;
  const tokens = {}; // user -> { token, id }
  const jobs = {}; // name -> id
  const errors = [];

  const cli = (...args) => execFileSync(serverBin, args, { env: { ...process.env, FOUNDATIONS_HOME: home }, encoding: 'utf8' });
  const call = async (method, p, token, body) => {
    const r = await fetch(base + '/api/v1' + p, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
    return r.status === 204 ? null : r.json();
  };
  /** Records a finished job of user's (execution mode: the server runs nothing). */
  const record = async (user, params, state = 'completed') => {
    const { job, token } = await call('POST', '/jobs', tokens[user].token, { project: PROJECT, mode: 'execution', command: ['python', 'train.py'], params });
    if (state) await call('POST', `/jobs/${job.id}/finish`, token, { state, exit_code: state === 'completed' ? 0 : 1 });
    return job.id;
  };
  const shot = (name, opts = {}) => page.screenshot({ path: path.join(shots, name + '.png'), animations: 'disabled', ...opts });
  const rows = (n) => page.waitForFunction((n) => document.querySelectorAll('.tr[data-job]').length === n, n);
  const signIn = async (token) => {
    await page.locator('[data-testid="token-input"]').fill(token);
    await page.locator('[data-testid="sign-in"]').click();
  };

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-gui-auth-'));
    fs.mkdirSync(shots, { recursive: true });
    for (const u of USERS) {
      cli('user', 'add', u, ...(u === 'alice' ? ['--admin'] : []));
      const out = cli('token', 'create', u);
      tokens[u] = { token: out.split('\n')[0].trim(), id: out.match(/Token (\d+) for/)[1] };
    }
    server = await startServer(home, ['--auth']);
    base = server.url;
    jobs.alice1 = await record('alice', { lr: 0.1 });
    jobs.alice2 = await record('alice', { lr: 0.2 });
    jobs.bob1 = await record('bob', { lr: 0.3 });
    jobs.bob2 = await record('bob', { lr: 0.4 }, 'failed');
    for (const u of USERS.slice(2)) jobs[u] = await record(u, { lr: 0.5 });
    browser = await launchBrowser();
    page = await browser.ctx.newPage();
    page.setDefaultTimeout(20000);
    collectErrors(page, errors);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  describe('web GUI with authentication', () => {
    test('a page that needs signing in shows the sign-in page', async () => {
      await page.goto(`${base}/projects/${PROJECT}?sort=user`);
      await page.waitForURL(/\/login\?next=/);
      const form = page.locator('[data-testid="login"]');
      await form.getByRole('heading', { name: 'Sign in to Atlas' }).waitFor();
      assert.match(await form.innerText(), /atlas-server token create <user>/);
      // No header, no toast with the server's 401 message.
      assert.equal(await page.locator('.topbar').count(), 0);
      assert.equal(await page.locator('[data-testid="toast"]').count(), 0);
      // The form is centred in the window.
      const box = await form.boundingBox();
      const vp = page.viewportSize();
      assert.ok(Math.abs(box.x + box.width / 2 - vp.width / 2) < 2, `form centred horizontally: ${JSON.stringify(box)}`);
      await shot('login');
    });

    test('a wrong token shows the server’s message', async () => {
      await signIn('atl_not-a-real-token');
      await page.locator('[data-testid="login-error"]').filter({ hasText: 'invalid or revoked token' }).waitFor();
      assert.match(page.url(), /\/login\?next=/);
      await shot('login-error');
    });

    test('a good token goes back to the page asked for, with the user in the header', async () => {
      await signIn(tokens.bob.token);
      await page.waitForURL(new RegExp(`/projects/${PROJECT}\\?sort=user$`));
      await rows(USERS.length + 2);
      await page.locator('[data-testid="user-name"]').filter({ hasText: /^bob$/ }).waitFor();
      await page.locator('[data-testid="sign-out"]').waitFor();
      assert.equal(await page.locator('.user-role').count(), 0); // bob is not an admin
      await page.locator('[data-testid="live"].on').waitFor(); // the event stream, with the cookie
      await shot('header-signed-in', { clip: { x: 0, y: 0, width: page.viewportSize().width, height: 52 } });
    });

    test('the user filter lists the project’s users, with a search box', async () => {
      assert.deepEqual((await call('GET', `/projects/${PROJECT}`, tokens.bob.token)).users.sort(), [...USERS].sort());
      const head = page.locator('.th[data-col="user"]');
      await head.hover();
      await head.locator('.th-filter').click();
      const ed = page.locator('[data-testid="filter-editor"]');
      const boxes = ed.locator('[data-testid="user-option"]');
      await boxes.first().waitFor();
      assert.deepEqual(await boxes.allInnerTexts(), [...USERS].sort());
      await ed.locator('input[type="search"]').fill('bo');
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="user-option"]').length === 1);
      await boxes.filter({ hasText: 'bob' }).locator('input').check();
      await ed.locator('input[type="search"]').fill('');
      await boxes.filter({ hasText: 'carol' }).locator('input').check();
      await shot('user-filter');
      await ed.locator('[data-testid="apply-filter"]').click();
      await rows(3);
      await page.locator('[data-testid="filter-chips"] .chip').filter({ hasText: 'user: bob, carol' }).waitFor();
      for (const id of [jobs.bob1, jobs.bob2, jobs.carol]) await page.locator(`.tr[data-job="${id}"]`).waitFor();
      // Reopened, the editor shows what is chosen.
      await page.locator('[data-testid="filter-chips"] .chip-body').click();
      assert.equal(await ed.locator('[data-testid="user-option"] input:checked').count(), 2);
      await ed.getByRole('button', { name: 'Remove' }).click();
      await rows(USERS.length + 2);
    });

    test('deleting another user’s job: the server’s refusal shows in a toast', async () => {
      await page.goto(`${base}/jobs/${jobs.alice1}`);
      await page.locator('[data-testid="delete-job"]').click();
      await page.locator('[data-testid="confirm"]').click();
      const t = page.locator('[data-testid="toast"]').filter({ hasText: 'belongs to alice' });
      await t.waitFor();
      assert.match(await t.innerText(), /^!?\s*Delete: job \S+ belongs to alice; only they or an admin can stop or delete it/);
      assert.equal((await call('GET', `/jobs/${jobs.alice1}`, tokens.bob.token)).id, jobs.alice1);
      await page.locator('[data-testid="job-page"]').waitFor(); // still there
    });

    test('notes and description edits are signed with the signed-in user', async () => {
      await page.goto(`${base}/projects/${PROJECT}/overview`);
      const notes = page.locator('[data-testid="notes"]');
      await notes.getByText('as bob').waitFor();
      assert.equal(await notes.locator('input[aria-label="Author"]').count(), 0, 'no name to type: the server knows it');
      await notes.locator('textarea').fill('bob was here');
      await notes.getByRole('button', { name: 'Add note' }).click();
      await notes.locator('.note').filter({ hasText: 'bob was here' }).locator('strong').filter({ hasText: /^bob$/ }).waitFor();
      await page.locator('[data-testid="edit-description"]').click();
      await page.locator('[data-testid="description"] textarea').fill('# Plan\n\nbob’s plan');
      await page.locator('[data-testid="save-description"]').click();
      await page.locator('[data-testid="description-edited"]').filter({ hasText: /^Edited by bob/ }).waitFor();
      await shot('overview-signed-in');
      // What another client claims to be does not count either.
      await call('POST', `/projects/${PROJECT}/notes`, tokens.carol.token, { author: 'alice', message: 'not alice' });
      const all = await call('GET', `/projects/${PROJECT}/notes`, tokens.bob.token);
      assert.deepEqual(all.map((n) => `${n.author}: ${n.message}`), ['carol: not alice', 'bob: bob was here']);
    });

    test('signing out returns to the sign-in page; the cookie is gone', async () => {
      await page.locator('[data-testid="sign-out"]').click();
      await page.waitForURL(/\/login$/);
      await page.getByRole('heading', { name: 'Sign in to Atlas' }).waitFor();
      await page.goto(`${base}/queue`);
      await page.waitForURL(/\/login\?next=%2Fqueue$/);
      assert.equal((await browser.ctx.cookies()).filter((c) => c.name === 'atlas_token').length, 0);
    });

    test('an admin signs in from the sign-in page and sees the projects', async () => {
      await page.goto(`${base}/login`);
      await signIn(tokens.alice.token);
      await page.waitForURL(/\/projects$/);
      await page.locator(`[data-testid="project-card"][data-project="${PROJECT}"]`).waitFor();
      await page.locator('[data-testid="user-menu"] .user-role').filter({ hasText: 'admin' }).waitFor();
      await shot('header-admin', { clip: { x: 0, y: 0, width: page.viewportSize().width, height: 52 } });
      // The sign-in page is skipped when the cookie still works.
      await page.goto(`${base}/login?next=%2Fqueue`);
      await page.waitForURL(/\/queue$/);
    });

    test('a revoked token: back to the sign-in page, and signing in again works', async () => {
      await page.locator('[data-testid="sign-out"]').click();
      await page.waitForURL(/\/login$/);
      await signIn(tokens.dave.token);
      await page.waitForURL(/\/projects$/);
      await page.locator('[data-testid="user-name"]').filter({ hasText: /^dave$/ }).waitFor();
      cli('token', 'revoke', tokens.dave.id);
      await page.goto(`${base}/projects/${PROJECT}`);
      await page.waitForURL(/\/login\?next=/);
      await page.locator('[data-testid="session-ended"]').waitFor();
      await shot('login-session-ended');
      // The browser still holds the revoked cookie, which the server refuses on every request.
      await signIn(tokens.erin.token);
      await page.waitForURL(new RegExp(`/projects/${PROJECT}$`));
      await page.locator('[data-testid="user-name"]').filter({ hasText: /^erin$/ }).waitFor();
      await rows(USERS.length + 2);
    });

    test('no script errors', () => {
      assert.deepEqual(errors, []);
    });
  });
}
