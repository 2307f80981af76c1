// Runs one job under the npm MicroPython (WebAssembly port) and exits.
//
// stdin: a JSON job
//   {"files": {"/lib/hg/protocol.py": "<text>", "/t/blob.bin": {"base64": "..."}},
//    "path": ["/lib"], "code": "print(1)", "async": false, "heapsize": 1048576}
// stdout: exactly the bytes the Python code printed.
// On a Python exception: its traceback on stderr, exit status 1.
// On a bad job or a failure of this runner: a message on stderr, exit status 2.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const EXIT_PYTHON_ERROR = 1;
const EXIT_BAD_JOB = 2;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function parseJob(text) {
  const job = JSON.parse(text);
  if (typeof job.code !== "string") throw new Error("job.code must be a string");
  job.files = job.files || {};
  job.path = job.path || [];
  job.heapsize = job.heapsize || 1024 * 1024;
  return job;
}

// A byte sink: MicroPython hands over one byte at a time when linebuffer is
// false, so nothing is lost or altered (no newline handling, no partial last line).
function byteSink() {
  const bytes = [];
  return { push: (chunk) => { for (const b of chunk) bytes.push(b); }, bytes };
}

function mkdirs(FS, dir) {
  let cur = "";
  for (const part of dir.split("/").filter(Boolean)) {
    cur += "/" + part;
    try {
      FS.mkdir(cur);
    } catch (e) {
      if (!FS.analyzePath(cur).exists) throw e;
    }
  }
}

function writeFiles(FS, files) {
  for (const [path, content] of Object.entries(files)) {
    mkdirs(FS, path.slice(0, path.lastIndexOf("/")));
    const data = typeof content === "string" ? content : Buffer.from(content.base64, "base64");
    FS.writeFile(path, data);
  }
}

async function main() {
  let job;
  try {
    job = parseJob(await readStdin());
  } catch (e) {
    process.stderr.write(`mp runner: bad job on stdin: ${e.message}\n`);
    return EXIT_BAD_JOB;
  }
  const out = byteSink();
  const err = byteSink();
  const mp = await loadMicroPython({
    heapsize: job.heapsize, linebuffer: false, stdout: out.push, stderr: err.push,
  });
  writeFiles(mp.FS, job.files);
  const prelude = "import sys\n" + job.path
    .map((p) => `if ${JSON.stringify(p)} not in sys.path: sys.path.append(${JSON.stringify(p)})\n`)
    .join("");
  let status = 0;
  try {
    mp.runPython(prelude);
    if (job.async) await mp.runPythonAsync(job.code);
    else mp.runPython(job.code);
  } catch (e) {
    if (e.name !== "PythonError") throw e;
    err.push(Buffer.from(e.message.endsWith("\n") ? e.message : e.message + "\n"));
    status = EXIT_PYTHON_ERROR;
  }
  process.stdout.write(Buffer.from(out.bytes));
  process.stderr.write(Buffer.from(err.bytes));
  return status;
}

main().then(
  (status) => { process.exitCode = status; },
  (e) => {
    process.stderr.write(`mp runner failed: ${e && e.stack ? e.stack : e}\n`);
    process.exitCode = EXIT_BAD_JOB;
  },
);
