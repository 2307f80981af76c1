"""Code run under a real MicroPython: the npm WebAssembly port, in Node.

Each `run` starts a fresh interpreter (the runner script run.mjs of an npm
project with the package PACKAGE installed), so runs never share state.
With firmware=True the interpreter's filesystem holds the firmware as it
would be on a board (the device library hg and the apps, from a checkout's
firmware/ or as installed with this package: homeguard/tech/bundle.py):

    <lib>/**/*.py    ->  /lib/hg/   (importable as `hg.*`; /lib is on sys.path)
    <apps>/**        ->  /apps/     (only when it exists)

`files` adds more files ({"/t/x.py": text or bytes}); a Python exception
raises MicroPythonError carrying the interpreter's traceback.  Set
`async_=True` to run the code with top-level `await` (MicroPython's
`asyncio.run` does not work in this build: await `asyncio.create_task(...)`).
The benchmarks and the tests' harness (tests/harness/micropython.py) run it.

The runner's npm project (package.json, package-lock.json, run.mjs) ships
with this package in homeguard/bench/mp/; `install` copies it into a
directory of its own and runs `npm ci` there (node resolves the package
from the runner's folder), by default a per-user cache folder:

    homeguard bench firmware --install [--mp-dir DIR]
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

PACKAGE = "@micropython/micropython-webassembly-pyscript"
DEFAULT_HEAP = 1024 * 1024
PROJECT = Path(str(resources.files("homeguard.bench") / "mp"))  # the one copy
PROJECT_FILES = ("package.json", "package-lock.json", "run.mjs")
LOCK = "package-lock.json"


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


class RunnerError(Exception):
    """The npm MicroPython cannot be found or installed; str() says why."""


def default_dir() -> Path:
    """Where the runner is installed unless told: $XDG_CACHE_HOME/homeguard/micropython."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "homeguard" / "micropython"


def _same(name: str, dest: Path) -> bool:
    try:
        return (dest / name).read_bytes() == (PROJECT / name).read_bytes()
    except OSError:
        return False


def missing(dest: Path) -> str | None:
    """Why `dest` cannot run code (no node, no runner, another version of
    it than this package's), or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (Debian: apt-get install nodejs npm)"
    if not (dest / "node_modules" / PACKAGE / "package.json").is_file():
        return f"the npm MicroPython is not installed in {dest}"
    if not all(_same(name, dest) for name in PROJECT_FILES):
        return f"{dest} holds another version of the npm MicroPython runner"
    return None


def install(dest: Path) -> bool:
    """This package's runner project in `dest`, and its node_modules as its
    lock says (`npm ci`, run only when they are missing or the lock
    changed); True when npm ran."""
    need_ci = not (dest / "node_modules" / PACKAGE).is_dir() or not _same(LOCK, dest)
    npm = shutil.which("npm") if need_ci else None
    if need_ci and npm is None:
        raise RunnerError("npm is not installed (Debian: apt-get install nodejs npm)")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name in PROJECT_FILES:
            if not _same(name, dest):
                shutil.copyfile(PROJECT / name, dest / name)
    except OSError as exc:
        raise RunnerError(f"cannot install the npm MicroPython in {dest}: {exc}") from None
    if npm is None:
        return False
    proc = subprocess.run([npm, "ci", "--prefix", str(dest), "--no-audit", "--no-fund",
                           "--loglevel=error"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunnerError(f"npm ci in {dest} failed: {proc.stderr.strip() or proc.stdout}")
    return True


def _tree(src: Path, dest: str, pattern: str) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {}
    if src.is_dir():
        for path in sorted(src.rglob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"{dest}/{path.relative_to(src).as_posix()}"] = path.read_bytes()
    return files


def firmware_files(lib: Path, apps: Path) -> dict[str, str | bytes]:
    """The firmware laid out as on a board: lib/**/*.py (hg) in /lib/hg, apps/** in /apps."""
    return _tree(lib, "/lib/hg", "*.py") | _tree(apps, "/apps", "*")


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
    `lib` (hg) and `apps` are the firmware that firmware=True puts on it."""

    def __init__(self, node: str, runner: Path, lib: Path, apps: Path) -> None:
        self.node = node
        self.runner = runner.resolve()  # run with its folder as the working directory
        self.lib = lib
        self.apps = apps

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
        all_files = firmware_files(self.lib, self.apps) if firmware else {}
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
