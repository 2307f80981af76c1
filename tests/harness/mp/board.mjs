// A virtual MicroPython board: the npm MicroPython's REPL on stdin/stdout.
//
//   node board.mjs <flash-dir> [heapsize]
//
// Bytes read on stdin go to the REPL one at a time (mp.replProcessChar);
// everything the REPL prints is written to stdout.  tests/harness/vboard.py
// connects stdin/stdout to the far end of a pty, so a tool on the pty's
// serial side talks to a real MicroPython REPL (friendly and raw, Ctrl-A..E).
//
// <flash-dir> is the board's flash: its files are loaded into the
// interpreter's filesystem at power-on, and every change the REPL makes is
// written back after each batch of input, so a "power cut" (SIGKILL) keeps
// exactly what the board had written, as a real flash would.
// A soft reset (Ctrl-D at the REPL) starts the REPL again.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const flash = path.resolve(process.argv[2] || "flash");
const heapsize = parseInt(process.argv[3] || String(512 * 1024), 10);
const SKIP = new Set(["/dev", "/proc", "/tmp", "/home"]);

function loadTree(FS, hostDir, boardDir) {
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const host = path.join(hostDir, entry.name);
    const board = (boardDir === "/" ? "" : boardDir) + "/" + entry.name;
    if (entry.isDirectory()) {
      if (!FS.analyzePath(board).exists) FS.mkdir(board);
      loadTree(FS, host, board);
    } else {
      FS.writeFile(board, fs.readFileSync(host));
    }
  }
}

// Every file and directory on the board (except emscripten's own), path -> Buffer | null.
function snapshot(FS, dir = "/", out = new Map()) {
  for (const name of FS.readdir(dir)) {
    if (name === "." || name === "..") continue;
    const p = (dir === "/" ? "" : dir) + "/" + name;
    if (dir === "/" && SKIP.has(p)) continue;
    const st = FS.stat(p);
    if (FS.isDir(st.mode)) {
      out.set(p, null);
      snapshot(FS, p, out);
    } else {
      out.set(p, Buffer.from(FS.readFile(p)));
    }
  }
  return out;
}

function same(a, b) {
  return a === b || (a !== null && b !== null && a !== undefined && b !== undefined && a.equals(b));
}

// Write the differences between two snapshots to the host directory.
function persist(prev, next) {
  for (const [p, data] of next) {
    if (prev.has(p) && same(prev.get(p), data)) continue;
    const host = path.join(flash, p);
    if (data === null) fs.mkdirSync(host, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(host), { recursive: true });
      fs.writeFileSync(host, data);
    }
  }
  const gone = [...prev.keys()].filter((p) => !next.has(p)).sort().reverse();
  for (const p of gone) fs.rmSync(path.join(flash, p), { recursive: true, force: true });
}

async function main() {
  fs.mkdirSync(flash, { recursive: true });
  let pending = [];
  const mp = await loadMicroPython({
    heapsize, linebuffer: false,
    stdout: (chunk) => { for (const b of chunk) pending.push(b); },
  });
  loadTree(mp.FS, flash, "/");
  mp.runPython("import sys\nif '/lib' not in sys.path: sys.path.append('/lib')\n");
  let known = snapshot(mp.FS);
  const flush = () => {
    if (pending.length) process.stdout.write(Buffer.from(pending));
    pending = [];
  };
  mp.replInit();
  flush();
  process.stdin.on("data", (data) => {
    for (const b of data) {
      if (mp.replProcessChar(b)) {
        flush();
        mp.replInit(); // soft reset: a fresh prompt, the flash kept
      }
    }
    flush();
    const now = snapshot(mp.FS);
    persist(known, now);
    known = now;
  });
  process.stdin.on("end", () => process.exit(0));
}

main().catch((e) => {
  process.stderr.write(`board failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(2);
});
