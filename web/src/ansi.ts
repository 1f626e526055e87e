// A terminal-ish model of a job's output: lines split on \n, a carriage return (not part of
// \r\n) starts its line over so progress bars collapse to their last state, and ANSI SGR
// colour codes are kept, with the style each line starts in, so that any line can be rendered
// on its own (the log view renders only the lines on screen).

export interface Style {
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
  inverse?: boolean;
}

export interface Segment {
  text: string;
  style: Style;
}

const BASIC = [
  '#3b4048', '#ef6b73', '#8ccf7e', '#e5c76b', '#67b0e8', '#c47fd5', '#6cd0ca', '#c4c4c4',
  '#7f848e', '#ff8a92', '#a8e39a', '#f5d88a', '#8cc8f5', '#dba0e8', '#92e3dd', '#ffffff',
];

function color256(n: number): string | undefined {
  if (n < 0 || n > 255) return undefined;
  if (n < 16) return BASIC[n];
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  n -= 16;
  const c = (x: number) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${c(Math.floor(n / 36))},${c(Math.floor(n / 6) % 6)},${c(n % 6)})`;
}

/** Applies the parameters of one SGR sequence (ESC [ ... m) to a style. */
export function applySGR(s: Style, params: string): Style {
  const codes = params === '' ? [0] : params.split(';').map((x) => (x === '' ? 0 : Number(x)));
  let st: Style = { ...s };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) st = {};
    else if (c === 1) st.bold = true;
    else if (c === 2) st.dim = true;
    else if (c === 3) st.italic = true;
    else if (c === 4) st.underline = true;
    else if (c === 7) st.inverse = true;
    else if (c === 22) st.bold = st.dim = false;
    else if (c === 23) st.italic = false;
    else if (c === 24) st.underline = false;
    else if (c === 27) st.inverse = false;
    else if (c >= 30 && c <= 37) st.fg = BASIC[c - 30];
    else if (c === 39) st.fg = undefined;
    else if (c >= 40 && c <= 47) st.bg = BASIC[c - 40];
    else if (c === 49) st.bg = undefined;
    else if (c >= 90 && c <= 97) st.fg = BASIC[c - 90 + 8];
    else if (c >= 100 && c <= 107) st.bg = BASIC[c - 100 + 8];
    else if (c === 38 || c === 48) {
      let col: string | undefined;
      if (codes[i + 1] === 5) {
        col = color256(codes[i + 2]);
        i += 2;
      } else if (codes[i + 1] === 2) {
        const [r, g, b] = [codes[i + 2], codes[i + 3], codes[i + 4]].map((x) => Math.max(0, Math.min(255, x || 0)));
        col = `rgb(${r},${g},${b})`;
        i += 4;
      }
      if (c === 38) st.fg = col;
      else st.bg = col;
    }
  }
  return st;
}

// CSI sequences (colours, erase, cursor moves) and OSC sequences (titles, links).
const ESCAPES = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

/** Splits one stored line into styled segments, starting from the line's initial style. */
export function segments(line: string, start: Style): Segment[] {
  const out: Segment[] = [];
  let style = start;
  let last = 0;
  ESCAPES.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = ESCAPES.exec(line))) {
    if (m.index > last) out.push({ text: line.slice(last, m.index), style });
    if (m[2] === 'm') style = applySGR(style, m[1]);
    last = ESCAPES.lastIndex;
  }
  if (last < line.length) out.push({ text: line.slice(last), style });
  return out;
}

function endStyle(line: string, start: Style): Style {
  let style = start;
  ESCAPES.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = ESCAPES.exec(line))) if (m[2] === 'm') style = applySGR(style, m[1]);
  return style;
}

/** Strips escape sequences: the plain text of a line. */
export const plain = (line: string) => line.replace(ESCAPES, '');

export class LogModel {
  lines: string[] = [''];
  starts: Style[] = [{}];
  dropped = 0; // lines dropped from the front to bound memory
  private pendingCR = false;
  private carry = '';

  constructor(private maxLines = 200_000) {}

  /** Appends a chunk of output. Returns true when it changed something. */
  push(chunk: string): boolean {
    let text = this.carry + chunk;
    this.carry = '';
    // Keep an escape sequence cut at the end of the chunk for the next one.
    const esc = text.lastIndexOf('\x1b');
    if (esc >= 0 && esc > text.length - 64 && !/^\x1b(\[[0-9;?]*[@-~]|\][^\x07]*(\x07|\x1b\\)|[@-Z\\-_])/.test(text.slice(esc))) {
      this.carry = text.slice(esc);
      text = text.slice(0, esc);
    }
    if (!text) return false;
    let i = 0;
    const n = text.length;
    let last = this.lines.length - 1;
    let cur = this.lines[last];
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text[0] === '\n') {
        // \r\n split across chunks: an ordinary newline, handled below.
      } else {
        this.starts[last] = endStyle(cur, this.starts[last]);
        cur = '';
      }
    }
    while (i < n) {
      const nl = text.indexOf('\n', i);
      const cr = text.indexOf('\r', i);
      if (cr !== -1 && (nl === -1 || cr < nl)) {
        cur += text.slice(i, cr);
        if (cr === n - 1) {
          this.pendingCR = true;
          i = n;
        } else if (text[cr + 1] === '\n') {
          i = cr + 1; // \r\n: the newline ends the line
        } else {
          // Start the line over, keeping the colour state reached so far.
          this.starts[last] = endStyle(cur, this.starts[last]);
          cur = '';
          i = cr + 1;
        }
        continue;
      }
      if (nl === -1) {
        cur += text.slice(i);
        break;
      }
      cur += text.slice(i, nl);
      this.lines[last] = cur;
      const next = endStyle(cur, this.starts[last]);
      this.lines.push('');
      this.starts.push(next);
      last++;
      cur = '';
      i = nl + 1;
    }
    this.lines[last] = cur;
    if (this.lines.length > this.maxLines) {
      const cut = this.lines.length - this.maxLines;
      this.lines.splice(0, cut);
      this.starts.splice(0, cut);
      this.dropped += cut;
    }
    return true;
  }

  /**
   * Puts earlier output before the lines held (a log loaded from its tail, then backwards).
   * text should be whole lines, ending where the held output starts. Returns the number of
   * lines added. The colour state at the seam starts over, as at the start of the tail.
   */
  prepend(text: string): number {
    const m = new LogModel(Infinity);
    m.push(text);
    if (m.pendingCR) m.push('\n');
    let n = m.lines.length;
    if (m.lines[n - 1] === '') n--; // text ended with a newline
    if (!n) return 0;
    this.lines = m.lines.slice(0, n).concat(this.lines);
    this.starts = m.starts.slice(0, n).concat(this.starts);
    return n;
  }

  /** Number of lines to show: the last one only when it has text. */
  get count(): number {
    const n = this.lines.length;
    return this.lines[n - 1] === '' ? n - 1 : n;
  }
}
