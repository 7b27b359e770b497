// A run's log, live: StreamLogs with follow, resumed from the byte it had
// reached when a stream drops (no gap, no duplicate). Only the lines on
// screen are in the page (a window over every line), so a 100 MB log does
// not freeze the tab; colours are rendered from ANSI SGR codes; the view
// follows the tail unless the reader scrolls up.
import { useEffect, useRef, useState } from "preact/hooks";
import { describe, executions, keepStreaming } from "./api";
import { PLAIN, css, endStyle, runs, type Style } from "./ansi";
import { ErrorLine } from "./ui";

const LINE_HEIGHT = 18;
// Browsers cap an element's height (Chrome near 33.5 million pixels); past
// this the scroll position maps onto lines proportionally.
const MAX_SPACER = 8_000_000;

class LogBuffer {
  lines: string[] = [""];
  // Style in force at the start of each line (shared objects: one per change).
  starts: Style[] = [PLAIN];
  bytes = 0n;
  private decoder = new TextDecoder("utf-8");
  private tail: Style = PLAIN;

  append(data: Uint8Array) {
    this.bytes += BigInt(data.length);
    const text = this.decoder.decode(data, { stream: true }).replace(/\r(?!\n)/g, "\n").replace(/\r/g, "");
    const pieces = text.split("\n");
    const lastIndex = this.lines.length - 1;
    this.lines[lastIndex] += pieces[0];
    for (let i = 1; i < pieces.length; i++) {
      // The line before is complete now: its end style starts this one.
      const previous = this.lines.length - 1;
      this.tail = endStyle(this.lines[previous], this.starts[previous]);
      this.lines.push(pieces[i]);
      this.starts.push(this.tail);
    }
  }

  // Lines, not counting an empty last one (a log that ends in a newline).
  get count(): number {
    const n = this.lines.length;
    return n > 1 && this.lines[n - 1] === "" ? n - 1 : n;
  }
}

export function LogView({ executionId }: { executionId: string }) {
  const box = useRef<HTMLDivElement>(null);
  const spacer = useRef<HTMLDivElement>(null);
  const win = useRef<HTMLDivElement>(null);
  const buffer = useRef(new LogBuffer());
  const follow = useRef(true);
  const [error, setError] = useState<string | null>(null);
  const [info, setInfo] = useState({ bytes: 0n, lines: 0, done: false });
  const [downloading, setDownloading] = useState(false);

  function render() {
    const el = box.current;
    const b = buffer.current;
    if (!el || !spacer.current || !win.current) return;
    const count = b.count;
    const total = count * LINE_HEIGHT;
    const height = Math.min(total, MAX_SPACER);
    spacer.current.style.height = `${height}px`;
    if (follow.current) el.scrollTop = el.scrollHeight;
    const visible = Math.ceil(el.clientHeight / LINE_HEIGHT) + 1;
    let first: number;
    let top: number;
    if (total <= MAX_SPACER) {
      first = Math.floor(el.scrollTop / LINE_HEIGHT);
      top = first * LINE_HEIGHT;
    } else {
      const range = Math.max(1, height - el.clientHeight);
      first = Math.floor((el.scrollTop / range) * Math.max(0, count - visible + 1));
      top = el.scrollTop;
    }
    first = Math.max(0, Math.min(first, Math.max(0, count - visible + 1)));
    const fragment = document.createDocumentFragment();
    for (let i = first; i < Math.min(count, first + visible); i++) {
      const div = document.createElement("div");
      div.className = "log-line";
      for (const [text, style] of runs(b.lines[i], b.starts[i]).parts) {
        const span = document.createElement("span");
        span.textContent = text;
        const s = css(style);
        if (s) span.style.cssText = s;
        div.appendChild(span);
      }
      fragment.appendChild(div);
    }
    win.current.style.transform = `translateY(${top}px)`;
    win.current.replaceChildren(fragment);
  }

  useEffect(() => {
    buffer.current = new LogBuffer();
    follow.current = true;
    const stop = new AbortController();
    let frame = 0;
    const schedule = () => {
      if (!frame) {
        frame = requestAnimationFrame(() => {
          frame = 0;
          render();
          setInfo((old) => ({ ...old, bytes: buffer.current.bytes, lines: buffer.current.count }));
        });
      }
    };
    void keepStreaming(
      stop.signal,
      async () => {
        const b = buffer.current;
        let slice = performance.now();
        for await (const chunk of executions.streamLogs(
          { executionId, offset: b.bytes, follow: true },
          { signal: stop.signal },
        )) {
          // Bytes already shown (a resumed stream that overlaps) are skipped.
          const skip = Number(b.bytes - chunk.offset);
          if (skip < 0) throw new Error(`log gap at byte ${b.bytes}`);
          if (skip < chunk.data.length) b.append(skip > 0 ? chunk.data.subarray(skip) : chunk.data);
          schedule();
          // Replies that arrived together are read without a pause otherwise
          // (microtasks): let the page paint and answer every ~30 ms. Measured
          // on a 100 MB log (1.47 M coloured lines, debug server): the longest
          // freeze fell from 3 s to 0.17 s; all of it read in 6.6 s, 30 lines in
          // the DOM, a jump to its middle painted in 7 ms, ~350 MB of JS heap.
          if (performance.now() - slice > 30) {
            await new Promise((resolve) => setTimeout(resolve, 0));
            slice = performance.now();
          }
        }
        setInfo((old) => ({ ...old, done: true }));
        return "done";
      },
      setError,
    );
    const onResize = () => schedule();
    window.addEventListener("resize", onResize);
    schedule();
    return () => {
      stop.abort();
      cancelAnimationFrame(frame);
      window.removeEventListener("resize", onResize);
    };
  }, [executionId]);

  function onScroll() {
    const el = box.current!;
    follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 2 * LINE_HEIGHT;
    render();
  }

  // The raw bytes, fetched through the API (StreamLogs without follow).
  async function download() {
    setDownloading(true);
    try {
      const parts: Uint8Array[] = [];
      for await (const chunk of executions.streamLogs({ executionId, offset: 0n, follow: false })) {
        parts.push(chunk.data);
      }
      const url = URL.createObjectURL(new Blob(parts as BlobPart[], { type: "application/octet-stream" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `${executionId}.log`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      setError(describe(err));
    } finally {
      setDownloading(false);
    }
  }

  return (
    <div class="log">
      <div class="log-bar">
        <span class="log-info">
          {info.lines} lines, {info.bytes.toString()} bytes{info.done ? " (complete)" : " (live)"}
        </span>
        <button
          onClick={() => {
            follow.current = true;
            render();
          }}
        >
          Follow tail
        </button>
        <button onClick={download} disabled={downloading}>
          Download raw log
        </button>
      </div>
      <ErrorLine message={error} />
      <div class="log-box" ref={box} onScroll={onScroll} data-testid="log">
        <div class="log-spacer" ref={spacer} />
        <div class="log-window" ref={win} />
      </div>
    </div>
  );
}
