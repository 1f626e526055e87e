// Unit tests of the GUI's pure modules (Markdown, the ANSI log model, formatting, CSV): Vite
// compiles them to a temporary directory, then node:test imports them. No browser needed.
//   node --test tests/units.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compileModules } from './lib.mjs';

const mod = {};
let remove;

before(async () => {
  const c = await compileModules({ markdown: 'markdown.ts', ansi: 'ansi.ts', format: 'format.ts', artifacts: 'components/artifacts.tsx' });
  Object.assign(mod, c.mod);
  remove = c.remove;
});

after(() => remove?.());

describe('markdown', () => {
  test('renders headings, emphasis, lists, code, tables and links', () => {
    const html = mod.renderMarkdown('# Title\n\nSome **bold** and *it* and `a<b`.\n\n- one\n- two\n\n1. x\n\n```\n<raw>\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[docs](https://example.com/x?a=1&b=2)');
    assert.match(html, /<h1>Title<\/h1>/);
    assert.match(html, /<strong>bold<\/strong>/);
    assert.match(html, /<em>it<\/em>/);
    assert.match(html, /<code>a&lt;b<\/code>/);
    assert.match(html, /<ul><li>one<\/li><li>two<\/li><\/ul>/);
    assert.match(html, /<ol><li>x<\/li><\/ol>/);
    assert.match(html, /<pre><code>&lt;raw&gt;<\/code><\/pre>/);
    assert.match(html, /<table><thead><tr><th>a<\/th><th>b<\/th><\/tr><\/thead><tbody><tr><td>1<\/td><td>2<\/td><\/tr><\/tbody><\/table>/);
    assert.match(html, /<a href="https:\/\/example.com\/x\?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">docs<\/a>/);
  });

  test('raw HTML shows as text and unsafe links are dropped', () => {
    const html = mod.renderMarkdown('<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) [y](data:text/html,hi) [z](JaVaScRiPt:1) "quotes" \'single\'');
    assert.doesNotMatch(html, /<script|<img|href="javascript|href="data|href="JaVa/i);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(html, /&quot;quotes&quot; &#39;single&#39;/);
  });

  test('underscores inside words are not emphasis', () => {
    const html = mod.renderMarkdown('set learning_rate and max_steps; window.__x=1 and y.__z__w');
    assert.doesNotMatch(html, /<em>|<strong>/);
  });
});

describe('log model', () => {
  const text = (m) => m.lines.slice(0, m.count).map(mod.plain);

  test('carriage returns collapse a progress bar to its last state', () => {
    const m = new mod.LogModel();
    m.push('start\n\r 10%|#   |\r 50%|##  |\r100%|####|\ndone\n');
    assert.deepEqual(text(m), ['start', '100%|####|', 'done']);
  });

  test('earlier output goes before the lines held (a log loaded from its tail)', () => {
    const m = new mod.LogModel();
    m.push('line 3\n\x1b[31mline 4\n');
    assert.equal(m.prepend('line 1\nprogress 10%\rprogress 100%\n'), 2);
    assert.deepEqual(text(m), ['line 1', 'progress 100%', 'line 3', 'line 4']);
    assert.equal(m.prepend(''), 0);
    // New output still appends, in the colour the held output left.
    m.push('line 5\n');
    assert.deepEqual(text(m).slice(-2), ['line 4', 'line 5']);
    assert.equal(m.starts[4].fg, '#ef6b73');
  });

  test('\\r\\n is a newline, also when split across chunks', () => {
    const m = new mod.LogModel();
    m.push('a\r\nb\r');
    m.push('\nc');
    assert.deepEqual(text(m), ['a', 'b', 'c']);
  });

  test('a chunk ending inside a line or an escape sequence continues in the next one', () => {
    const m = new mod.LogModel();
    m.push('hel');
    m.push('lo \x1b[3');
    m.push('1mred\x1b[0m\n');
    assert.deepEqual(text(m), ['hello red']);
    const segs = mod.segments(m.lines[0], m.starts[0]);
    assert.equal(segs.find((s) => s.text === 'red').style.fg, '#ef6b73');
  });

  test('colours carry over to the next line and across a carriage return', () => {
    const m = new mod.LogModel();
    m.push('\x1b[32mgreen\nstill green\x1b[0m plain\n\x1b[1;34mx\ry\n');
    assert.equal(mod.segments(m.lines[1], m.starts[1])[0].style.fg, '#8ccf7e');
    assert.deepEqual(mod.segments(m.lines[1], m.starts[1]).at(-1).style, {});
    const y = mod.segments(m.lines[2], m.starts[2]);
    assert.equal(y[0].text, 'y');
    assert.equal(y[0].style.fg, '#67b0e8');
    assert.equal(y[0].style.bold, true);
  });

  test('256 colours, true colour and other escape sequences', () => {
    assert.equal(mod.applySGR({}, '38;5;196').fg, 'rgb(255,0,0)');
    assert.equal(mod.applySGR({}, '48;2;1;2;3').bg, 'rgb(1,2,3)');
    assert.deepEqual(mod.applySGR({ fg: 'x', bold: true }, '0'), {});
    assert.equal(mod.plain('\x1b[2K\x1b[1Gab\x1b]0;title\x07c'), 'abc');
  });

  test('memory stays bounded', () => {
    const m = new mod.LogModel(100);
    for (let i = 0; i < 1000; i++) m.push(`line ${i}\n`);
    assert.equal(m.lines.length, 100); // 99 lines and the open one
    assert.equal(m.dropped, 901);
    assert.equal(mod.plain(m.lines[0]), 'line 901');
    assert.equal(mod.plain(m.lines[m.count - 1]), 'line 999');
  });
});

describe('formatting', () => {
  test('numbers', () => {
    assert.equal(mod.fmtNumber(3), '3');
    assert.equal(mod.fmtNumber(0.123456), '0.1235');
    assert.equal(mod.fmtNumber(8.8889e24), '8.889e+24');
    assert.equal(mod.fmtNumber(0.00012346), '1.235e-4');
    assert.equal(mod.fmtValue([1, 2.5, 'a']), '[1, 2.5, a]');
    assert.equal(mod.fmtValue(true), 'true');
    assert.equal(mod.fmtValue(null), '');
  });

  test('durations and sizes', () => {
    assert.equal(mod.fmtDuration(3.21), '3.2s');
    assert.equal(mod.fmtDuration(75), '1m 15s');
    assert.equal(mod.fmtDuration(3 * 3600 + 5 * 60), '3h 05m');
    assert.equal(mod.fmtDuration(2 * 86400 + 3600), '2d 1h');
    assert.equal(mod.fmtBytes(512), '512 B');
    assert.equal(mod.fmtBytes(1536), '1.5 KB');
    assert.equal(mod.fmtBytes(50 * 1024 * 1024), '50 MB');
  });
});

describe('artifacts', () => {
  test('preview kinds by file name', () => {
    assert.equal(mod.kindOf('a.PNG'), 'image');
    assert.equal(mod.kindOf('x.wav'), 'audio');
    assert.equal(mod.kindOf('r.json'), 'json');
    assert.equal(mod.kindOf('t.tsv'), 'csv');
    assert.equal(mod.kindOf('README'), 'text');
    assert.equal(mod.kindOf('model.ckpt'), 'other');
  });

  test('CSV with quotes, doubled quotes and newlines in quotes', () => {
    assert.deepEqual(mod.parseCSV('a,b\n"x, y","say ""hi"""\r\n"multi\nline",2'), [
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['multi\nline', '2'],
    ]);
    assert.deepEqual(mod.parseCSV('1\t2\n', '\t'), [['1', '2']]);
  });
});
