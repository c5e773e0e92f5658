"""Start-up benchmark: ``track-archive --help`` and each command's first output line.

Run from the repository root::

    .venv/bin/python benchmarks/startup_bench.py [--runs 15] [--baseline DIR] [--profile]

Like hyperfine: every case runs ``--runs`` times, the cases alternating round
by round so that machine noise falls on all of them alike, and the median is
printed beside the median CPU time (user + system of the child). The
references are ``python -c pass`` and ``python -c "import click"`` on the same
interpreter: the second is the least any click command line can start in. A
command's time is measured to the first line it writes (stdout or stderr),
which is when a user sees it start working; each command here works on an
empty archive, so the figure is the cost of starting, not of the work.

``--profile`` prints, for one run of each command, the modules whose import
took longest (``python -X importtime``, self time summed per top-level package
and per module of this project): where the remaining start-up time goes.

``--baseline DIR`` runs every command from another checkout too (``git archive
REV | tar -x -C DIR``), in the same alternating rounds, both started the same
way on this interpreter: a change's effect without the machine's load between
two runs.

Notes from measuring on 2 shared CPUs (the baseline is the tree without the
changes named here):

- Bytecode: with ``PYTHONDONTWRITEBYTECODE`` in the caller's environment an
  editable checkout has no ``.pyc`` files, and every run compiled this
  project's ~55 modules again, which an installed copy never does: the same
  tree without its ``.pyc`` took 0.620 s instead of 0.491 for archive and
  0.622 instead of 0.498 for the sessions table (11 alternating rounds, load
  about 2). The children run without it.
- Before its own work every command pays the interpreter (~55 ms here),
  click and the command registry (~50), the storage package (~30) and
  pydantic with pydantic_core and annotated_types (~75 ms of imports in
  ``--profile``), which every command needs for its config or its manifests.
- Config sections are validated only when the file or an option names them;
  a section left out is its declared defaults. Before, all seven config models
  were built at import (~25 ms) and so pydantic's plugin loader was imported,
  which imports ``importlib.metadata`` (~30 ms) at module level whatever
  ``PYDANTIC_DISABLE_PLUGINS`` says. sessions, segments, exports, manifest
  show, export and sync now build no validator at all (``--backend`` is opened
  as given); archive and serve build the sections their options name.
- The manifest's merge rules took the stage order from the webhook module, so
  every manifest reader imported the webhook models and the JSON-text reader
  (~15 ms): the stages live in ``pipeline.stages``.
- Result, now vs baseline in one run of 15 rounds (s to the first line, load
  2.7 to 2.0): manifest show 0.336 vs 0.413, sessions (table) 0.431 vs 0.469,
  segments csv 0.380 vs 0.397, exports 0.382 vs 0.415, export 0.378 vs 0.415,
  sync 0.364 vs 0.454, sync --dry-run 0.353 vs 0.458, serve 0.337 vs 0.348,
  archive 0.465 vs 0.490; sessions json 0.379 vs 0.363 there, and 0.364 vs
  0.420 (CPU 0.437 vs 0.524 s) in a 25-round A/B of its own. Single runs move
  by about 30 ms at this load. Archive gains least (a 25-round A/B: 0.481 vs
  0.471, no change): its options name the backend and state sections, whose
  validators and the plugin loader cost as much as all sections did.
- Most of the misses measured before these changes were the bytecode above:
  with ``.pyc`` files the baseline itself starts every command in under 0.5 s
  at this load; what the changes add is margin, largest where no config
  section is named.

Tried or weighed, and why not:

- ``defer_build`` alone on the config models: no gain while the whole config
  is validated at once, since the parent builds every section's schema inline;
  the gain is in not validating the sections nobody named.
- Skipping the plugin loader's import: pydantic offers no switch for it, and a
  stand-in for its private module in ``sys.modules`` would break silently on
  an upgrade. archive pays it (its ``--backend`` and ``--state`` are config
  options, validated), as serve does.
- Drawing the sessions table without rich (``rich.console`` costs ~40 ms): a
  hand-written table matches rich's bytes only for piped output of short
  plain cells (on a terminal rich fits the table to the width and styles the
  header), so it would speed the piped case measured here and not a user at a
  terminal.
- archive with an empty input, what remains after click and pydantic:
  asyncio (~25 ms), the engine it runs (journal, manifests, webhook parsing,
  ~40 ms), the backend and state validators with the plugin loader (~40 ms),
  then opening the journal and the backend (~20 ms).
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_HELP = 0.25
TARGET_FIRST_LINE = 0.5


def _child_env(tree: Path | None = None) -> dict[str, str]:
    """The environment of every child: bytecode written and read as in an installed copy.

    ``PYTHONDONTWRITEBYTECODE`` in the caller's environment would leave an editable
    checkout without ``.pyc`` files, so every run would compile this project's sources
    again (over 100 ms of CPU here) where an installed copy never does. ``tree`` puts
    another checkout's packages first on the path (``--baseline``).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def _first_line(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Seconds to the child's first output line, and the child's CPU seconds in all."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env if env is not None else _child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert child.stdout is not None and child.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    selector.register(child.stderr, selectors.EVENT_READ)
    elapsed: float | None = None
    open_streams = 2
    while open_streams:
        for key, _ in selector.select():
            chunk = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
            if not chunk:
                selector.unregister(key.fileobj)
                open_streams -= 1
            elif elapsed is None and b"\n" in chunk:
                elapsed = time.perf_counter() - started
    _, _, usage = os.wait4(child.pid, 0)
    if elapsed is None:  # a child that prints nothing: its whole run
        elapsed = time.perf_counter() - started
    return elapsed, usage.ru_utime + usage.ru_stime


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)")


def _import_profile(argv: list[str], cwd: Path, runs: int = 3, top: int = 8) -> str:
    """The ``top`` largest import self times (ms; the least of ``runs``), per package or own module."""
    least: dict[str, int] = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "pipeline.cli", *argv[1:]],
            cwd=cwd,
            env=_child_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        for match in _IMPORT_LINE.finditer(done.stderr):
            module, spent = match.group(2), int(match.group(1))
            least[module] = min(least.get(module, spent), spent)
    grouped: dict[str, int] = {}
    for module, spent in least.items():
        own = module.startswith(("pipeline", "storage_backends"))
        where = module if own else module.split(".")[0]
        grouped[where] = grouped.get(where, 0) + spent
    largest = sorted(grouped.items(), key=lambda item: -item[1])[:top]
    total = sum(grouped.values()) / 1000
    return f"{total:.0f} ms in imports; " + ", ".join(f"{m} {us / 1000:.0f}" for m, us in largest)


#: How each checkout is started with ``--baseline``: as the ``track-archive`` script does.
_LAUNCH = (
    "import sys; sys.argv[0] = 'track-archive'; from pipeline.cli import main; sys.exit(main())"
)
BASELINE_MARK = " [baseline]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--profile", action="store_true", help="Print where each command's imports spend instead."
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="Another checkout (e.g. `git archive main | tar -x -C DIR`): each command is also "
        "run from it, alternating in the same rounds, on this interpreter and its packages.",
    )
    args = parser.parse_args()

    exe = Path(sys.executable).with_name("track-archive")
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        work = Path(tmp)
        (work / "archive").mkdir()
        (work / "copy").mkdir()
        (work / "webhooks.jsonl").write_text("", encoding="utf-8")
        state = ["--state", str(work / "journal.sqlite3")]
        archive = ["--backend", str(work / "archive")]
        cases: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import click'": [sys.executable, "-c", "import click"],
            "track-archive --help": [str(exe), "--help"],
            "archive --help": [str(exe), "archive", "--help"],
            "archive (empty input) --json": [
                str(exe),
                "archive",
                str(work / "webhooks.jsonl"),
                *archive,
                *state,
                "--json",
            ],
            "manifest show (absent)": [str(exe), "manifest", "show", "s1", *archive],
            "sessions (table)": [str(exe), "sessions", *archive],
            "sessions --format json": [str(exe), "sessions", *archive, "--format", "json"],
            "segments --format csv": [str(exe), "segments", *archive, "--format", "csv"],
            "exports --format json": [str(exe), "exports", *archive, "--format", "json"],
            "export (missing session)": [str(exe), "export", "s1", *archive],
            "sync (empty to empty)": [str(exe), "sync", str(work / "archive"), str(work / "copy")],
            "sync --dry-run": [
                str(exe),
                "sync",
                str(work / "archive"),
                str(work / "copy"),
                "--dry-run",
            ],
            "serve (refuses: no key)": [str(exe), "serve", *archive, *state],
        }
        if args.profile:
            for name, argv in cases.items():
                if argv[0] == str(exe):
                    print(f"{name}: {_import_profile(argv, work)}")
            return
        envs = {name: _child_env() for name in cases}
        if args.baseline is not None:
            # Both checkouts start the same way (the script's two lines, on a path), so that
            # only their code differs.
            trees = {
                "": Path(__file__).resolve().parents[1],
                BASELINE_MARK: args.baseline.resolve(),
            }
            for name, argv in list(cases.items()):
                if argv[0] == str(exe):
                    for mark, tree in trees.items():
                        cases[name + mark] = [sys.executable, "-c", _LAUNCH, *argv[1:]]
                        envs[name + mark] = _child_env(tree)
        walls: dict[str, list[float]] = {name: [] for name in cases}
        cpus: dict[str, list[float]] = {name: [] for name in cases}
        for name, argv in cases.items():  # warm the page cache and .pyc files once
            _first_line(argv, work, envs[name])
        load_before = os.getloadavg()[0]
        for _ in range(args.runs):
            for name, argv in cases.items():
                wall, cpu = _first_line(argv, work, envs[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
        load_after = os.getloadavg()[0]

    base = statistics.median(walls["python -c pass"])
    click_base = statistics.median(walls["python -c 'import click'"])
    print(f"{'case':45} {'median s':>9} {'cpu s':>7} {'x python':>9} {'x click':>8}  target")
    order = sorted(cases, key=lambda n: list(cases).index(n.removesuffix(BASELINE_MARK)))
    for name in order:
        wall = statistics.median(walls[name])
        cpu = statistics.median(cpus[name])
        if name.startswith("python"):
            target = ""
        elif name.startswith("track-archive --help"):
            target = f"< {TARGET_HELP} s: {'met' if wall < TARGET_HELP else 'MISSED'}"
        else:
            target = f"< {TARGET_FIRST_LINE} s: {'met' if wall < TARGET_FIRST_LINE else 'MISSED'}"
        ratios = f"{wall / base:9.1f} {wall / click_base:8.1f}"
        print(f"{name:45} {wall:9.3f} {cpu:7.3f} {ratios}  {target}")
    print(
        f"(median of {args.runs} alternating runs; time to the first output line; "
        f"1-minute load average {load_before:.1f} before the rounds, {load_after:.1f} after, "
        f"on {os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
