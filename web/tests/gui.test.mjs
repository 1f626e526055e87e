// Browser tests of the web GUI: a real atlas-server (temporary FOUNDATIONS_HOME, process
// executor), real jobs submitted with the real foundations CLI, and Debian's Chromium driven by
// playwright-core. Every wait is on a condition (locators, waitForFunction, the API's long
// poll), never a fixed sleep.
//
//   node --test tests/gui.test.mjs        (from web/, after `npm run build` and `make build`)
//
// Without Chromium, the binaries or a GUI-enabled server the tests skip with the reason; with
// CI=true they fail instead. Screenshots of every page go to tests/screenshots/.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CI, cliBin, collectErrors, here, launchBrowser, missing, repo, serverBin, startServer } from './lib.mjs';

const shots = path.join(here, 'screenshots');
const ANSI_RED = 'rgb(239, 107, 115)'; // how the log view renders ESC[31m
// The failing job's error: its reason gets the last line it printed, to show in full.
const FAIL_MESSAGE = `the loss diverged at step 12 (lr 5.0); the last checkpoint /data/runs/gui-test/${'a'.repeat(120)}/ckpt.pt is unusable`;
// The waiting job first prints this many MB of 100-byte lines: more than the log view loads first.
const SPAM_MB = 3;
const SPAM_LINES = Math.floor((SPAM_MB * 1048576) / 100);

const reason = missing();
if (reason && CI) {
  test('web GUI environment', () => assert.fail(`CI=true but ${reason}`));
} else if (reason) {
  test('web GUI in Chromium', { skip: reason }, () => {});
} else {
  suite();
}

function suite() {
  let server, browser, page, home, work, base;
  const jobs = {};
  const errors = [];

  const apiGet = async (p) => {
    const r = await fetch(base + '/api/v1' + p);
    if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const apiStatus = async (method, p) => (await fetch(base + '/api/v1' + p, { method })).status;
  /** Waits (server-side long poll) until a job has left the given states. */
  const waitJob = async (id, states = 'queued,starting,running', limitMs = 90000) => {
    const end = Date.now() + limitMs;
    for (;;) {
      const j = await apiGet(`/jobs/${id}?wait_while=${states}&timeout=20s`);
      if (!states.split(',').includes(j.state)) return j;
      if (Date.now() > end) throw new Error(`job ${id} still ${j.state}`);
    }
  };
  const submit = (...args) =>
    new Promise((resolve, reject) => {
      execFile(cliBin, ['submit', '--stream-job-logs', 'False', 'scheduler', '.', 'main.py', ...args], { cwd: work, env: { ...process.env, FOUNDATIONS_HOME: home } }, (err, stdout, stderr) => {
        const m = `${stdout}\n${stderr}`.match(/Job submitted with ID '([^']+)'/);
        if (err || !m) reject(new Error(`foundations submit ${args.join(' ')} failed: ${err?.message}\n${stderr}`));
        else resolve(m[1]);
      });
    });
  /** Writes a file whole (rename), so that a job polling it never reads half of it. */
  const writeWhole = (file, text) => {
    fs.writeFileSync(file + '.tmp', text);
    fs.renameSync(file + '.tmp', file);
  };
  const shot = (name) => page.screenshot({ path: path.join(shots, name + '.png'), animations: 'disabled' });
  const rows = (n) => page.waitForFunction((n) => document.querySelectorAll('.tr[data-job]').length === n, n);
  const firstRowCell = (col) => page.locator('.tr[data-job]').first().locator(`.td[data-col="${col}"]`);
  const textIn = (sel, text) => page.locator(sel).filter({ hasText: text }).first().waitFor();

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-gui-home-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-gui-job-'));
    for (const f of ['main.py', 'job.config.yaml']) fs.copyFileSync(path.join(here, 'fixtures/gui_project', f), path.join(work, f));
    fs.mkdirSync(shots, { recursive: true });
    server = await startServer(home, ['--workers', '3']);
    base = server.url;
    const index = await (await fetch(base + '/')).text();
    if (index.includes('without its web GUI'))
      throw new Error(`${path.relative(repo, serverBin)} was built without the GUI: run npm run build in web/, then make build`);
    browser = await launchBrowser();
    page = await browser.ctx.newPage();
    page.setDefaultTimeout(20000);
    collectErrors(page, errors);

    // Jobs: three trainings, a failure, then three that keep the workers busy.
    jobs.t1 = await submit('train', '--lr', '0.1', '--epochs', '20');
    jobs.t2 = await submit('train', '--lr', '0.3', '--epochs', '20', '--optimizer', 'sgd');
    jobs.t3 = await submit('train', '--lr', '0.05', '--epochs', '30');
    jobs.f = await submit('fail', '--message', FAIL_MESSAGE);
    for (const k of ['t1', 't2', 't3', 'f']) await waitJob(jobs[k]);
    jobs.signal = path.join(work, 'signal');
    jobs.w = await submit('wait', '--file', jobs.signal, '--spam-mb', String(SPAM_MB));
    jobs.s = await submit('forever');
    jobs.valueFile = path.join(work, 'value');
    jobs.s2 = await submit('live', '--file', jobs.valueFile);
    for (const k of ['w', 's', 's2']) await waitJob(jobs[k], 'queued,starting');
  });

  after(async () => {
    try {
      if (base) {
        // Leave no job running: the server keeps jobs alive across its own exit.
        const q = await apiGet('/queue').catch(() => ({ queued: [], running: [] }));
        for (const j of [...q.queued, ...q.running]) await fetch(`${base}/api/v1/jobs/${j.id}/stop`, { method: 'POST' });
        for (const j of q.running) await waitJob(j.id).catch(() => {});
      }
    } finally {
      await browser?.close();
      await server?.stop();
      if (home) fs.rmSync(home, { recursive: true, force: true });
      if (work) fs.rmSync(work, { recursive: true, force: true });
    }
  });

  describe('web GUI', () => {
    test('the project directory lists the project with its job counts', async () => {
      const who = page.waitForResponse((r) => r.url().endsWith('/api/v1/whoami'));
      await page.goto(base + '/');
      await page.waitForURL(/\/projects$/);
      // Without --auth: no sign-in, no user in the header.
      assert.equal((await (await who).json()).auth, false);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      assert.equal(await page.locator('[data-testid="user-menu"]').count(), 0);
      const card = page.locator('[data-testid="project-card"][data-project="gui-test"]');
      await card.waitFor();
      await card.locator('.count-pill[data-state="completed"]').filter({ hasText: '3' }).waitFor();
      await card.locator('.count-pill[data-state="failed"]').filter({ hasText: '1' }).waitFor();
      await card.locator('.count-pill[data-state="running"]').filter({ hasText: '3' }).waitFor();
      await shot('projects');
      await card.click();
      await page.waitForURL(/\/projects\/gui-test$/);
    });

    test('the jobs table shows every submitted job', async () => {
      await rows(7);
      for (const id of Object.values(jobs).filter((v) => !v.includes('/'))) await page.locator(`.tr[data-job="${id}"]`).waitFor();
      await page.locator(`.tr[data-job="${jobs.f}"] [data-state="failed"]`).waitFor();
      await page.locator('.pc-label[data-field="param:learning_rate"]').waitFor();
      await shot('jobs');
      // A metric cell's tooltip has the series' min, max and count.
      const cell = page.locator(`.tr[data-job="${jobs.t1}"] .td[data-col="metric:loss"]`);
      await cell.hover();
      assert.match((await cell.getAttribute('title')) ?? '', /^last .* · min .* · max .* · 20 points$/);
      // The id's copy button.
      await page.locator(`.tr[data-job="${jobs.t1}"] .copy-btn`).click();
      await textIn('[data-testid="toast"]', `Copied ${jobs.t1}`);
    });

    test('sorting by a param is done by the server and kept in the URL', async () => {
      const head = page.locator('.th[data-col="param:learning_rate"]');
      await head.locator('.th-sort').click();
      await page.waitForURL(/sort=param%3Alearning_rate/);
      await page.waitForFunction(() => document.querySelector('.th[data-col="param:learning_rate"]').getAttribute('aria-sort') === 'descending');
      await firstRowCell('param:learning_rate').filter({ hasText: /^5$/ }).waitFor();
      await head.locator('.th-sort').click();
      await page.waitForURL(/order=asc/);
      await firstRowCell('param:learning_rate').filter({ hasText: /^0\.05$/ }).waitFor();
      // Jobs without the param sort last either way.
      await page.waitForFunction(() => [...document.querySelectorAll('.tr[data-job]')].slice(-3).every((r) => r.querySelector('[data-col="param:learning_rate"] .na')));
    });

    test('filtering by a range and by status, shared through the URL', async () => {
      const head = page.locator('.th[data-col="param:learning_rate"]');
      await head.hover();
      await head.locator('.th-filter').click();
      const ed = page.locator('[data-testid="filter-editor"]');
      await ed.getByRole('button', { name: 'Contains' }).waitFor(); // a param is matched by range or by text
      await ed.locator('input[name="min"]').fill('0.08');
      await ed.locator('input[name="max"]').fill('1');
      await ed.locator('[data-testid="apply-filter"]').click();
      await rows(2);
      await textIn('[data-testid="filter-chips"] .chip', 'learning_rate');
      assert.match(page.url(), /[?&]f=/);
      // The same URL in a fresh load shows the same view.
      await page.reload();
      await rows(2);
      await firstRowCell('param:learning_rate').filter({ hasText: /^0\.1$/ }).waitFor();
      await shot('jobs-filtered');

      await page.locator('[data-testid="filter-chips"] .link-btn').click(); // clear all
      await rows(7);
      await page.locator('[data-testid="add-filter"]').click();
      await page.locator('[data-testid="filter-menu"] .menu-item[data-field="state"]').click();
      await page.locator('[data-testid="filter-editor"] label.check').filter({ hasText: 'Running' }).locator('input').check();
      await page.locator('[data-testid="apply-filter"]').click();
      await rows(3);
      await page.locator('[data-testid="filter-chips"] .link-btn').click();
      await rows(7);

      // A duration is a number to the API, filtered by range only.
      await page.locator('[data-testid="add-filter"]').click();
      await page.locator('[data-testid="filter-menu"] .menu-item[data-field="duration"]').click();
      await ed.locator('input[name="min"]').waitFor();
      assert.equal(await ed.getByRole('button', { name: 'Contains' }).count(), 0);
      await ed.locator('input[name="min"]').press('Escape');
      await ed.waitFor({ state: 'detached' });
    });

    test('brushing an axis of the parallel coordinates filters the table', async () => {
      await page.goto(`${base}/projects/gui-test`);
      await rows(7);
      const label = page.locator('.pc-label[data-field="param:learning_rate"]');
      await label.waitFor();
      const lb = await label.boundingBox();
      const cb = await page.locator('[data-testid="parcoords"] canvas').boundingBox();
      const x = lb.x + lb.width / 2;
      // The axis runs from 40 px below the canvas top (max) to 22 px above its bottom (min):
      // brushing its top third keeps only learning_rate 5.
      await page.mouse.move(x, cb.y + 38);
      await page.mouse.down();
      await page.mouse.move(x, cb.y + 90, { steps: 4 });
      await page.mouse.move(x, cb.y + 110, { steps: 4 });
      await page.mouse.up();
      await page.waitForURL(/f=.*param%3Alearning_rate/);
      await rows(1);
      await page.locator(`.tr[data-job="${jobs.f}"]`).waitFor();
      await page.locator('[data-testid="pc-count"]').filter({ hasText: /^1$/ }).waitFor();
      await shot('parcoords-brushed');
      await page.getByRole('button', { name: 'Clear brushes' }).click();
      await rows(7);
    });

    test('the queue page shows running and queued jobs, and clears the queue', async () => {
      const q1 = await submit('forever');
      await page.goto(base + '/queue');
      for (const id of [jobs.w, jobs.s, jobs.s2]) await page.locator(`[data-testid="running-table"] tr[data-job="${id}"]`).waitFor();
      // What runs each job: the process executor's pid.
      assert.match(await page.locator(`[data-testid="running-table"] tr[data-job="${jobs.w}"] [data-testid="worker-id"]`).innerText(), /^pid \d+$/);
      const row = page.locator(`[data-testid="queued-table"] tr[data-job="${q1}"]`);
      await row.locator('.pos').filter({ hasText: /^1$/ }).waitFor();
      assert.notEqual((await row.locator('.reason').innerText()).trim(), '');
      await shot('queue');
      await page.locator('[data-testid="clear-queue"]').click();
      await page.locator('[data-testid="confirm"]').click();
      await textIn('[data-testid="toast"]', 'Removed 1 queued job');
      await page.getByText('The queue is empty').waitFor();
      assert.equal(await apiStatus('GET', `/jobs/${q1}`), 404);
    });

    test('a queue longer than the page lists counts every queued job', async () => {
      const queued = [await submit('forever'), await submit('forever')];
      // The server lists one queued job (limit=1), as it lists the first 500 of a long queue.
      await page.route('**/api/v1/queue', (route) => route.continue({ url: route.request().url() + '?limit=1' }));
      try {
        await page.goto(base + '/queue');
        await page.locator(`[data-testid="queued-table"] tr[data-job="${queued[0]}"]`).waitFor();
        assert.equal(await page.locator('[data-testid="queued-table"] tbody tr').count(), 1);
        assert.equal(await page.locator('h3:has-text("Queued") .count').innerText(), '2');
        await textIn('.subtle', 'the first 1 in the order they will run');
        await textIn('.subtle', '2 queued');
        await page.locator('[data-testid="clear-queue"]').click();
        await page.getByText('Clear 2 queued jobs?').waitFor();
        await page.locator('[data-testid="confirm"]').click();
        await textIn('[data-testid="toast"]', 'Removed 2 queued jobs');
      } finally {
        await page.unroute('**/api/v1/queue');
      }
      for (const id of queued) assert.equal(await apiStatus('GET', `/jobs/${id}`), 404);
    });

    test('a job page shows a log line as soon as the job prints it', async () => {
      const logRequests = [];
      const onResponse = (r) => r.url().includes(`/jobs/${jobs.w}/logs`) && logRequests.push({ url: r.url(), offset: r.headers()['x-log-offset'] });
      page.on('response', onResponse);
      await page.goto(`${base}/projects/gui-test`);
      await page.locator(`.tr[data-job="${jobs.w}"] a.joblink`).click();
      await page.waitForURL(new RegExp(`/jobs/${jobs.w}$`));
      const log = page.locator('[data-testid="log"]');
      await log.locator('.log-line').filter({ hasText: 'waiting for the signal file' }).waitFor();
      assert.equal(await log.locator('.log-line').filter({ hasText: 'GOT THE SIGNAL' }).count(), 0);
      // A long log: only its last 2 MB, from a whole line, then followed from there.
      page.off('response', onResponse);
      assert.equal(logRequests.length, 1, JSON.stringify(logRequests));
      assert.match(logRequests[0].url, /[?&]tail_bytes=2097152&follow=true$/);
      const offset = Number(logRequests[0].offset);
      assert.ok(offset >= SPAM_MB * 1048576 - 2097152 && offset < SPAM_MB * 1048576 - 2097152 + 1000, `X-Log-Offset ${logRequests[0].offset}`);
      await page.locator('[data-testid="log-earlier"]').filter({ hasText: `${(offset / 1048576).toFixed(1)} MB of earlier output not loaded` }).waitFor();
      await page.locator('[data-testid="log-status"]').filter({ hasText: /the last 2\.0 MB of 3\.0 MB/ }).waitFor();
      // The job page says what runs the job.
      assert.match(await page.locator('[data-testid="worker-id"]').innerText(), /^pid \d+$/);
      fs.writeFileSync(jobs.signal, 'go');
      const line = log.locator('.log-line').filter({ hasText: 'GOT THE SIGNAL' });
      await line.waitFor();
      // ANSI red, rendered as a colour rather than escape codes.
      const color = await line.locator('.log-text span').filter({ hasText: 'GOT THE SIGNAL' }).evaluate((el) => getComputedStyle(el).color);
      assert.equal(color, ANSI_RED);
      assert.equal(await log.getByText('[31m').count(), 0);
      // The carriage-return progress bar collapses to its last state.
      await log.locator('.log-line').filter({ hasText: 'bye' }).waitFor();
      const bars = await log.locator('.log-line').filter({ hasText: 'finishing' }).allInnerTexts();
      assert.equal(bars.length, 1, `one progress line, got ${JSON.stringify(bars)}`);
      assert.match(bars[0], /finishing \[##########\] 100%/);
      // The state changes on screen without a reload (server-sent events).
      await page.locator('[data-testid="job-page"][data-state="completed"]').waitFor();
      await page.locator('[data-testid="log-status"]').filter({ hasText: 'Complete' }).waitFor();
      await shot('job-logs');
      // The first line loaded is a whole one; line numbers are unknown until the log is whole.
      await log.evaluate((el) => (el.scrollTop = 0));
      const first = log.locator('.log-line[data-line="0"]');
      assert.match(await first.locator('.log-text').innerText(), /^spam \d{7} \.{86}$/);
      assert.equal(await first.locator('.log-no').innerText(), '');
      await page.screenshot({ path: path.join(shots, 'job-logs-earlier.png'), animations: 'disabled' });
      // Earlier output: the rest of the log, before it, every line once.
      const full = (await (await fetch(`${base}/api/v1/jobs/${jobs.w}/logs`)).text()).split('\n');
      if (full.at(-1) === '') full.pop();
      assert.ok(full.length > SPAM_LINES, `${full.length} lines`);
      await page.locator('[data-testid="load-earlier"]').click();
      await page.locator('[data-testid="log-earlier"]').waitFor({ state: 'detached' });
      await page.locator('[data-testid="log-status"]').filter({ hasText: `${full.length.toLocaleString('en-US')} lines` }).waitFor();
      await log.evaluate((el) => (el.scrollTop = 0));
      await log.locator('.log-line').filter({ hasText: 'spam 0000000 ' }).waitFor();
      assert.equal(await first.locator('.log-text').innerText(), full[0]);
      assert.equal(await first.locator('.log-no').innerText(), '1');
    });

    test('a failed job shows its exit code and reason, with the last line it printed in full', async () => {
      await page.goto(`${base}/jobs/${jobs.f}`);
      await page.locator('[data-testid="reason"]').filter({ hasText: 'Failed: exited with code 1' }).waitFor();
      const line = page.locator('[data-testid="reason-line"]');
      assert.equal(await line.innerText(), `RuntimeError: ${FAIL_MESSAGE}`);
      // Wrapped: nothing overflows the box or the page.
      assert.ok(await line.evaluate((el) => el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().height > 30));
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
      await page.locator('[data-testid="exit-code"]').filter({ hasText: '1' }).waitFor();
      await page.locator('[data-testid="log"] .log-line').filter({ hasText: 'RuntimeError: the loss diverged' }).waitFor();
      await shot('job-failed');
    });

    test('artifacts: image, JSON, CSV and audio previews, and downloads', async () => {
      await page.goto(`${base}/jobs/${jobs.t1}`);
      await page.locator('.tab[data-tab="artifacts"]').click();
      await page.locator('.artifact-item[data-key="sample_image"]').click();
      const img = page.locator('[data-testid="artifact-image"]');
      await img.waitFor();
      await page.waitForFunction(() => {
        const i = document.querySelector('[data-testid="artifact-image"]');
        return i && i.complete && i.naturalWidth === 96 && i.naturalHeight === 64;
      });
      await shot('job-artifacts');
      const href = await page.locator('[data-testid="artifact-download"]').getAttribute('href');
      const res = await fetch(base + href);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-disposition') ?? '', /attachment/);
      await page.locator('.artifact-item[data-key="summary"]').click();
      await page.locator('[data-testid="artifact-text"]').filter({ hasText: '"accuracy"' }).waitFor();
      await page.locator('.artifact-item[data-key="curve"]').click();
      await page.locator('[data-testid="artifact-csv"] th').filter({ hasText: 'loss' }).waitFor();
      await page.locator('.artifact-item[data-key="tone"]').click();
      await page.locator('[data-testid="artifact-audio"]').waitFor();
    });

    test('metric charts draw the series', async () => {
      await page.goto(`${base}/jobs/${jobs.t1}?tab=metrics`);
      await page.locator('.chart-box[data-metric="loss"] canvas').waitFor();
      await page.locator('.chart-box[data-metric="accuracy"] canvas').waitFor();
      await textIn('.chart-box[data-metric="loss"] .chart-title', '20 points');
      // Another job overlaid: one line per job in each chart.
      await page.goto(`${base}/jobs/${jobs.t1}?tab=metrics&with=${jobs.t2}`);
      await page.waitForFunction(() => document.querySelectorAll('.chart-box[data-metric="loss"] .u-legend .u-series').length === 3);
      await page.locator('.overlay-bar .tag').filter({ hasText: jobs.t2.slice(0, 8) }).waitFor();
      await page.locator('.metrics-opts label').filter({ hasText: 'One chart' }).locator('input').check();
      await page.locator('.chart-box canvas').first().waitFor();
      await page.waitForFunction(() => document.querySelectorAll('.chart-box').length === 1);
      await shot('job-metrics');
    });

    test('adding and removing a tag', async () => {
      await page.goto(`${base}/jobs/${jobs.t1}`);
      await page.locator('[data-testid="add-tag"]').click();
      await page.locator('[data-testid="tag-input"]').fill('reviewed=yes');
      await page.locator('[data-testid="tag-input"]').press('Enter');
      await page.locator('[data-testid="tags"] .tag').filter({ hasText: 'reviewed' }).waitFor();
      assert.equal((await apiGet(`/jobs/${jobs.t1}`)).tags.reviewed, 'yes');
      await page.getByRole('button', { name: 'Remove tag reviewed' }).click();
      await page.locator('[data-testid="tags"] .tag').filter({ hasText: 'reviewed' }).waitFor({ state: 'detached' });
      assert.equal((await apiGet(`/jobs/${jobs.t1}`)).tags.reviewed, undefined);
      // A tag the server refuses: its one-line error shows in a toast.
      await page.locator('[data-testid="add-tag"]').click();
      await page.locator('[data-testid="tag-input"]').fill('k'.repeat(1001));
      await page.locator('[data-testid="tag-input"]').press('Enter');
      const toastText = await page.locator('[data-testid="toast"]').filter({ hasText: 'Tag:' }).first().innerText();
      assert.match(toastText, /1000/);
    });

    test('stopping a running job from its page', async () => {
      await page.goto(`${base}/jobs/${jobs.s}`);
      await page.locator('[data-testid="log"] .log-line').filter({ hasText: 'tick 0' }).waitFor();
      await page.locator('[data-testid="stop-job"]').click();
      await page.locator('[data-testid="confirm"]').click();
      await page.locator('[data-testid="job-page"][data-state="stopped"]').waitFor();
      assert.equal((await apiGet(`/jobs/${jobs.s}`)).state, 'stopped');
    });

    test('running jobs: tracked values show through track events; nothing polls while the stream is up', async () => {
      // A page of its own, with a fake clock (to run a minute of timers at once) and every
      // request the app makes counted.
      const p = await browser.ctx.newPage();
      p.setDefaultTimeout(20000);
      collectErrors(p, errors);
      await p.addInitScript(() => {
        window.__fetched = [];
        const f = window.fetch;
        window.fetch = (input, init) => {
          window.__fetched.push(String(input instanceof Request ? input.url : input));
          return f(input, init);
        };
      });
      await p.clock.install();
      const fetched = (re) => p.evaluate((src) => window.__fetched.filter((u) => new RegExp(src).test(u)).length, re.source);
      try {
        // The table: s2 runs and has tracked nothing yet.
        await p.goto(`${base}/projects/gui-test?hide=created_at,tags,param:epochs,param:optimizer`);
        await p.locator(`.tr[data-job="${jobs.s2}"][data-state="running"]`).waitFor();
        await p.locator('[data-testid="live"].on').waitFor();
        const rows0 = await fetched(/\/api\/v1\/jobs\?/);
        await p.clock.fastForward('01:00');
        assert.equal(await fetched(/\/api\/v1\/jobs\?/), rows0, 'the table re-read its rows without an event');
        writeWhole(jobs.valueFile, '0.5');
        await p.locator(`.tr[data-job="${jobs.s2}"] .td[data-col="metric:value"]`).filter({ hasText: /^0\.5$/ }).waitFor();

        // The job page: its charts follow the job's values.
        await p.goto(`${base}/jobs/${jobs.s2}?tab=metrics`);
        // Logged once: a number; from the second value on, a chart.
        await p.locator('.single-value[data-metric="value"]').filter({ hasText: '0.5' }).waitFor();
        const title = p.locator('.chart-box[data-metric="value"] .chart-title');
        await p.locator('[data-testid="live"].on').waitFor();
        const job0 = await fetched(new RegExp(`/api/v1/jobs/${jobs.s2}$`));
        const series0 = await fetched(/\/metrics\/value/);
        await p.clock.fastForward('01:00');
        assert.equal(await fetched(new RegExp(`/api/v1/jobs/${jobs.s2}$`)), job0, 'the job page re-read the job without an event');
        assert.equal(await fetched(/\/metrics\/value/), series0, 'the chart re-read the series without an event');
        writeWhole(jobs.valueFile, '0.75');
        await title.filter({ hasText: '2 points' }).waitFor();
        assert.ok((await fetched(new RegExp(`/api/v1/jobs/${jobs.s2}$`))) > job0);
      } finally {
        await p.close();
      }

      // Without the event stream, the job page falls back to re-reading now and then.
      const q = await browser.ctx.newPage();
      q.setDefaultTimeout(20000);
      try {
        await q.route('**/api/v1/events', (r) => r.abort());
        await q.clock.install();
        await q.goto(`${base}/jobs/${jobs.s2}`);
        await q.locator('[data-testid="job-page"][data-state="running"]').waitFor();
        await q.locator('[data-testid="live"].off').waitFor();
        const reread = q.waitForRequest((r) => r.url().endsWith(`/api/v1/jobs/${jobs.s2}`));
        await q.clock.fastForward('00:11');
        await reread;
      } finally {
        await q.close();
      }
    });

    test('deleting a finished job from the table; a running one cannot be deleted', async () => {
      await page.goto(`${base}/projects/gui-test`);
      await rows(7);
      await page.locator(`.tr[data-job="${jobs.s}"][data-state="stopped"]`).waitFor();
      await page.locator(`.tr[data-job="${jobs.t3}"] input[type="checkbox"]`).check();
      await page.locator(`.tr[data-job="${jobs.s2}"] input[type="checkbox"]`).check();
      await page.locator('[data-testid="delete-selected"]').click();
      const dialog = page.locator('[data-testid="delete-dialog"]');
      await dialog.locator('[data-testid="cannot-delete"]').filter({ hasText: '1 job is still queued or running and cannot be deleted' }).waitFor();
      await shot('delete-dialog');
      await page.locator('[data-testid="confirm"]').filter({ hasText: 'Delete 1' }).click();
      await textIn('[data-testid="toast"]', 'Deleted 1 job');
      await rows(6);
      assert.equal(await apiStatus('GET', `/jobs/${jobs.t3}`), 404);
      assert.equal((await apiGet(`/jobs/${jobs.s2}`)).state, 'running');
      // The server's own message when it refuses: delete the running job through the job page's API call.
      assert.equal(await apiStatus('DELETE', `/jobs/${jobs.s2}`), 409);
      // Stop the remaining selected job from the table.
      await page.locator('[data-testid="stop-selected"]').click();
      await page.locator('[data-testid="confirm"]').click();
      await page.locator(`.tr[data-job="${jobs.s2}"][data-state="stopped"]`).waitFor();
    });

    test('comparing jobs overlays their metrics', async () => {
      await page.goto(`${base}/projects/gui-test`);
      await rows(6);
      await page.locator('[data-testid="selection-actions"]').waitFor({ state: 'detached' });
      await page.locator(`.tr[data-job="${jobs.t1}"] input[type="checkbox"]`).check();
      await page.locator(`.tr[data-job="${jobs.t2}"] input[type="checkbox"]`).check();
      await page.locator('[data-testid="compare-selected"]').click();
      await page.waitForURL(/\/compare\?ids=/);
      await page.locator('[data-testid="compare-table"] tr.differs th').filter({ hasText: 'learning_rate' }).waitFor();
      await page.locator('.chart-box[data-metric="loss"] canvas').waitFor();
      await page.waitForFunction(() => document.querySelectorAll('.chart-box[data-metric="loss"] .u-legend .u-series').length >= 3);
      await shot('compare');
    });

    test('the overview renders the markdown description safely and keeps notes', async () => {
      await page.goto(`${base}/projects/gui-test/overview`);
      await page.locator('[data-testid="overview-chart"] canvas').first().waitFor();
      await page.locator('[data-testid="edit-description"]').click();
      const md = '# Goals\n\nFind a **good** learning rate.\n\n- fast\n- stable\n\n<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> [bad](javascript:window.__xss=3) [docs](https://example.com)';
      await page.locator('[data-testid="description"] textarea').fill(md);
      await page.locator('[data-testid="description"] input[aria-label="Author"]').fill('tester');
      await page.locator('[data-testid="save-description"]').click();
      const out = page.locator('[data-testid="description-md"]');
      await out.locator('h1').filter({ hasText: 'Goals' }).waitFor();
      await out.locator('strong').filter({ hasText: 'good' }).waitFor();
      assert.equal(await out.locator('img, script').count(), 0);
      assert.match(await out.innerText(), /<img src=x onerror/);
      assert.equal(await out.locator('a[href^="javascript"]').count(), 0);
      assert.equal(await out.locator('a[href="https://example.com"]').count(), 1);
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      assert.equal((await apiGet('/projects/gui-test')).description, md);
      // Who edited it, and the edits.
      await page.locator('[data-testid="description-edited"]').filter({ hasText: /^Edited by tester/ }).waitFor();
      await page.locator('[data-testid="description-edited"] button').filter({ hasText: 'History' }).click();
      await page.locator('[data-testid="description-history"] li').filter({ hasText: 'tester' }).waitFor();
      assert.equal(await page.locator('[data-testid="description-history"] li').count(), 1);
      await page.locator('[data-testid="notes"] textarea').fill('lr 0.1 looks best');
      await page.locator('[data-testid="notes"] input[aria-label="Author"]').fill('tester');
      await page.getByRole('button', { name: 'Add note' }).click();
      await page.locator('[data-testid="notes"] .note').filter({ hasText: 'lr 0.1 looks best' }).waitFor();
      await shot('overview');
    });

    test('an unknown page says so', async () => {
      await page.goto(`${base}/no/such/page`);
      await page.getByText('The page you requested was not found.').waitFor();
      await page.goto(`${base}/jobs/does-not-exist`);
      await page.getByText('No such job').waitFor();
    });

    test('no script errors on any page', () => {
      assert.deepEqual(errors, []);
    });
  });
}
