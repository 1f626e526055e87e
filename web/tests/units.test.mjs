// Unit tests of the GUI's pure modules (Markdown, the ANSI log model, formatting, CSV, chart data): Vite
// compiles them to a temporary directory, then node:test imports them. No browser needed.
//   node --test tests/units.test.mjs
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compileModules } from './lib.mjs';

const mod = {};
let remove;

before(async () => {
  const c = await compileModules({ markdown: 'markdown.ts', ansi: 'ansi.ts', format: 'format.ts', artifacts: 'components/artifacts.tsx', chartdata: 'chartdata.ts', csv: 'jobs/csv.ts', system: 'system.ts' });
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

describe('chart data', () => {
  const job = (id, params, extra = {}) => ({ id, name: '', params, metrics: [], tags: {}, ...extra });

  test('smoothing: an exponential moving average that starts at the first value and skips gaps', () => {
    assert.deepEqual(mod.ema([4, 4, 4], 0.9), [4, 4, 4]);
    const s = mod.ema([0, 10, null, 10], 0.5);
    assert.equal(s[0], 0);
    assert.equal(s[2], null);
    assert.ok(s[1] > 0 && s[1] < 10 && s[3] > s[1] && s[3] < 10);
    assert.deepEqual(mod.ema([1, 2, 3], 0), [1, 2, 3]);
  });

  test('series are labelled by the params that differ, the most varied first', () => {
    const js = [job('a', { lr: 0.1, bs: 32, seed: 1 }), job('b', { lr: 0.2, bs: 32, seed: 1 }), job('c', { lr: 0.3, bs: 64, seed: 1 }, { submitted_params: { opt: 'sgd' } })];
    assert.deepEqual(mod.differingParams(js), ['lr', 'bs', 'opt']);
    assert.equal(mod.jobLabel(js[2], mod.differingParams(js)), 'lr=0.3 bs=64 opt=sgd');
    assert.equal(mod.jobLabel(job('0123456789abcdef0123456789abcdef0123', {}, { name: 'brave-otter' }), []), 'brave-otter');
    assert.deepEqual(mod.differingParams([js[0]]), []);
  });

  test('system metrics come after the job\'s own, and charts leave out their peaks', () => {
    const keys = ['system/rss_mb', 'acc', 'system/peak_rss_mb', 'loss', 'system/gpu0/peak_memory_mb', 'system/cpu_percent'];
    assert.deepEqual(mod.userMetricsFirst(keys), ['acc', 'loss', 'system/rss_mb', 'system/peak_rss_mb', 'system/gpu0/peak_memory_mb', 'system/cpu_percent']);
    assert.deepEqual(mod.defaultMetrics(keys, 1), ['acc', 'system/rss_mb', 'system/cpu_percent']);
  });

  test('the default axes: params that vary (logged or submitted), then metrics that vary', () => {
    const m = (k, last) => ({ key: k, last, last_step: 0, count: 1 });
    const js = [job('a', { a_const: 1, lr: 0.1 }, { metrics: [m('loss', 1), m('acc', 0.5)] }), job('b', { a_const: 1, lr: 0.2 }, { metrics: [m('loss', 2), m('acc', 0.5)] }), job('q', {}, { submitted_params: { a_const: 1, bs: 8 } }), job('r', { a_const: 1, bs: 16 })];
    assert.deepEqual(mod.defaultAxes(js, ['a_const', 'bs', 'lr'], ['acc', 'loss']), ['param:bs', 'param:lr', 'metric:loss']);
    // Nothing varies: the first params and metrics.
    assert.deepEqual(mod.defaultAxes([js[0]], ['a_const', 'lr'], ['acc']), ['param:a_const', 'param:lr', 'metric:acc']);
    // The system/ series every job records are no default axis.
    const sys = js.map((j, i) => ({ ...j, metrics: [...j.metrics, m('system/cpu_percent', i)] }));
    assert.deepEqual(mod.defaultAxes(sys, ['a_const', 'bs', 'lr'], ['acc', 'loss', 'system/cpu_percent']), ['param:bs', 'param:lr', 'metric:loss']);
  });

  test("the overview's x values: launch time, launch order, a param (text by order, shared values apart)", () => {
    const vals = {
      ids: ['a', 'b', 'c', 'd'],
      states: [],
      created_at: ['2024-01-01T00:00:03Z', '2024-01-01T00:00:01Z', '2024-01-01T00:00:02Z', '2024-01-01T00:00:04Z'],
      columns: { 'param:lr': [0.1, 0.1, 0.3, null], 'param:opt': ['sgd', 'adam', 'sgd', 'adam'] },
    };
    assert.deepEqual(mod.overviewXs(vals, 'time').xs, [1704067203, 1704067201, 1704067202, 1704067204]);
    assert.deepEqual(mod.overviewXs(vals, 'order').xs, [3, 1, 2, 4]);
    const lr = mod.overviewXs(vals, 'param:lr').xs;
    assert.equal(lr[0], 0.1);
    assert.ok(lr[1] > 0.1 && lr[1] < 0.1000001, 'a shared value is set a hair apart');
    assert.equal(lr[3], null);
    const opt = mod.overviewXs(vals, 'param:opt');
    assert.deepEqual(opt.cats, ['adam', 'sgd']);
    assert.equal(Math.round(opt.xs[0]), 1);
    assert.equal(Math.round(opt.xs[1]), 0);
  });
});

describe('jobs CSV', () => {
  const col = (id, label, group) => ({ id, label, group, width: 100, cell: () => '' });
  test('exact values, quoted fields, the name beside the id, repeated names prefixed', () => {
    const cols = [col('state', 'Status', 'job'), col('id', 'Job', 'job'), col('tags', 'Tags', 'job'), col('param:note', 'note', 'param'), col('param:loss', 'loss', 'param'), col('metric:loss', 'loss', 'metric')];
    const j = {
      id: 'j1',
      name: 'brave-otter',
      state: 'completed',
      params: { note: 'a, "quoted"\nline' },
      submitted_params: { loss: 0.123456789 },
      metrics: [{ key: 'loss', last: 1e-7, last_step: 3, count: 4 }],
      tags: { k: 'v', flag: '' },
    };
    const text = mod.jobsCSV(cols, [j]);
    assert.equal(text, 'state,id,name,tags,note,param:loss,metric:loss\r\ncompleted,j1,brave-otter,k=v; flag,"a, ""quoted""\nline",0.123456789,1e-7\r\n');
  });
});
