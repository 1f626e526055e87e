// What web pages can do to an Atlas server through the user's browser, from real Chromium
// pages: a page of another origin sending requests to the server (with and without --auth and
// its cookie), a page whose name is re-pointed at the server (DNS rebinding: Chromium maps
// attacker.example to 127.0.0.1), Markdown written to run script in the GUI, and artifacts a
// job saved to run script in the server's origin. Each attack is also made the legitimate way
// (from the GUI's own pages, or with a client's request) to show that the test would see it
// succeed.
//
//   node --test tests/security.test.mjs        (from web/, after `npm run build` and `make build`)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CI, collectErrors, here, launchBrowser, missing, serverBin, startServer } from './lib.mjs';

const shots = path.join(here, 'screenshots');
const ATTACKER = 'attacker.example'; // resolves to 127.0.0.1 in this browser only

const reason = missing();
if (reason && CI) {
  test('web security environment', () => assert.fail(`CI=true but ${reason}`));
} else if (reason) {
  test('web security in Chromium', { skip: reason }, () => {});
} else {
  suite();
}

function suite() {
  let open, secured, browser, page, evil, evilURL, home, authHome, admin, work;
  /** Each test has a page of its own, so that one test's navigations never reach another. */
  const newPage = async () => {
    await page?.close();
    page = await browser.ctx.newPage();
    page.setDefaultTimeout(20000);
    collectErrors(page, errors);
  };
  const errors = [];

  /** Calls the API as a client (no browser headers). */
  const call = async (base, method, p, body, token) => {
    const headers = { ...(body !== undefined && typeof body !== 'string' ? { 'Content-Type': 'application/json' } : {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(base + '/api/v1' + p, { method, headers, body: body === undefined || typeof body === 'string' ? body : JSON.stringify(body) });
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
    return r.status === 204 ? null : r.headers.get('content-type')?.startsWith('application/json') ? r.json() : r.text();
  };
  const jobCount = async (base, token) => (await call(base, 'GET', '/jobs?limit=0', undefined, token)).total;
  /** A job that leaves a marker file when it runs: what a page would like to run. */
  const spec = (marker) => ({ project: 'victim', command: ['-c', `open(${JSON.stringify(marker)}, 'w').write('pwned')`] });
  /** From a page of origin `from`, sends what any page may send without asking: a no-cors POST. */
  const noCors = (pg, url, body, credentials = 'omit') =>
    pg.evaluate(
      async ({ url, body, credentials }) => {
        await fetch(url, { method: 'POST', mode: 'no-cors', credentials, headers: { 'Content-Type': 'text/plain' }, body });
        return 'sent';
      },
      { url, body, credentials },
    );

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-sec-home-'));
    authHome = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-sec-auth-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-sec-work-'));
    fs.mkdirSync(shots, { recursive: true });
    const cli = (...args) => execFileSync(serverBin, args, { env: { ...process.env, FOUNDATIONS_HOME: authHome }, encoding: 'utf8' });
    cli('user', 'add', 'alice', '--admin');
    admin = cli('token', 'create', 'alice').split('\n')[0].trim();
    open = await startServer(home);
    secured = await startServer(authHome, ['--auth']);
    // Another origin: any web site the user visits.
    evil = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>a page of another site</title><p>Nothing to see here.</p>');
    });
    await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
    evilURL = `http://localhost:${evil.address().port}`; // another origin, and another site than 127.0.0.1
    browser = await launchBrowser([`--host-resolver-rules=MAP ${ATTACKER} 127.0.0.1`]);
  });

  after(async () => {
    await browser?.close();
    await open?.stop();
    await secured?.stop();
    evil?.close();
    for (const d of [home, authHome, work]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  describe('web security', () => {
    test('a page of another site cannot submit a job', async () => {
      await newPage();
      const marker = path.join(work, 'cross-site');
      await page.goto(evilURL);
      const body = JSON.stringify(spec(marker));
      assert.equal(await noCors(page, `${open.url}/api/v1/jobs`, body), 'sent');
      // The same with a form, and with a beacon: the other ways a page posts without asking.
      await page.evaluate(({ url, body }) => navigator.sendBeacon(url, body), { url: `${open.url}/api/v1/jobs`, body });
      const posted = page.waitForResponse((r) => r.url() === `${open.url}/api/v1/jobs` && r.request().resourceType() === 'document');
      await page.evaluate(
        ({ url, body }) => {
          const f = document.createElement('form');
          f.method = 'POST';
          f.action = url;
          f.enctype = 'text/plain';
          // Sent as name=value: {"project": ..., "x":"="}, a JSON body.
          const i = document.createElement('input');
          i.name = body.slice(0, -1) + ',"x":"';
          i.value = '"}';
          f.append(i);
          document.body.append(f);
          f.submit();
        },
        { url: `${open.url}/api/v1/jobs`, body },
      );
      const answer = await posted;
      assert.equal(answer.status(), 403);
      assert.match(await answer.text(), /refused: a page of another site/);
      // Another port of localhost is another origin, though the same site.
      await page.goto(`http://127.0.0.1:${evil.address().port}/`);
      await noCors(page, `${open.url}/api/v1/jobs`, body);
      assert.equal(await jobCount(open.url), 0, 'no job was submitted');

      // The same request from the GUI's own page goes through, and the job runs.
      await page.goto(`${open.url}/projects`);
      const status = await page.evaluate(
        async ({ body }) => (await fetch('/api/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })).status,
        { body },
      );
      assert.equal(status, 201);
      const [job] = (await call(open.url, 'GET', '/jobs?project=victim')).jobs;
      assert.equal((await call(open.url, 'GET', `/jobs/${job.id}?wait_while=queued,starting,running&timeout=60s`)).state, 'completed');
      assert.equal(fs.readFileSync(marker, 'utf8'), 'pwned', 'what the pages asked for runs code when it may');
      await call(open.url, 'DELETE', `/jobs/${job.id}`);
    });

    test('a page whose name points at the server (DNS rebinding) gets nothing', async () => {
      await newPage();
      const marker = path.join(work, 'rebinding');
      const port = new URL(open.url).port;
      const res = await page.goto(`http://${ATTACKER}:${port}/projects`);
      assert.equal(res.status(), 403);
      assert.match(JSON.parse(await res.text()).error, new RegExp(`^refused: "${ATTACKER}:${port}" is not a name of this server`));
      // To the browser the API is now same-origin with the attacker's page: read and write.
      const answers = await page.evaluate(
        async ({ body }) => [
          (await fetch('/api/v1/jobs')).status,
          (await fetch('/api/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })).status,
        ],
        { body: JSON.stringify(spec(marker)) },
      );
      assert.deepEqual(answers, [403, 403]);
      assert.equal(await jobCount(open.url), 0);
      // localhost is a name of the server: the GUI works there.
      await page.goto(`http://localhost:${port}/projects`);
      await page.locator('.topbar').waitFor();
    });

    test('with --auth, the GUI’s cookie does not let a page of the same site change anything', async () => {
      await newPage();
      // Signed in to the GUI: the browser holds the HttpOnly cookie.
      await page.goto(`${secured.url}/login`);
      await page.locator('[data-testid="token-input"]').fill(admin);
      await page.locator('[data-testid="sign-in"]').click();
      await page.waitForURL(/\/projects$/);
      // A page on another port of the same address: the same site, so the SameSite=Strict
      // cookie goes along.
      await page.goto(`http://127.0.0.1:${evil.address().port}/`);
      const body = JSON.stringify({ project: 'victim', mode: 'execution', command: ['main.py'] });
      await noCors(page, `${secured.url}/api/v1/jobs`, body, 'include');
      await noCors(page, `${secured.url}/api/v1/projects/victim/notes`, JSON.stringify({ message: 'pwned' }), 'include');
      assert.equal(await jobCount(secured.url, admin), 0);
      // From the GUI's own page the cookie does submit.
      await page.goto(`${secured.url}/projects`);
      const status = await page.evaluate(
        async ({ body }) => (await fetch('/api/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })).status,
        { body },
      );
      assert.equal(status, 201);
      assert.equal(await jobCount(secured.url, admin), 1);
    });

    test('Markdown cannot run script in the GUI', async () => {
      await newPage();
      const { job } = await call(open.url, 'POST', '/jobs', { project: 'markdown', mode: 'execution', command: ['main.py'] });
      const attacks = [
        '[report](http://a(http://b/onmouseover=window.__pwned=1//)',
        '[report](http://a(http://b/onmouseover=alert``//)',
        'http://a(http://b/"onmouseover=window.__pwned=2//',
        '[x](\u0001javascript:window.__pwned=3) [y](java\tscript:window.__pwned=4)',
        '<img src=x onerror=window.__pwned=5>',
      ];
      await call(open.url, 'PUT', '/projects/markdown/description', { description: attacks.join('\n\n') });
      await call(open.url, 'POST', '/projects/markdown/notes', { author: 'x', message: attacks.join('\n\n') });
      const dialogs = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        d.dismiss();
      });
      await page.goto(`${open.url}/projects/markdown/overview`);
      const md = page.locator('[data-testid="description-md"]');
      await md.locator('a').first().waitFor();
      await page.locator('.note-body a').first().waitFor();
      for (const a of await page.locator('.md a').all()) await a.hover();
      for (const a of await page.locator('.md a').all()) await a.focus();
      const found = await page.evaluate(() => {
        const out = [];
        for (const el of document.querySelectorAll('.md *')) {
          for (const n of el.getAttributeNames()) if (!['href', 'target', 'rel', 'class', 'type', 'disabled', 'checked'].includes(n)) out.push(`${el.localName} ${n}`);
          if (el.localName === 'a' && !['http:', 'https:', 'mailto:', ':'].includes(el.protocol)) out.push(`href ${el.getAttribute('href')}`);
        }
        return out;
      });
      assert.deepEqual(found, [], 'only the renderer’s own attributes');
      assert.deepEqual(dialogs, []);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      assert.equal(await md.locator('a').first().getAttribute('href'), 'http://a(http://b/onmouseover=window.__pwned=1//');
      await shot('overview-attacks');
      assert.ok(job.id);
    });

    test('the GUI runs under a Content-Security-Policy that refuses injected script', async () => {
      await newPage();
      const res = await fetch(`${open.url}/projects`);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /unsafe-inline|unsafe-eval/);
      await page.goto(`${open.url}/projects`);
      await page.locator('.topbar').waitFor();
      // Were anything to put markup into a page, its inline script and handlers would not run.
      const refused = await page.evaluate(
        () =>
          new Promise((resolve) => {
            const seen = [];
            document.addEventListener('securitypolicyviolation', (e) => {
              seen.push(e.violatedDirective);
              if (seen.length === 2) resolve(seen);
            });
            document.body.insertAdjacentHTML('beforeend', '<img src="data:," onerror="window.__pwned=1" onload="window.__pwned=1">');
            const s = document.createElement('script');
            s.textContent = 'window.__pwned = 2';
            document.body.append(s);
          }),
      );
      assert.deepEqual(refused.map((d) => d.replace(/-(elem|attr)$/, '')).sort(), ['script-src', 'script-src']);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      expectErrors(/Content Security Policy/);
    });

    test('artifacts a job saved never run as pages of the server', async () => {
      await newPage();
      const { job, token } = await call(open.url, 'POST', '/jobs', { project: 'artifacts', mode: 'execution', command: ['main.py'] });
      const payload =
        'document.title="pwned";window.__pwned=1;' +
        'fetch("/api/v1/projects/artifacts/notes",{method:"POST",headers:{"Content-Type":"application/json"},body:\'{"message":"pwned"}\'})';
      const files = {
        'report.html': `<!doctype html><title>report</title><script>${payload}</script><p>report</p>`,
        'figure.svg': `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>${payload}</script><rect width="10" height="10"/></svg>`,
        'page.xhtml': `<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title><script>${payload}</script></head><body/></html>`,
        'lib.js': payload,
        'notes.txt': '<script>alert(1)</script> plain text',
      };
      const artifacts = [];
      for (const [name, text] of Object.entries(files)) {
        const digest = 'sha256:' + createHash('sha256').update(text).digest('hex');
        const r = await fetch(`${open.url}/api/v1/blobs/${digest}`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: text });
        assert.ok(r.ok, `upload ${name}`);
        artifacts.push({ key: name.split('.')[0], filename: name, digest });
      }
      await call(open.url, 'POST', `/jobs/${job.id}/track`, { artifacts }, token);
      const url = (key) => `${open.url}/api/v1/jobs/${job.id}/artifacts/${key}`;

      // As the browser gets them: sandboxed; markup and scripts only as downloads of opaque bytes.
      for (const key of ['report', 'figure', 'page', 'lib', 'notes']) {
        const r = await fetch(url(key));
        assert.match(r.headers.get('content-security-policy') ?? '', /sandbox/, key);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff', key);
      }
      // Opened in a tab (a link, the address bar): downloaded, or shown with no script.
      for (const key of ['report', 'figure', 'page']) {
        const tab = await browser.ctx.newPage();
        const shown = await tab.goto(url(key)).then(
          () => true,
          (e) => (/Download is starting/.test(e.message) ? false : Promise.reject(e)),
        );
        if (shown) assert.notEqual(await tab.title(), 'pwned', `${key} ran its script`);
        assert.equal(shown, false, `${key} is a download, not a page`);
        await tab.close();
      }
      // Loaded as a script or style by a page of the GUI (were markup ever injected): refused.
      await page.goto(`${open.url}/jobs/${job.id}`);
      const loaded = await page.evaluate(
        (src) =>
          new Promise((resolve) => {
            const s = document.createElement('script');
            s.src = src;
            s.addEventListener('load', () => resolve('ran'));
            s.addEventListener('error', () => resolve('refused'));
            document.head.append(s);
          }),
        url('lib'),
      );
      assert.equal(loaded, 'refused');
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      // The GUI's previews: an SVG as an image, text as text.
      await page.locator('.tab[data-tab="artifacts"]').click();
      await page.locator('.artifact-item[data-key="figure"]').click();
      await page.waitForFunction(() => {
        const i = document.querySelector('[data-testid="artifact-image"]');
        return i && i.complete && i.naturalWidth === 10;
      });
      await page.locator('.artifact-item[data-key="notes"]').click();
      await page.locator('[data-testid="artifact-text"]').filter({ hasText: '<script>alert(1)</script> plain text' }).waitFor();
      assert.notEqual(await page.title(), 'pwned');
      assert.deepEqual(await call(open.url, 'GET', '/projects/artifacts/notes'), [], 'no artifact wrote a note');
    });

    test('no script errors', () => {
      assert.deepEqual(errors, []);
    });
  });

  /** Drops the errors a test provoked on purpose; they must all match re. */
  const expectErrors = (re) => {
    const provoked = errors.splice(0);
    assert.ok(provoked.length > 0 && provoked.every((e) => re.test(e)), provoked.join('\n'));
  };
  const shot = (name) => page.screenshot({ path: path.join(shots, name + '.png'), animations: 'disabled' });
}
