"""Code run under a real MicroPython: the npm WebAssembly port, in Node.

Each `run` starts a fresh interpreter (the runner script run.mjs of an npm
project with the package PACKAGE installed), so runs never share state.
With firmware=True the interpreter's filesystem holds the firmware as it
would be on a board:

    <firmware>/hg/**/*.py  ->  /lib/hg/   (importable as `hg.*`; /lib is on sys.path)
    <firmware>/apps/**     ->  /apps/     (only when it exists)

`files` adds more files ({"/t/x.py": text or bytes}); a Python exception
raises MicroPythonError carrying the interpreter's traceback.  Set
`async_=True` to run the code with top-level `await` (MicroPython's
`asyncio.run` does not work in this build: await `asyncio.create_task(...)`).
The benchmarks and the tests' harness (tests/harness/micropython.py) run it.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

PACKAGE = "@micropython/micropython-webassembly-pyscript"
DEFAULT_HEAP = 1024 * 1024


class MicroPythonError(Exception):
    """The code raised under MicroPython; .traceback is the interpreter's text."""

    def __init__(self, traceback: str, stdout: str = "", returncode: int = 1) -> None:
        super().__init__(traceback)
        self.traceback = traceback
        self.stdout = stdout
        self.returncode = returncode

    def __str__(self) -> str:
        out = f"\n--- stdout before the error ---\n{self.stdout}" if self.stdout else ""
        return f"MicroPython raised:\n{self.traceback}{out}"


def _tree(src: Path, dest: str, pattern: str) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {}
    if src.is_dir():
        for path in sorted(src.rglob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"{dest}/{path.relative_to(src).as_posix()}"] = path.read_bytes()
    return files


def firmware_files(root: Path) -> dict[str, str | bytes]:
    """The firmware laid out as on a board: hg/**/*.py in /lib/hg, apps/** in /apps."""
    return _tree(root / "hg", "/lib/hg", "*.py") | _tree(root / "apps", "/apps", "*")


def _encode_files(files: dict[str, str | bytes]) -> dict[str, object]:
    encoded: dict[str, object] = {}
    for path, content in files.items():
        if not path.startswith("/"):
            raise ValueError(f"MicroPython file paths must be absolute: {path!r}")
        if isinstance(content, bytes):
            encoded[path] = {"base64": base64.b64encode(content).decode()}
        else:
            encoded[path] = content
    return encoded


class MicroPython:
    """Runs code in a fresh npm MicroPython under Node, one process per run;
    `firmware` is the tree (hg/, apps/) that firmware=True puts on it."""

    def __init__(self, node: str, runner: Path, firmware: Path) -> None:
        self.node = node
        self.runner = runner
        self.firmware = firmware

    def run(
        self,
        code: str,
        files: dict[str, str | bytes] | None = None,
        firmware: bool = True,
        timeout: float = 60,
        async_: bool = False,
        heapsize: int = DEFAULT_HEAP,
        path: list[str] | None = None,
    ) -> str:
        """stdout of `code` (exact text); raises MicroPythonError on an exception."""
        all_files = firmware_files(self.firmware) if firmware else {}
        all_files.update(files or {})
        job = {"files": _encode_files(all_files), "path": ["/lib", *(path or [])],
               "code": code, "async": async_, "heapsize": heapsize}
        proc = subprocess.run(
            [self.node, str(self.runner)], input=json.dumps(job).encode(),
            capture_output=True, timeout=timeout, cwd=self.runner.parent,
        )
        stdout = proc.stdout.decode("utf-8", errors="replace")
        stderr = proc.stderr.decode("utf-8", errors="replace")
        if proc.returncode == 1:
            raise MicroPythonError(stderr, stdout)
        if proc.returncode != 0:
            raise RuntimeError(f"MicroPython runner failed (exit {proc.returncode}):\n{stderr}")
        return stdout

    def run_file(self, script: Path | str, files: dict[str, str | bytes] | None = None,
                 firmware: bool = True, timeout: float = 60) -> str:
        """stdout of a host file's source run as the main program (e.g. a
        firmware app's main.py), as run() runs code."""
        return self.run(Path(script).read_text(encoding="utf-8"), files, firmware, timeout)
