// A small Markdown renderer for project descriptions and notes, which anyone who can reach the
// server may write: safe by construction. The source is parsed into a tree of a fixed set of
// nodes (headings, paragraphs, lists, quotes, code, tables, rules, emphasis, links, line
// breaks); HTML is written only from that tree, with every piece of the source escaped exactly
// once. No step rewrites HTML produced by another, so no construct can reach into another's
// markup. Raw HTML in the source shows as text; links allow only http(s), mailto and relative
// URLs; images become links (no remote loads from descriptions).

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/**
 * The URL a link may point to, or null. Anything a browser's URL parser would strip or skip
 * (controls, spaces) is refused outright, so the check sees the URL the browser will follow; a
 * URL without one of the allowed schemes must not have a scheme at all (no colon before the
 * first /, ? or #).
 */
export function safeURL(u: string): string | null {
  if (u === '' || /[\u0000-\u0020\u007f-\u009f]/.test(u)) return null;
  if (/^(https?:|mailto:)/i.test(u)) return u;
  if (u.split(/[/?#\\]/, 1)[0].includes(':')) return null;
  return u;
}

// An inline node: text, or markup around nodes.
type Inline =
  | { t: 'text'; s: string }
  | { t: 'code'; s: string }
  | { t: 'br' }
  | { t: 'a'; href: string; kids: Inline[] }
  | { t: 'strong' | 'em' | 'del'; kids: Inline[] };

function renderInline(nodes: Inline[]): string {
  let out = '';
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        out += esc(n.s);
        break;
      case 'code':
        out += `<code>${esc(n.s)}</code>`;
        break;
      case 'br':
        out += '<br>';
        break;
      case 'a': {
        const external = /^(https?:|[/\\]{2})/i.test(n.href);
        out += `<a href="${esc(n.href)}"${external ? ' target="_blank" rel="noopener noreferrer"' : ''}>${renderInline(n.kids)}</a>`;
        break;
      }
      default:
        out += `<${n.t}>${renderInline(n.kids)}</${n.t}>`;
    }
  }
  return out;
}

const MAX_DEPTH = 16; // nesting of emphasis, links and quotes; deeper markup stays text
const isSpace = (c: string | undefined) => c === undefined || /\s/.test(c);
const isWord = (c: string | undefined) => c !== undefined && /\w/.test(c);
const PUNCT = /[!-/:-@[-`{-~]/; // ASCII punctuation, which a backslash makes literal

/**
 * Parses inline Markdown. Whether a construct opens here is decided in constant time with
 * tables built once per text (where the next closer, quote or bracket is), so that text that
 * only looks like markup many times over still takes linear time.
 */
class InlineParser {
  private tables = new Map<string, Int32Array>();
  private ticks = new Map<number, number[]>(); // backtick run length -> run starts, in order
  private brackets: Int32Array; // '[' -> its matching ']', or -1

  constructor(private src: string) {
    const n = src.length;
    for (let i = 0; i < n; ) {
      if (src[i] !== '`') {
        i++;
        continue;
      }
      let j = i;
      while (src[j] === '`') j++;
      const list = this.ticks.get(j - i) ?? [];
      list.push(i);
      this.ticks.set(j - i, list);
      i = j;
    }
    this.brackets = new Int32Array(n).fill(-1);
    const open: number[] = [];
    for (let i = 0; i < n; i++) {
      if (src[i] === '\\') i++;
      else if (src[i] === '[') open.push(i);
      else if (src[i] === ']' && open.length) this.brackets[open.pop()!] = i;
    }
  }

  /** The first position ≥ from where at(i) holds, or the text's length; the table is built once per name. */
  private next(name: string, from: number, at: (i: number) => boolean): number {
    let t = this.tables.get(name);
    if (!t) {
      const n = this.src.length;
      t = new Int32Array(n + 1).fill(n);
      for (let i = n - 1; i >= 0; i--) t[i] = at(i) ? i : t[i + 1];
      this.tables.set(name, t);
    }
    return from < t.length ? t[from] : this.src.length;
  }

  /** The first position ≥ from where delimiter d may close emphasis. */
  private closer(d: string, from: number): number {
    const s = this.src;
    return this.next('close' + d, from, (i) => {
      if (!s.startsWith(d, i) || isSpace(s[i - 1]) || s[i - 1] === '\\') return false;
      const after = s[i + d.length];
      if (d.length === 1 && (after === d || s[i - 1] === d)) return false; // part of ** or __
      return !((d[0] === '_' || d === '*') && isWord(after)); // not inside a word
    });
  }

  /** The end of the code span whose opening backtick run of length n starts at i, or -1. */
  private codeEnd(i: number, n: number): number {
    const runs = this.ticks.get(n) ?? [];
    let lo = 0;
    let hi = runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (runs[mid] <= i) lo = mid + 1;
      else hi = mid;
    }
    return lo < runs.length ? runs[lo] : -1;
  }

  parse(from: number, to: number, depth: number, inLink: boolean): Inline[] {
    const s = this.src;
    const out: Inline[] = [];
    let text = '';
    const flush = () => {
      if (text) out.push({ t: 'text', s: text });
      text = '';
    };
    let i = from;
    while (i < to) {
      const c = s[i];
      if (c === '\\' && i + 1 < to && PUNCT.test(s[i + 1])) {
        text += s[i + 1];
        i += 2;
        continue;
      }
      if (c === '`') {
        let n = 0;
        while (s[i + n] === '`') n++;
        const end = this.codeEnd(i, n);
        if (end >= 0 && end + n <= to) {
          flush();
          out.push({ t: 'code', s: s.slice(i + n, end) });
          i = end + n;
        } else {
          text += s.slice(i, i + n);
          i += n;
        }
        continue;
      }
      if (!inLink && depth < MAX_DEPTH && (c === '[' || (c === '!' && s[i + 1] === '['))) {
        const link = this.link(c === '!' ? i + 1 : i, to, depth);
        if (link) {
          flush();
          out.push(...link.nodes);
          i = link.end;
          continue;
        }
      }
      const scheme = (c === 'h' || c === 'H') && !inLink && (i === from || /[\s(]/.test(s[i - 1])) ? /^https?:\/\//i.exec(s.slice(i, i + 8)) : null;
      if (scheme) {
        // A bare URL runs to a space, < or ), less the punctuation of the sentence around it.
        let j = i;
        while (j < to && !/[\s<)]/.test(s[j])) j++;
        while (j > i && /[.,:;!?'"*_~]/.test(s[j - 1])) j--;
        const href = j > i + scheme[0].length ? safeURL(s.slice(i, j)) : null;
        if (href) {
          flush();
          out.push({ t: 'a', href, kids: [{ t: 'text', s: href }] });
        } else text += s.slice(i, j);
        i = j;
        continue;
      }
      if (depth < MAX_DEPTH && (c === '*' || c === '_' || c === '~')) {
        const em = this.emphasis(i, to, depth, inLink);
        if (em) {
          flush();
          out.push(em.node);
          i = em.end;
          continue;
        }
      }
      if (c === ' ') {
        let j = i;
        while (j < to && s[j] === ' ') j++;
        if (j - i >= 2 && s[j] === '\n' && j < to) {
          flush();
          out.push({ t: 'br' }); // two spaces at the end of a line
          i = j + 1;
        } else {
          text += s.slice(i, j);
          i = j;
        }
        continue;
      }
      text += c;
      i++;
    }
    flush();
    return out;
  }

  /** [text](url "title") at i; null if there is none. The URL has no spaces and no ")". */
  private link(i: number, to: number, depth: number): { nodes: Inline[]; end: number } | null {
    const s = this.src;
    const close = this.brackets[i];
    if (close < 0 || close + 1 >= to || s[close + 1] !== '(') return null;
    const start = close + 2;
    let j = Math.min(this.next('space', start, (k) => /\s/.test(s[k])), this.next(')', start, (k) => s[k] === ')'), to);
    const url = s.slice(start, j);
    while (j < to && (s[j] === ' ' || s[j] === '\t')) j++;
    if (j < to && (s[j] === '"' || s[j] === "'")) {
      j = this.next(s[j], j + 1, s[j] === '"' ? (k) => s[k] === '"' : (k) => s[k] === "'") + 1;
      while (j < to && (s[j] === ' ' || s[j] === '\t')) j++;
    }
    if (j >= to || s[j] !== ')') return null;
    const kids = this.parse(i + 1, close, depth + 1, true);
    const href = safeURL(url);
    if (href === null) return { nodes: kids, end: j + 1 }; // the text, without the link
    return { nodes: [{ t: 'a', href, kids: kids.length ? kids : [{ t: 'text', s: href }] }], end: j + 1 };
  }

  /** **strong**, __strong__, *em*, _em_ or ~~del~~ at i; null if there is none. */
  private emphasis(i: number, to: number, depth: number, inLink: boolean): { node: Inline; end: number } | null {
    const s = this.src;
    const c = s[i];
    if (c === '~' && s[i + 1] !== '~') return null;
    const d = c === '~' ? '~~' : s[i + 1] === c ? c + c : c;
    const before = s[i - 1];
    // Underscores and single asterisks inside words (snake_case, __dunder__, a*b) are text.
    if ((c === '_' || d === '*') && (isWord(before) || before === c)) return null;
    if (isSpace(s[i + d.length])) return null;
    const end = this.closer(d, i + d.length + 1);
    if (end + d.length > to) return null;
    const tag = d === '~~' ? 'del' : d.length === 2 ? 'strong' : 'em';
    return { node: { t: tag, kids: this.parse(i + d.length, end, depth + 1, inLink) }, end: end + d.length };
  }
}

function inline(src: string): string {
  return renderInline(new InlineParser(src).parse(0, src.length, 0, false));
}

const isTableSep = (l: string) => /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(l);
const cells = (l: string) =>
  l
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());

/** A heading's level and text ("## Title ##"), or null. */
function heading(line: string): [number, string] | null {
  const m = /^(#{1,6})[ \t]/.exec(line);
  if (!m) return null;
  let text = line.slice(m[0].length).trim();
  const closing = /(^|[ \t])#+$/.exec(text); // an optional closing run of #
  if (closing) text = text.slice(0, closing.index).trim();
  return [m[1].length, text];
}

export function renderMarkdown(src: string): string {
  return blocks(src.replace(/\r\n?/g, '\n').split('\n'), 0);
}

function blocks(lines: string[], depth: number): string {
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) {
      i++;
      continue;
    }
    const fence = line.match(/^\s*(```+|~~~+)/);
    if (fence) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++;
      out.push(`<pre><code>${esc(body.join('\n'))}</code></pre>`);
      continue;
    }
    const h = heading(line);
    if (h) {
      out.push(`<h${h[0]}>${inline(h[1])}</h${h[0]}>`);
      i++;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.push('<hr>');
      i++;
      continue;
    }
    if (/^\s*>/.test(line) && depth < MAX_DEPTH) {
      const body: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ''));
      out.push(`<blockquote>${blocks(body, depth + 1)}</blockquote>`);
      continue;
    }
    const list = line.match(/^\s*([-*+]|\d+[.)])\s+/);
    if (list) {
      const ordered = /\d/.test(list[1]);
      const items: string[] = [];
      while (i < lines.length) {
        const m = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/s); // s: lines may hold U+2028
        if (m && /\d/.test(m[1]) === ordered) {
          items.push(m[2]);
          i++;
        } else if (items.length && /^\s{2,}\S/.test(lines[i])) {
          items[items.length - 1] += '\n' + lines[i++].trim();
        } else break;
      }
      const lis = items.map((it) => {
        const task = it.match(/^\[([ xX])\]\s+(.*)$/s);
        if (task) return `<li class="task"><input type="checkbox" disabled${task[1] === ' ' ? '' : ' checked'}> ${inline(task[2])}</li>`;
        return `<li>${inline(it)}</li>`;
      });
      out.push(ordered ? `<ol>${lis.join('')}</ol>` : `<ul>${lis.join('')}</ul>`);
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && isTableSep(lines[i + 1])) {
      const head = cells(line);
      i += 2;
      const rows: string[][] = [];
      while (i < lines.length && lines[i].includes('|') && lines[i].trim()) rows.push(cells(lines[i++]));
      out.push(
        '<table><thead><tr>' +
          head.map((c) => `<th>${inline(c)}</th>`).join('') +
          '</tr></thead><tbody>' +
          rows.map((r) => '<tr>' + head.map((_, k) => `<td>${inline(r[k] ?? '')}</td>`).join('') + '</tr>').join('') +
          '</tbody></table>',
      );
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && lines[i].trim() && !/^(#{1,6}\s|\s*```|\s*~~~|\s*>|\s*([-*+]|\d+[.)])\s+)/.test(lines[i])) para.push(lines[i++]);
    if (!para.length) para.push(lines[i++]);
    out.push(`<p>${inline(para.join('\n'))}</p>`);
  }
  return out.join('\n');
}
