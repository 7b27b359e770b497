// ANSI SGR colours (what CLIs print) as styled runs of text. Other escape
// sequences (cursor moves, titles) are dropped: a log is not a terminal.
export interface Style {
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
}

export const PLAIN: Style = {};

const BASIC = ["#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5"];
const BRIGHT = ["#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"];

function palette(n: number): string {
  if (n < 8) return BASIC[n];
  if (n < 16) return BRIGHT[n - 8];
  if (n < 232) {
    const i = n - 16;
    const level = (v: number) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
  }
  const grey = 8 + (n - 232) * 10;
  return `rgb(${grey},${grey},${grey})`;
}

// The style after the SGR parameters `params` (`1;31`, `38;5;208`...).
function apply(style: Style, params: string): Style {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
  const s: Style = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) {
      for (const key of Object.keys(s)) delete s[key as keyof Style];
    } else if (c === 1) s.bold = true;
    else if (c === 2) s.dim = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 22) s.bold = s.dim = false;
    else if (c === 23) s.italic = false;
    else if (c === 24) s.underline = false;
    else if (c >= 30 && c <= 37) s.fg = BASIC[c - 30];
    else if (c >= 90 && c <= 97) s.fg = BRIGHT[c - 90];
    else if (c === 39) delete s.fg;
    else if (c >= 40 && c <= 47) s.bg = BASIC[c - 40];
    else if (c >= 100 && c <= 107) s.bg = BRIGHT[c - 100];
    else if (c === 49) delete s.bg;
    else if (c === 38 || c === 48) {
      let color: string | undefined;
      if (codes[i + 1] === 5) {
        color = palette(codes[i + 2] ?? 0);
        i += 2;
      } else if (codes[i + 1] === 2) {
        color = `rgb(${codes[i + 2] ?? 0},${codes[i + 3] ?? 0},${codes[i + 4] ?? 0})`;
        i += 4;
      }
      if (color) s[c === 38 ? "fg" : "bg"] = color;
    }
  }
  return s;
}

// CSI sequences (ESC [ ... final byte) and OSC ones (ESC ] ... BEL or ST).
const ESCAPE = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;

// Splits one line into runs of text with their style, starting from `start`;
// returns the runs and the style in force at the line's end.
export function runs(line: string, start: Style): { parts: [string, Style][]; end: Style } {
  const parts: [string, Style][] = [];
  let style = start;
  let last = 0;
  if (line.indexOf("\x1b") < 0) return { parts: line ? [[line, style]] : [], end: style };
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(line); m; m = ESCAPE.exec(line)) {
    if (m.index > last) parts.push([line.slice(last, m.index), style]);
    if (m[2] === "m") style = apply(style, m[1]);
    last = ESCAPE.lastIndex;
  }
  if (last < line.length) parts.push([line.slice(last), style]);
  return { parts, end: style };
}

// The style at the end of `line` (computing no runs: used while a large log
// is read, so only the lines on screen are ever split).
export function endStyle(line: string, start: Style): Style {
  if (line.indexOf("\x1b") < 0) return start;
  let style = start;
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(line); m; m = ESCAPE.exec(line)) {
    if (m[2] === "m") style = apply(style, m[1]);
  }
  return style;
}

export function css(style: Style): string {
  let out = "";
  if (style.fg) out += `color:${style.fg};`;
  if (style.bg) out += `background:${style.bg};`;
  if (style.bold) out += "font-weight:bold;";
  if (style.dim) out += "opacity:.7;";
  if (style.italic) out += "font-style:italic;";
  if (style.underline) out += "text-decoration:underline;";
  return out;
}
