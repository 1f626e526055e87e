// Browser tests of the jobs table and the charts with a sweep of many params: pinned columns,
// the first screen at small sizes, params of queued jobs, the parallel coordinates' defaults,
// tags, single values, chart smoothing / x-axis / grouping, CSV export, saved views, dark mode,
// keyboard navigation and job names. Jobs are recorded through the API (execution mode: no
// process runs), except a blocker and the queued jobs behind it (a server with one worker).
//
//   node --test tests/table.test.mjs        (from web/, after `npm run build` and `make build`)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CI, collectErrors, here, launchBrowser, missing, startServer } from './lib.mjs';

const shots = path.join(here, 'screenshots');
const PROJECT = 'sweep';
// Params named so that alphabetical order starts with ones that never vary.
const CONSTANTS = { aa_seed: 7, ab_dataset: 'imagenet-subset', ac_warmup: 100, ad_dropout: 0.1, ae_clip: 1, af_decay: 0.01, ag_momentum: 0.9, ah_eps: 1e-8, ai_layers: 12, aj_heads: 8 };
const RATES = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03];
const TAGS = { dataset: 'imagenet-subset-2024', owner: 'vision-research-team', stage: 'sweep-2' };

const reason = missing();
if (reason && CI) {
  test('web GUI environment', () => assert.fail(`CI=true but ${reason}`));
} else if (reason) {
  test('jobs table in Chromium', { skip: reason }, () => {});
} else {
  suite();
}

function suite() {
  let server, browser, page, home, base;
  const jobs = []; // recorded: { id, params }
  const queued = [];
  let blocker = '';
  const errors = [];

  const call = async (method, p, body) => {
    const r = await fetch(base + '/api/v1' + p, {
      method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
    return r.status === 204 ? null : r.json();
  };
  /** Records a finished job: its params, a loss curve over steps and times, one-off values, tags. */
  const record = async (i, params) => {
    const { job } = await call('POST', '/jobs', { project: PROJECT, mode: 'execution', command: ['python', 'train.py'], ...(params.name ? { name: params.name } : {}) });
    const lr = params.learning_rate;
    const loss = Array.from({ length: 40 }, (_, s) => Math.exp(-lr * 100 * s) + 0.05 * Math.sin(s * 1.7 + i) + 0.1);
    const t0 = 1_700_000_000 + i * 600;
    await call('POST', `/jobs/${job.id}/track`, {
      writer: 'test',
      seq: 1,
      params: Object.fromEntries(Object.entries(params).filter(([k]) => k !== 'name')),
      metrics: {
        loss: { values: loss, steps: loss.map((_, s) => s), times: loss.map((_, s) => t0 + s * 10) },
        accuracy: { values: loss.map((l) => 1 - l / 2), steps: loss.map((_, s) => s), times: loss.map((_, s) => t0 + s * 10) },
        test_score: { values: [0.5 + i / 100], steps: [0] },
      },
      tags: TAGS,
    });
    await call('POST', `/jobs/${job.id}/finish`, { state: 'completed', exit_code: 0 });
    return job.id;
  };
  const shot = (name) => page.screenshot({ path: path.join(shots, name + '.png'), animations: 'disabled' });
  const rows = (n) => page.waitForFunction((n) => document.querySelectorAll('.tr[data-job]').length === n, n);

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-gui-table-'));
    fs.mkdirSync(shots, { recursive: true });
    server = await startServer(home, ['--workers', '1']);
    base = server.url;
    for (let i = 0; i < 12; i++) {
      const params = { ...CONSTANTS, learning_rate: RATES[i % RATES.length], batch_size: [32, 64][i % 2], epochs: i === 5 ? 1000 : 10, optimizer: i % 3 ? 'adam' : 'sgd' };
      jobs.push({ id: await record(i, params), params });
    }
    // One worker, busy with a job that waits: the next submissions stay queued.
    blocker = (await call('POST', '/jobs', { project: PROJECT, command: ['-c', 'import time; time.sleep(600)'], params: { learning_rate: 0.5 } })).job.id;
    for (const lr of [0.7, 0.9]) queued.push((await call('POST', '/jobs', { project: PROJECT, command: ['-c', 'pass'], params: { learning_rate: lr, batch_size: 128 } })).job.id);
    browser = await launchBrowser();
    page = await browser.ctx.newPage();
    page.setDefaultTimeout(20000);
    collectErrors(page, errors);
  });

  after(async () => {
    try {
      if (base)
        for (const id of [...queued, blocker]) {
          await fetch(`${base}/api/v1/jobs/${id}/stop`, { method: 'POST' }).catch(() => {});
          await fetch(`${base}/api/v1/jobs/${id}?wait_while=queued,starting,running,stopping&timeout=30s`).catch(() => {});
        }
    } finally {
      await browser?.close();
      await server?.stop();
      if (home) fs.rmSync(home, { recursive: true, force: true });
    }
  });

  /** The box of an element, in the viewport's coordinates. */
  const box = (sel) => page.locator(sel).first().boundingBox();
  const inView = async (sel) => {
    const b = await box(sel);
    const vp = page.viewportSize();
    return !!b && b.x >= 0 && b.y >= 0 && b.x + b.width <= vp.width + 0.5 && b.y + b.height <= vp.height + 0.5;
  };
  /** Whether the first job row is on screen, top to bottom (rows are wider than the screen). */
  const rowOnScreen = async () => {
    const b = await box('.tr[data-job]');
    return !!b && b.y >= 0 && b.y + b.height <= page.viewportSize().height + 0.5;
  };
  /** The project page, fresh: nothing remembered of earlier visits. */
  const openFresh = async (query = '') => {
    await page.goto(`${base}/projects/${PROJECT}${query}`);
    await page.evaluate(() => localStorage.clear());
    await page.goto(`${base}/projects/${PROJECT}${query}`);
    await rows(15);
  };

  describe('jobs table and charts', () => {
    test('metric columns are pinned by default and visible at 1440×900; pins are remembered per project', async () => {
      await page.setViewportSize({ width: 1440, height: 900 });
      await openFresh();
      for (const m of ['loss', 'accuracy', 'test_score']) {
        await page.locator(`.th.sticky[data-col="metric:${m}"]`).waitFor();
        assert.ok(await inView(`.th[data-col="metric:${m}"]`), `the ${m} header is off-screen`);
        assert.ok(await inView(`.tr[data-job] .td[data-col="metric:${m}"]`), `the ${m} cells are off-screen`);
      }
      // Every header is in the page, in view or not (find-in-page finds them).
      const heads = await page.locator('.grid-head .th[data-col]').evaluateAll((els) => els.map((e) => e.dataset.col));
      for (const k of [...Object.keys(CONSTANTS), 'learning_rate', 'optimizer']) assert.ok(heads.includes('param:' + k), `no header for ${k}`);
      assert.ok(!(await inView('.th[data-col="param:optimizer"]')), 'the last param should be off-screen in this test');
      await page.locator('.grid-scroll').evaluate((el) => el.scrollTo({ left: 5000 }));
      await page.locator('.tr[data-job] .td[data-col="param:optimizer"]').first().waitFor();
      assert.ok(await inView('.tr[data-job] .td[data-col="metric:loss"]'), 'a pinned column scrolled away');
      await shot('table-pinned-scrolled');
      // Unpin one metric, pin a param: remembered after a reload.
      await page.locator('.th[data-col="metric:accuracy"]').hover();
      await page.getByRole('button', { name: 'Unpin accuracy' }).click();
      await page.locator('.th[data-col="metric:accuracy"]:not(.sticky)').waitFor();
      await page.locator('.grid-scroll').evaluate((el) => el.scrollTo({ left: 0 }));
      await page.locator('.th[data-col="param:learning_rate"]').hover();
      await page.getByRole('button', { name: 'Pin learning_rate' }).click();
      await page.locator('.th.sticky[data-col="param:learning_rate"]').waitFor();
      await page.reload();
      await rows(15);
      await page.locator('.th.sticky[data-col="param:learning_rate"]').waitFor();
      assert.equal(await page.locator('.th.sticky[data-col="metric:accuracy"]').count(), 0);
      assert.equal(await page.locator('.th.sticky[data-col="metric:loss"]').count(), 1);
      const pins = await page.evaluate((p) => JSON.parse(localStorage.getItem('atlas.pins.' + p)), PROJECT);
      assert.ok(pins.includes('param:learning_rate') && !pins.includes('metric:accuracy'));
    });

    test('at 1280×720 a job row is on the first screen; the chart collapses and stays so', async () => {
      await page.setViewportSize({ width: 1280, height: 720 });
      await openFresh();
      await page.locator('.pc-label').first().waitFor();
      await shot('table-jobs-1280');
      assert.ok(await rowOnScreen(), 'no job row above the fold with the chart open');
      await shot('table-jobs-1280');
      await page.locator('[data-testid="chart-toggle"]').click();
      await page.locator('[data-testid="parcoords"]').waitFor({ state: 'detached' });
      await page.reload();
      await rows(15);
      await page.locator('[data-testid="chart-card"].collapsed').waitFor();
      assert.equal(await page.locator('[data-testid="parcoords"]').count(), 0);
      assert.ok(await rowOnScreen());
      await shot('table-jobs-1280-collapsed');
      await page.locator('[data-testid="chart-toggle"]').click();
      await page.locator('[data-testid="parcoords"] canvas').waitFor();
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.reload();
      await rows(15);
      await page.locator('.pc-label').first().waitFor();
      await shot('table-jobs-1440');
    });

    test('queued jobs show the params they were submitted with, in the table and on the queue page', async () => {
      await page.setViewportSize({ width: 1440, height: 900 });
      await openFresh();
      await page.locator('.th[data-col="param:learning_rate"]').scrollIntoViewIfNeeded();
      for (const [id, lr] of [
        [queued[0], '0.7'],
        [queued[1], '0.9'],
        [blocker, '0.5'],
      ])
        await page.locator(`.tr[data-job="${id}"] .td[data-col="param:learning_rate"]`).filter({ hasText: new RegExp(`^${lr}$`) }).waitFor();
      await page.locator(`.tr[data-job="${queued[0]}"] .td[data-col="param:batch_size"]`).filter({ hasText: /^128$/ }).waitFor();
      await page.goto(`${base}/queue`);
      const cell = page.locator(`[data-testid="queued-table"] tr[data-job="${queued[0]}"] [data-testid="queued-params"]`);
      await cell.locator('.tag').filter({ hasText: 'learning_rate' }).filter({ hasText: '0.7' }).waitFor();
      await cell.locator('.tag').filter({ hasText: 'batch_size' }).filter({ hasText: '128' }).waitFor();
      await shot('queue-params');
    });

    test('the parallel coordinates start on the params that vary, with log axes where values span decades', async () => {
      await page.setViewportSize({ width: 1440, height: 900 });
      await openFresh();
      await page.locator('.pc-label').first().waitFor();
      const axes = await page.locator('.pc-label').evaluateAll((els) => els.map((e) => e.dataset.field));
      for (const p of ['learning_rate', 'batch_size', 'epochs', 'optimizer']) assert.ok(axes.includes('param:' + p), `no ${p} axis in ${axes}`);
      for (const p of Object.keys(CONSTANTS)) assert.ok(!axes.includes('param:' + p), `${p} never varies but has an axis`);
      // learning_rate and epochs span decades: log axes; batch_size does not.
      await page.locator('.pc-log.on[data-field="param:learning_rate"]').waitFor();
      await page.locator('.pc-log.on[data-field="param:epochs"]').waitFor();
      await page.locator('.pc-log:not(.on)[data-field="param:batch_size"]').waitFor();
      const canvas = () => page.locator('[data-testid="parcoords"] canvas').evaluate((c) => c.toDataURL());
      const before = await canvas();
      await page.locator('.pc-log[data-field="param:learning_rate"]').click();
      await page.locator('.pc-log:not(.on)[data-field="param:learning_rate"]').waitFor();
      assert.match(page.url(), /log=%21param%3Alearning_rate|log=!param:learning_rate/);
      await page.waitForFunction((b) => document.querySelector('[data-testid="parcoords"] canvas').toDataURL() !== b, before);
      await page.locator('.pc-log[data-field="param:batch_size"]').click();
      await page.locator('.pc-log.on[data-field="param:batch_size"]').waitFor();
      await shot('parcoords-log');
    });

    test('key:value tags are readable in the table', async () => {
      await openFresh();
      const cell = page.locator(`.tr[data-job="${jobs[0].id}"] .td[data-col="tags"]`);
      await cell.scrollIntoViewIfNeeded();
      const [k, v] = Object.entries(TAGS)[0];
      await cell.locator('.tag').filter({ hasText: k }).locator('.tag-v').filter({ hasText: v }).waitFor();
      // Every chip shown is whole (neither key nor value cut, inside the cell); the others are counted.
      const shown = await cell.evaluate((td) => {
        const r = td.getBoundingClientRect();
        return [...td.querySelectorAll('.tag')].map((t) => ({
          cut: [...t.querySelectorAll('.tag-k,.tag-v')].some((e) => e.scrollWidth > e.clientWidth + 1),
          inside: t.getBoundingClientRect().right <= r.right + 0.5,
        }));
      });
      assert.ok(shown.length >= 1);
      assert.deepEqual(shown.filter((t) => t.cut || !t.inside), [], 'a tag is cut');
      const more = Object.keys(TAGS).length - shown.length;
      if (more) await cell.locator('.more').filter({ hasText: `+${more}` }).waitFor();
    });

    test('a metric logged once is a number; compared series are labelled by the params that differ', async () => {
      const ids = jobs.slice(0, 3).map((j) => j.id);
      await page.goto(`${base}/projects/${PROJECT}/compare?ids=${ids.join(',')}`);
      const single = page.locator('.single-value[data-metric="test_score"]');
      await single.locator('.big-number').filter({ hasText: /^0\.5$/ }).waitFor();
      assert.equal(await single.locator('.single-row').count(), 3);
      assert.equal(await page.locator('.chart-box[data-metric="test_score"]').count(), 0);
      const legend = page.locator('.chart-box[data-metric="loss"] .u-legend');
      await legend.locator('.u-label').filter({ hasText: /^learning_rate=1e-4 batch_size=32/ }).waitFor();
      await legend.locator('.u-label').filter({ hasText: 'batch_size=64' }).first().waitFor();
      await shot('compare-labels');
    });

    /** A chart's canvas as an image, to tell whether what it draws changed. */
    const pixels = (sel) => page.locator(`${sel} canvas`).first().evaluate((c) => c.toDataURL());
    const lossChart = '.chart-box[data-metric="loss"]';

    test('smoothing draws an average over the raw values', async () => {
      await page.goto(`${base}/jobs/${jobs[4].id}?tab=metrics`);
      await page.locator(`${lossChart} canvas`).waitFor();
      const before = await pixels(lossChart);
      await page.locator('[data-testid="smoothing"]').fill('0.9');
      await page.locator(`${lossChart} .u-legend .u-label`).filter({ hasText: 'loss (raw)' }).waitFor();
      await page.waitForFunction(([sel, b]) => document.querySelector(`${sel} canvas`)?.toDataURL() !== b, [lossChart, before]);
      const smoothed = await pixels(lossChart);
      await page.locator('[data-testid="smoothing"]').fill('0.5');
      await page.waitForFunction(([sel, b]) => document.querySelector(`${sel} canvas`)?.toDataURL() !== b, [lossChart, smoothed]);
      await shot('job-smoothing');
    });

    test('the x-axis: step, wall time or time since the start', async () => {
      await page.goto(`${base}/jobs/${jobs[4].id}?tab=metrics`);
      await page.locator(`${lossChart} canvas`).waitFor();
      const xOf = async () => {
        const over = page.locator(`${lossChart} .u-over`);
        const b = await over.boundingBox();
        await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
        return page.locator(`${lossChart} .u-legend .u-series`).first().locator('.u-value').innerText();
      };
      assert.match(await xOf(), /^\d+$/);
      await page.locator('[data-testid="x-axis"]').selectOption('wall');
      await page.locator(`${lossChart} .u-legend .u-label`).filter({ hasText: /^time$/ }).waitFor();
      assert.match(await xOf(), /^2023-11-1\d \d\d:\d\d:\d\d$/);
      await page.locator('[data-testid="x-axis"]').selectOption('relative');
      await page.locator(`${lossChart} .u-legend .u-label`).filter({ hasText: 'seconds since start' }).waitFor();
      assert.match(await xOf(), /^(\d+m )?\d+s$/);
      await shot('job-x-relative');
    });

    test("grouping runs by a param draws each group's mean within a min-max band", async () => {
      const ids = jobs.slice(0, 6).map((j) => j.id);
      await page.goto(`${base}/projects/${PROJECT}/compare?ids=${ids.join(',')}`);
      await page.locator(`${lossChart} canvas`).waitFor();
      assert.equal(await page.locator(`${lossChart} [data-testid="metric-chart"]`).getAttribute('data-bands'), '0');
      await page.locator('[data-testid="group-by"]').selectOption('optimizer');
      const legend = page.locator(`${lossChart} .u-legend`);
      await legend.locator('.u-label').filter({ hasText: 'optimizer=adam (4) mean' }).waitFor();
      await legend.locator('.u-label').filter({ hasText: 'optimizer=sgd (2) mean' }).waitFor();
      await legend.locator('.u-label').filter({ hasText: 'optimizer=adam (4) max' }).waitFor();
      assert.equal(await page.locator(`${lossChart} [data-testid="metric-chart"]`).getAttribute('data-bands'), '2');
      await shot('compare-grouped');
    });

    test("the overview's metric across jobs: by launch time, job order or a param", async () => {
      await page.goto(`${base}/projects/${PROJECT}/overview`);
      const chart = page.locator('[data-testid="overview-chart"]');
      await chart.locator('canvas').waitFor();
      const xOf = async () => {
        const b = await chart.locator('.u-over').boundingBox();
        await page.mouse.move(b.x + b.width * 0.3, b.y + b.height / 2);
        await page.mouse.move(b.x + b.width * 0.6, b.y + b.height / 2);
        return chart.locator('.u-legend .u-series').first().locator('.u-value').innerText();
      };
      assert.match(await xOf(), / · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      await page.locator('[data-testid="overview-x"]').selectOption('order');
      await chart.locator('.u-legend .u-label').filter({ hasText: /^launch order$/ }).waitFor();
      assert.match(await xOf(), / · #\d+$/);
      await page.locator('[data-testid="overview-x"]').selectOption('param:learning_rate');
      await chart.locator('.u-legend .u-label').filter({ hasText: /^learning_rate$/ }).waitFor();
      const x = await xOf();
      assert.match(x.split(" · ")[1], /^(\d(\.\d+)?e-\d|0\.\d+)$/, `x ${x} is not a learning rate`);
      // Log scales: the chart redraws.
      const before = await chart.locator('canvas').evaluate((c) => c.toDataURL());
      await page.locator('[data-testid="overview-log-x"]').check();
      await page.waitForFunction((b) => document.querySelector('[data-testid="overview-chart"] canvas')?.toDataURL() !== b, before);
      await page.locator('[data-testid="overview-log-y"]').check();
      await chart.locator('canvas').waitFor();
      await shot('overview-by-param');
    });

    test('the filtered table exports as CSV, and views are saved by name', async () => {
      const f = encodeURIComponent(JSON.stringify([{ field: 'param:optimizer', op: 'in', values: ['sgd'] }]));
      await page.goto(`${base}/projects/${PROJECT}?f=${f}&sort=param%3Alearning_rate&order=asc`);
      await rows(4);
      const download = page.waitForEvent('download');
      await page.locator('[data-testid="export-csv"]').click();
      const dl = await download;
      assert.equal(dl.suggestedFilename(), `${PROJECT}-jobs.csv`);
      const lines = fs.readFileSync(await dl.path(), 'utf8').trim().split(/\r\n/);
      const head = lines[0].split(',');
      for (const c of ['state', 'id', 'learning_rate', 'optimizer', 'loss', 'test_score']) assert.ok(head.includes(c), `no ${c} column in ${lines[0]}`);
      const sgd = jobs.filter((j) => j.params.optimizer === 'sgd');
      assert.equal(lines.length, 1 + sgd.length);
      const rowsOut = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
      assert.deepEqual(
        rowsOut.map((r) => r.id),
        [...sgd].sort((a, b) => a.params.learning_rate - b.params.learning_rate).map((j) => j.id),
      );
      for (const r of rowsOut) {
        assert.equal(r.state, 'completed');
        assert.equal(r.optimizer, 'sgd');
        assert.equal(Number(r.learning_rate), sgd.find((j) => j.id === r.id).params.learning_rate);
      }
      assert.match(lines[1], /"dataset=imagenet-subset-2024; owner=vision-research-team; stage=sweep-2"|dataset=imagenet-subset-2024; owner/);

      // Save this view, leave it, and come back to it by name (after a reload too).
      await page.locator('[data-testid="views-button"]').click();
      await page.locator('[data-testid="view-name"]').fill('sgd by lr');
      await page.locator('[data-testid="save-view"]').click();
      await page.goto(`${base}/projects/${PROJECT}`);
      await rows(15);
      await page.locator('[data-testid="views-button"]').click();
      await page.locator('[data-testid="views-menu"] [data-view="sgd by lr"]').click();
      await rows(4);
      assert.match(page.url(), /sort=param%3Alearning_rate/);
      assert.match(page.url(), /[?&]f=/);
      await shot('table-view');
    });

    test('keyboard: j and k move through the rows, x selects, Enter opens, ? lists the keys', async () => {
      await page.setViewportSize({ width: 1440, height: 900 });
      await openFresh();
      const order = await page.locator('.tr[data-job]').evaluateAll((els) => els.map((e) => e.dataset.job));
      await page.locator('body').click({ position: { x: 5, y: 300 } });
      await page.keyboard.press('j');
      await page.locator(`.tr.cursor[data-job="${order[0]}"]`).waitFor();
      await page.keyboard.press('j');
      await page.keyboard.press('j');
      await page.locator(`.tr.cursor[data-job="${order[2]}"]`).waitFor();
      await page.keyboard.press('x');
      await page.locator(`.tr.selected[data-job="${order[2]}"]`).waitFor();
      assert.ok(await page.locator(`.tr[data-job="${order[2]}"] input[type="checkbox"]`).isChecked());
      await page.locator('[data-testid="selection-actions"]').filter({ hasText: '1' }).waitFor();
      await page.keyboard.press('k');
      await page.locator(`.tr.cursor[data-job="${order[1]}"]`).waitFor();
      assert.equal(await page.locator('.tr.cursor').count(), 1);
      await page.keyboard.press('?');
      const help = page.locator('[data-testid="keyboard-help"]');
      await help.filter({ hasText: 'Next job' }).waitFor();
      await shot('keyboard-help');
      await page.keyboard.press('Escape');
      await help.waitFor({ state: 'detached' });
      await page.keyboard.press('Enter');
      await page.waitForURL(new RegExp(`/jobs/${order[1]}$`));
    });

    test('dark mode follows the system setting', async () => {
      const luminance = (rgb) => {
        const [r, g, b] = rgb.match(/\d+/g).map(Number);
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
      };
      const colours = () =>
        page.evaluate(() => {
          const cell = document.querySelector('.tr[data-job] .td');
          return { page: getComputedStyle(document.body).backgroundColor || getComputedStyle(document.documentElement).backgroundColor, bg: getComputedStyle(document.documentElement).backgroundColor, cell: getComputedStyle(cell).backgroundColor, text: getComputedStyle(cell).color };
        });
      await page.setViewportSize({ width: 1440, height: 900 });
      await openFresh();
      const light = await colours();
      assert.ok(luminance(light.bg) > 0.8 && luminance(light.cell) > 0.8, JSON.stringify(light));
      await page.emulateMedia({ colorScheme: 'dark' });
      try {
        await page.reload();
        await rows(15);
        await page.locator('.pc-label').first().waitFor();
        const dark = await colours();
        assert.ok(luminance(dark.bg) < 0.15, `page background ${dark.bg}`);
        assert.ok(luminance(dark.cell) < 0.2, `cell background ${dark.cell}`);
        assert.ok(luminance(dark.text) > 0.6, `cell text ${dark.text}`);
        await shot('dark-table-1440');
        await page.goto(`${base}/jobs/${jobs[4].id}?tab=metrics`);
        await page.locator(`${lossChart} canvas`).waitFor();
        await shot('dark-job-1440');
        await page.setViewportSize({ width: 1280, height: 720 });
        await page.goto(`${base}/queue`);
        await page.locator('[data-testid="queued-table"]').waitFor();
        await shot('dark-queue-1280');
      } finally {
        await page.emulateMedia({ colorScheme: 'light' });
        await page.setViewportSize({ width: 1440, height: 900 });
      }
    });

    test('job names show beside ids; "Clone and edit" queues a copy with an edited param', async () => {
      const named = await call('GET', `/jobs/${jobs[0].id}`);
      assert.ok(named.name, 'the server gave the job no name');
      await openFresh();
      const cell = page.locator(`.tr[data-job="${jobs[0].id}"] .td[data-col="id"]`);
      await cell.locator('a.joblink').filter({ hasText: named.name }).waitFor();
      await cell.locator('.jobid').filter({ hasText: jobs[0].id.slice(0, 8) }).waitFor();

      const src = await call('GET', `/jobs/${queued[0]}`);
      await page.goto(`${base}/jobs/${queued[0]}`);
      await page.locator('[data-testid="job-name"]').filter({ hasText: src.name }).waitFor();
      await page.locator('[data-testid="clone-job"]').click();
      const dialog = page.locator('[data-testid="clone-dialog"]');
      await dialog.locator('input[data-param="learning_rate"]').fill('0.25');
      await dialog.locator('[data-testid="clone-name"]').fill('lr-0.25');
      await shot('clone-dialog');
      await page.locator('[data-testid="clone-submit"]').click();
      await page.waitForURL((u) => /\/jobs\/[^/]+$/.test(u.pathname) && !u.pathname.endsWith(queued[0]));
      const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
      queued.push(id);
      const clone = await call('GET', `/jobs/${id}`);
      assert.equal(clone.name, 'lr-0.25');
      assert.equal(clone.project, PROJECT);
      assert.deepEqual(clone.submitted_params, { learning_rate: 0.25, batch_size: 128 });
      await page.locator('[data-testid="job-name"]').filter({ hasText: 'lr-0.25' }).waitFor();
      await page.locator('[data-testid="params"] td').filter({ hasText: /^0\.25$/ }).waitFor();
    });

    test('every page at 1440×900 and 1280×720: nothing wider than the window', async () => {
      // Each page, and what shows once it has loaded.
      const pages = {
        projects: ['/projects', '[data-testid="project-card"]'],
        jobs: [`/projects/${PROJECT}`, '.pc-label'],
        overview: [`/projects/${PROJECT}/overview`, '[data-testid="overview-chart"] canvas'],
        compare: [`/projects/${PROJECT}/compare?ids=${jobs[0].id},${jobs[1].id}`, '.chart-box canvas'],
        job: [`/jobs/${jobs[0].id}?tab=metrics`, '.chart-box canvas'],
        queued: [`/jobs/${queued[0]}`, '[data-testid="job-page"][data-state="queued"]'],
        queue: ['/queue', '[data-testid="queued-table"]'],
      };
      for (const [w, h] of [
        [1440, 900],
        [1280, 720],
      ]) {
        await page.setViewportSize({ width: w, height: h });
        for (const [name, [url, loaded]] of Object.entries(pages)) {
          await page.goto(base + url);
          await page.locator(loaded).first().waitFor();
          const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(over <= 0, `${name} at ${w}×${h} is ${over}px wider than the window`);
          await shot(`page-${name}-${w}`);
        }
      }
      await page.setViewportSize({ width: 1440, height: 900 });
    });

    test('no script errors', () => {
      assert.deepEqual(errors, []);
    });
  });
}
