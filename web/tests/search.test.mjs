// Browser test of the search page: a real atlas-server, a real asha search started with the
// foundations CLI (trials whose loss is a function of their params), and Chromium. Every wait is
// on a condition, never a fixed sleep. Screenshots go to tests/screenshots/.
//
//   node --test tests/search.test.mjs        (from web/, after `npm run build` and `make build`)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CI, cliBin, collectErrors, here, launchBrowser, missing, startServer } from './lib.mjs';

const shots = path.join(here, 'screenshots');

const reason = missing();
if (reason && CI) {
  test('search page environment', () => assert.fail(`CI=true but ${reason}`));
} else if (reason) {
  test('search page in Chromium', { skip: reason }, () => {});
} else {
  suite();
}

function suite() {
  let server, browser, page, home, work, base, search;
  const errors = [];
  const apiGet = async (p) => {
    const r = await fetch(base + '/api/v1' + p);
    if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const shot = (name) => page.screenshot({ path: path.join(shots, name + '.png'), animations: 'disabled' });

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-gui-search-home-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-gui-search-job-'));
    for (const f of ['main.py', 'job.config.yaml']) fs.copyFileSync(path.join(here, 'fixtures/search_project', f), path.join(work, f));
    fs.mkdirSync(shots, { recursive: true });
    server = await startServer(home, ['--workers', '1']);
    base = server.url;
    const id = await new Promise((resolve, reject) => {
      execFile(cliBin, ['search', 'scheduler', '.', 'main.py'], { cwd: work, env: { ...process.env, FOUNDATIONS_HOME: home } }, (err, stdout, stderr) => {
        const m = stderr.match(/Search submitted with ID '([^']+)'/);
        if (err || !m) reject(new Error(`foundations search failed: ${err?.message}\n${stderr}`));
        else resolve(m[1]);
      });
    });
    // The server's long poll: until the search has ended.
    search = await apiGet(`/searches/${id}`);
    const end = Date.now() + 120000;
    while (!['completed', 'stopped', 'failed'].includes(search.state)) {
      if (Date.now() > end) throw new Error(`search ${id} still ${search.state}`);
      search = await apiGet(`/searches/${id}?wait_since=${search.version}&timeout=20s`);
    }
    browser = await launchBrowser();
    page = await browser.ctx.newPage();
    page.setDefaultTimeout(20000);
    collectErrors(page, errors);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  describe('search page', () => {
    test('shows the search, its best trial and every trial', async () => {
      assert.equal(search.state, 'completed');
      const stopped = search.trials.filter((t) => t.stopped_at !== undefined);
      assert.ok(stopped.length > 0 && stopped.length < 7, 'the seed makes asha stop some trials');
      await page.goto(`${base}/searches/${search.id}`);
      const root = page.locator('[data-testid="search-page"][data-state="completed"]');
      await root.waitFor();
      await page.locator('[data-testid="search-describe"]').filter({ hasText: 'asha · loss (smaller is better) · seed 21 · rungs at steps 1, 3' }).waitFor();
      await page.locator('[data-testid="search-trials"]').filter({ hasText: '7 of 7' }).waitFor();
      await page.locator('[data-testid="search-best"]').filter({ hasText: `trial ${search.best.trial}` }).waitFor();
      const rows = page.locator('[data-testid="trials"] tbody tr');
      assert.equal(await rows.count(), 7);
      for (const t of stopped) {
        const row = page.locator(`[data-testid="trials"] tr[data-trial="${t.trial}"]`);
        assert.equal(await row.getAttribute('data-state'), 'stopped');
        assert.equal(await row.locator('[data-col="reason"]').innerText(), `stopped at step ${t.stopped_at}`);
      }
      // A column per param, nested ones by their path.
      for (const k of ['q', 'net.layers', 'net.kind']) await page.locator('[data-testid="trials"] th', { hasText: k }).first().waitFor();
    });

    test('the trials table sorts by the metric', async () => {
      const values = async () => page.locator('[data-testid="trials"] tbody td[data-col="value"]').evaluateAll((tds) => tds.map((td) => Number(td.title)));
      const sorted = (xs, desc) => [...xs].sort((a, b) => (desc ? b - a : a - b));
      let got = await values();
      assert.deepEqual(got, sorted(got, false), 'smaller is better: the best first');
      assert.equal(Number(await page.locator('[data-testid="trials"] tbody tr').first().getAttribute('data-trial')), search.best.trial);
      await page.locator('[data-testid="trials"] th[data-sort="value"]').click();
      await page.locator('[data-testid="trials"] th[data-sort="value"][aria-sort="descending"]').waitFor();
      got = await values();
      assert.deepEqual(got, sorted(got, true));
      await page.locator('[data-testid="trials"] th[data-sort="trial"]').click();
      const order = await page.locator('[data-testid="trials"] tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.trial)));
      assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
    });

    test('draws the curves of the trials, the stopped ones marked, the best so far, and params against the metric', async () => {
      await page.locator('[data-testid="trial-curves"] canvas').first().waitFor();
      await page.locator('[data-testid="best-so-far"] canvas').first().waitFor();
      // A mark for every trial the search stopped, where it stopped it.
      const n = search.trials.filter((t) => t.stopped_at !== undefined).length;
      await page.locator('.chart-note').filter({ hasText: `${n} trial${n === 1 ? '' : 's'} stopped early, marked where the search stopped` }).waitFor();
      await page.locator('[data-testid="parcoords"] canvas').waitFor();
      for (const f of ['param:q', 'param:net.layers', 'param:net.kind', 'metric:loss']) await page.locator(`[data-testid="parcoords"] .pc-label[data-field="${f}"]`).waitFor();
      await page.locator('[data-testid="parcoords"] .parcoords-foot').filter({ hasText: '7 trials' }).waitFor();
      // A brush on the metric's axis narrows the table.
      const box = await page.locator('[data-testid="parcoords"] canvas').boundingBox();
      const label = await page.locator('[data-testid="parcoords"] .pc-label[data-field="metric:loss"]').boundingBox();
      const x = label.x + label.width / 2;
      await page.mouse.move(x, box.y + box.height - 30);
      await page.mouse.down();
      await page.mouse.move(x, box.y + box.height - 120, { steps: 4 });
      await page.mouse.up();
      await page.locator('[data-testid="parcoords"] [data-testid="pc-count"]').waitFor();
      const inside = Number(await page.locator('[data-testid="pc-count"]').innerText());
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid="trials"] tbody tr').length === n, inside);
      await shot('search');
      await page.getByRole('button', { name: 'Clear brushes' }).click();
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="trials"] tbody tr').length === 7);
    });

    test('a trial links to its job, and its job back to the search', async () => {
      const t = search.trials.find((t) => t.stopped_at !== undefined);
      await page.locator(`[data-testid="trials"] tr[data-trial="${t.trial}"] a.joblink`).click();
      await page.waitForURL(new RegExp(`/jobs/${t.job_id}$`));
      await page.locator('[data-testid="reason"]').filter({ hasText: `early stopped by search ${search.id} at step ${t.stopped_at}` }).waitFor();
      const link = page.locator('[data-testid="search-link"]');
      await link.filter({ hasText: `Trial ${t.trial} of search` }).waitFor();
      await link.locator('a').click();
      await page.waitForURL(new RegExp(`/searches/${search.id}$`));
      await page.locator('[data-testid="search-page"]').waitFor();
    });

    test("the project's Searches tab lists the search", async () => {
      await page.goto(`${base}/projects/gui-search`);
      await page.locator('[data-testid="searches-tab"]').click();
      await page.waitForURL(/\/projects\/gui-search\/searches$/);
      const row = page.locator(`[data-testid="searches"] tr[data-search="${search.id}"]`);
      await row.waitFor();
      assert.match(await row.innerText(), /asha[\s\S]*loss[\s\S]*7 \/ 7/);
      await shot('searches');
      await row.locator('a').click();
      await page.waitForURL(new RegExp(`/searches/${search.id}$`));
    });

    test('no script errors on the search pages', () => {
      assert.deepEqual(errors, []);
    });
  });
}
