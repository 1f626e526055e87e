// Fuzz tests of the Markdown renderer, which turns what anyone may write (project descriptions,
// notes) into HTML the GUI inserts into its pages. For known attacks and for many generated
// inputs (random sequences of Markdown, HTML and URL pieces; mutations of the attacks), the
// output must hold only allowed elements and attributes, links only to http(s), mailto or
// relative URLs, as checked by
//   - a strict parser of the small HTML the renderer may write (here, in Node), and
//   - Chromium's own HTML parser, which must see the very elements the strict parser saw.
// The inputs come from fixed seeds, so a failure repeats; MD_FUZZ_SEED and MD_FUZZ_N explore
// others.
//   node --test tests/markdown.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CI, chromiumPath, compileModules, here, launchBrowser } from './lib.mjs';

const SEED = Number(process.env.MD_FUZZ_SEED || 20261205);
const N = Number(process.env.MD_FUZZ_N || 20000);
const N_BROWSER = Math.min(N, 3000);

// What the renderer may write: elements and, for each, its attributes.
const ALLOWED = {
  p: [], h1: [], h2: [], h3: [], h4: [], h5: [], h6: [], ul: [], ol: [], li: ['class'], blockquote: [], pre: [], code: [],
  table: [], thead: [], tbody: [], tr: [], th: [], td: [], hr: [], br: [], strong: [], em: [], del: [],
  a: ['href', 'target', 'rel'], input: ['type', 'disabled', 'checked'],
};
const VOID = new Set(['hr', 'br', 'input']);
const SCHEMES = new Set(['http:', 'https:', 'mailto:']);
const BASE = 'http://atlas.invalid/projects/p/overview';

// Known attacks: the one found (the bare-URL pass rewrote the anchor the link pass had made),
// and the classics.
const ATTACKS = [
  '[report](http://a(http://b/onmouseover=alert``//)',
  '[report](http://a(http://b/onmouseover=alert(1)//)',
  'http://a(http://b/"onmouseover=alert(1)//',
  '[x](http://a/"onmouseover="alert(1))',
  '[http://a/](http://b/ onmouseover=alert(1))',
  '[a](http://x/**y**) **[b](http://z/_q_)**',
  '[`x`](http://a/`"onclick=alert(1)`)',
  '<script>alert(1)</script><img src=x onerror=alert(1)><svg onload=alert(1)>',
  '[x](javascript:alert(1)) [y](JaVaScRiPt:alert(1)) [z](data:text/html,<script>alert(1)</script>) [v](vbscript:x)',
  '[x](\u0001javascript:alert(1)) [y](\u0000javascript:alert(1)) [z](java\tscript:alert(1)) [w](\u00a0javascript:x)',
  '[x](&#106;avascript:alert(1)) [y](javascript&#58;alert(1)) [z](jav&#x09;ascript:alert(1))',
  '[x](/\\javascript:alert(1)) [y](\\\\evil.example) [z](//evil.example) [q](?a=1#b:c)',
  '![x](https://evil.example/track.png) ![y](javascript:alert(1))',
  '`<b>` ``a`<i>`b`` ```\n<script>\n```',
  '| a | <b> |\n|---|---|\n| [x](javascript:1) | http://x/"a=b |',
  '- [x] <img src=x>\n- [ ] [y](http://y)\n> > > <script>',
  '# <h1>\n## [x](http://x/</a><script>)',
  '*<em>* _<u>_ ~~<s>~~ **<b>** __<i>__',
  'http://x/<script> https://y/&quot;onmouseover=1 (http://z/)',
  'a  \n<br>  \nb',
];

const TOKENS = [
  '[', ']', '(', ')', '![', '](', '*', '**', '_', '__', '~', '~~', '`', '``', '```', '\\', '<', '>', '"', "'", '&', '&amp;',
  '&#106;', '&#x6a;', '&lt;', '&quot;', '#', '# ', '## ', '|', '---', '|---|', '\n', '\n\n', '  \n', ' ', '  ', '\t', ':', '/',
  '//', '\\\\', '?', '#x', '=', 'http://', 'https://', 'HTTP://', 'http://a', 'https://b.example/p?q=1&r=2', 'javascript:',
  'JaVaScRiPt:', 'vbscript:', 'data:text/html,', 'mailto:a@b.c', 'onmouseover=', 'onerror=', ' onclick="', 'alert(1)',
  'alert``', '<script>', '</script>', '<img src=x onerror=alert(1)>', '<a href="', '</a>', 'style="', '"><svg onload=alert(1)>',
  '\u0000', '\u0001', '\u0008', '\u001f', '\u007f', '\u0085', '\u00a0', '\u2028', '\ufeff', '\r', '\r\n', 'é', '🚀', 'x', 'ab',
  'snake_case', '1. ', '- ', '* ', '> ', '- [x] ', '- [ ] ', 'a.b', '%0a', '%3Cscript%3E',
];

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Generated inputs: token soup, and attacks with tokens inserted, removed or replaced. */
function* inputs(seed, n) {
  const r = rng(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  for (let k = 0; k < n; k++) {
    if (k % 3 === 2) {
      let s = pick(ATTACKS);
      for (let m = 1 + Math.floor(r() * 4); m > 0; m--) {
        const at = Math.floor(r() * (s.length + 1));
        const cut = r() < 0.3 ? Math.floor(r() * 4) : 0;
        s = s.slice(0, at) + (r() < 0.8 ? pick(TOKENS) : '') + s.slice(at + cut);
      }
      yield s;
    } else {
      let s = '';
      for (let m = Math.floor(r() * 40); m > 0; m--) s += pick(TOKENS);
      yield s;
    }
  }
}

const decode = (v) => v.replace(/&(amp|lt|gt|quot|#39);/g, (_, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]);
const ENTITY = /&(?!(amp|lt|gt|quot|#39);)/;

/**
 * Parses the renderer's output strictly: text with no raw <, >, quotes or stray &, and tags of
 * ALLOWED with their attributes, properly nested. Returns the elements in document order, or
 * throws saying what is wrong.
 */
function strictParse(html) {
  const tags = [];
  const stack = [];
  const tagRE = /<(\/?)([a-z][a-z0-9]*)((?: [a-z-]+(?:="[^"<>]*")?)*)>/y;
  const attrRE = / ([a-z-]+)(?:="([^"<>]*)")?/g;
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    const text = html.slice(i, lt < 0 ? html.length : lt);
    if (/[>"']/.test(text) || ENTITY.test(text)) throw new Error(`raw markup in text: ${JSON.stringify(text)}`);
    if (lt < 0) break;
    tagRE.lastIndex = lt;
    const m = tagRE.exec(html);
    if (!m) throw new Error(`not a tag at ${lt}: ${JSON.stringify(html.slice(lt, lt + 40))}`);
    const [all, close, name, attrs] = m;
    if (!(name in ALLOWED)) throw new Error(`element <${name}>`);
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes nothing`);
    } else {
      const el = { name, attrs: {} };
      for (const [, a, v = ''] of attrs.matchAll(attrRE)) {
        if (!ALLOWED[name].includes(a)) throw new Error(`attribute ${a} on <${name}>`);
        if (ENTITY.test(v)) throw new Error(`stray & in ${a}="${v}"`);
        el.attrs[a] = decode(v);
      }
      checkElement(el);
      tags.push(name);
      if (!VOID.has(name)) stack.push(name);
    }
    i = lt + all.length;
  }
  if (stack.length) throw new Error(`unclosed ${stack.join(', ')}`);
  return tags;
}

function checkElement({ name, attrs }) {
  if (name === 'a') {
    assert.ok('href' in attrs, '<a> without href');
    // The WHATWG parser, as browsers have it; a URL it cannot parse leads nowhere.
    if (URL.canParse(attrs.href, BASE)) {
      const u = new URL(attrs.href, BASE);
      assert.ok(SCHEMES.has(u.protocol), `href ${JSON.stringify(attrs.href)} is a ${u.protocol} URL`);
    }
    if ('target' in attrs) assert.deepEqual([attrs.target, attrs.rel], ['_blank', 'noopener noreferrer']);
  }
  if (name === 'li' && 'class' in attrs) assert.equal(attrs.class, 'task');
  if (name === 'input') assert.deepEqual([attrs.type, 'disabled' in attrs], ['checkbox', true]);
}

let md;
let remove;
before(async () => {
  const c = await compileModules({ markdown: 'markdown.ts' });
  md = c.mod;
  remove = c.remove;
});
after(() => remove?.());

describe('markdown renderer', () => {
  test('the attacks render as inert markup', () => {
    for (const a of ATTACKS) {
      const html = md.renderMarkdown(a);
      assert.doesNotThrow(() => strictParse(html), `${JSON.stringify(a)} -> ${html}`);
      assert.doesNotMatch(html, /<[^>]* on[a-z]+=|<(script|img|svg)/i, `${JSON.stringify(a)} -> ${html}`);
    }
    // The report: one anchor, whose href keeps the whole destination, escaped.
    const html = md.renderMarkdown(ATTACKS[0]);
    assert.equal(html, '<p><a href="http://a(http://b/onmouseover=alert``//" target="_blank" rel="noopener noreferrer">report</a></p>');
  });

  test(`${N} generated inputs render as allowed markup only (seed ${SEED})`, () => {
    let k = 0;
    for (const src of inputs(SEED, N)) {
      const html = md.renderMarkdown(src);
      try {
        strictParse(html);
      } catch (e) {
        assert.fail(`input ${k} ${JSON.stringify(src)}\n -> ${JSON.stringify(html)}\n${e.message}`);
      }
      k++;
    }
  });

  test('URLs a link may have', () => {
    for (const u of ['http://x', 'HTTPS://x/y?z#w', 'mailto:a@b.c', '/rel', 'rel/a:b', '?q=a:b', '#frag:x', '//host/p', '../x'])
      assert.equal(md.safeURL(u), u, u);
    for (const u of ['javascript:x', 'JAVASCRIPT:x', ' javascript:x', '\u0001javascript:x', 'java\nscript:x', 'java\tscript:x', 'data:x', 'vbscript:x', 'file:///etc/passwd', 'x:y', '', 'http://a b'])
      assert.equal(md.safeURL(u), null, JSON.stringify(u));
  });
});

const browserReason = !fs.existsSync(chromiumPath)
  ? `no Chromium at ${chromiumPath} (apt-get install chromium)`
  : !fs.existsSync(path.join(here, '../node_modules/playwright-core/package.json'))
    ? 'playwright-core is not installed (npm ci in web/)'
    : '';

describe('markdown renderer in Chromium', () => {
  if (browserReason && CI) {
    test('environment', () => assert.fail(`CI=true but ${browserReason}`));
    return;
  }
  let browser;
  before(async () => {
    if (browserReason) return;
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  test(`Chromium parses ${ATTACKS.length + N_BROWSER} renderings into the same allowed elements, and none runs script`, { skip: browserReason || false }, async () => {
    const page = await browser.ctx.newPage();
    // Relative links resolve as on the GUI's pages (not against about:blank).
    await page.setContent(`<!doctype html><html><head><base href="${BASE}"></head><body><div id="md"></div></body></html>`);
    const sources = [...ATTACKS, ...inputs(SEED + 1, N_BROWSER)];
    const rendered = sources.map((s) => md.renderMarkdown(s).replace(/alert/g, 'window.__pwned=1;alert'));
    for (let k = 0; k < rendered.length; k += 500) {
      const batch = rendered.slice(k, k + 500);
      const seen = await page.evaluate(
        ({ batch, allowed }) => {
          const box = document.getElementById('md');
          return batch.map((html) => {
            // As the GUI does (dangerouslySetInnerHTML): into a live element of the page.
            box.innerHTML = html;
            const tags = [];
            const bad = [];
            for (const el of box.querySelectorAll('*')) {
              const name = el.localName;
              tags.push(name);
              if (!(name in allowed)) bad.push(`<${name}>`);
              for (const a of el.getAttributeNames()) if (!(allowed[name] ?? []).includes(a)) bad.push(`${a} on <${name}>`);
              // Where the link leads, as the browser resolves it (":" for nowhere: no URL).
              if (name === 'a' && !['http:', 'https:', 'mailto:', ':'].includes(el.protocol)) bad.push(`href ${el.getAttribute('href')}`);
              el.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
              el.dispatchEvent(new FocusEvent('focus'));
            }
            return { tags, bad };
          });
        },
        { batch, allowed: ALLOWED },
      );
      seen.forEach(({ tags, bad }, b) => {
        const src = sources[k + b];
        const html = batch[b];
        assert.deepEqual(bad, [], `${JSON.stringify(src)} -> ${html}`);
        assert.deepEqual(tags, strictParse(html), `Chromium parses ${JSON.stringify(html)} as the strict parser does`);
      });
    }
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await page.close();
  });
});
