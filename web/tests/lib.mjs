// Shared by the browser tests and the speed measurements: where things are, how to start
// atlas-server and Chromium.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const serverBin = process.env.ATLAS_SERVER_BIN || path.join(repo, 'bin/atlas-server');
export const cliBin = process.env.FOUNDATIONS_BIN || path.join(repo, 'bin/foundations');
export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CI = process.env.CI === 'true';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

export function missing() {
  if (!fs.existsSync(chromiumPath)) return `no Chromium at ${chromiumPath} (apt-get install chromium)`;
  if (!fs.existsSync(serverBin)) return `no ${path.relative(repo, serverBin)} (make build)`;
  if (!fs.existsSync(cliBin)) return `no ${path.relative(repo, cliBin)} (make build)`;
  if (!fs.existsSync(path.join(here, '../dist/index.html'))) return 'the GUI is not built (npm run build in web/)';
  try {
    // playwright-core is a dev dependency of web/.
    fs.accessSync(path.join(here, '../node_modules/playwright-core/package.json'));
  } catch {
    return 'playwright-core is not installed (npm ci in web/)';
  }
  return '';
}

/**
 * What a server's arguments need so that it can run its jobs: as root with --auth, process jobs
 * run as their users' accounts (or nobody), which cannot run an interpreter under /root, so the
 * server gets the system's.
 */
function authPython(args) {
  if (!args.includes('--auth') || args.includes('--python') || process.getuid?.() !== 0) return [];
  const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => fs.existsSync(p));
  if (!python) throw new Error('no system python3 (/usr/bin/python3) for jobs that run as other accounts');
  return ['--python', python];
}

/** Starts atlas-server on a free port; resolves once it prints its address. */
export async function startServer(home, extraArgs = []) {
  const proc = spawn(serverBin, ['start', '--port', '0', '--executor', 'process', ...extraArgs, ...authPython(extraArgs)], {
    env: { ...process.env, FOUNDATIONS_HOME: home, FOUNDATIONS_SYSTEM_METRICS_INTERVAL: '0' }, // tests count series
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`atlas-server did not start in 30 s:\n${out}\n${err}`)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+) /);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`atlas-server exited with ${code}:\n${out}\n${err}`));
    });
  });
  proc.removeAllListeners('exit');
  return {
    url,
    proc,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', resolve);
        proc.kill('SIGINT');
      }),
  };
}

/**
 * Collects a page's script errors, and what its Content-Security-Policy refused (the browser
 * reports that on the console only), into errors.
 */
export function collectErrors(page, errors) {
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
}

export async function launchBrowser(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    viewport: { width: 1440, height: 900 },
  });
  return {
    ctx,
    close: async () => {
      await ctx.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Compiles modules of src/ (name -> path under src/) with Vite and imports them, for tests
 * without a browser. Returns their exports merged, and a function that removes the output.
 */
export async function compileModules(entries) {
  const { build } = await import('vite');
  // Inside node_modules, so that the compiled modules find preact there.
  const out = fs.mkdtempSync(path.join(here, '../node_modules/.atlas-web-test-'));
  const src = path.join(here, '../src');
  await build({
    configFile: false,
    logLevel: 'silent',
    root: path.join(here, '..'),
    build: {
      outDir: out,
      emptyOutDir: true,
      minify: false,
      lib: { entry: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, path.join(src, v)])), formats: ['es'] },
      rollupOptions: { external: [/^preact/] },
    },
  });
  const mod = {};
  for (const name of Object.keys(entries)) Object.assign(mod, await import(pathToFileURL(path.join(out, `${name}.js`)).href));
  return { mod, remove: () => fs.rmSync(out, { recursive: true, force: true }) };
}
