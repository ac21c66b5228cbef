"""Reading the shell commands out of the code blocks of README.md and docs/*.md, composing them as
their entry point would, and running them as typed in a sandbox: a fresh checkout's layout with its
own data/ and logs/. tests/test_readme_commands.py holds the table saying how each command is checked."""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from runconfig import CONF_DIR, REPO

README = REPO / "README.md"
# Every page whose commands are checked: the README and the docs it points to.
PAGES = (README, *sorted((REPO / "docs").glob("*.md")))
SHELL_BLOCKS = ("bash", "sh", "shell", "console")
# The hydra entry points and the config each composes.
ENTRY_CONFIGS = {"train.py": "train", "eval.py": "eval", "predict.py": "predict", "export.py": "export"}


@dataclass(frozen=True)
class Command:
    """One command of a page's code block: its text without the comment, and where it is."""

    text: str
    line: int
    page: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def argv(self) -> list[str]:
        """The words the shell passes (quotes removed); `python` is this interpreter, `jupyter` its
        environment's."""
        words = shlex.split(self.text)
        programs = {"python": sys.executable, **{name: str(Path(sys.executable).with_name(name))
                                                 for name in ("jupyter", "torchrun")}}
        return [programs.get(w, w) if i == 0 else w for i, w in enumerate(words)]


def readme_commands(pages: tuple[Path, ...] = PAGES) -> list[Command]:
    """Every command of the pages' fenced shell blocks, as written (quotes kept, comments dropped,
    whitespace runs collapsed, `\\`-continued lines joined)."""
    return [command for page in pages for command in page_commands(page)]


def page_commands(path: Path) -> list[Command]:
    commands, block, pending = [], None, ""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```+\s*(\S*)", line)
        if fence:
            block = None if block is not None else fence.group(1).lower()
            continue
        if block not in SHELL_BLOCKS:
            continue
        text = pending + strip_comment(line)
        if text.rstrip().endswith("\\"):
            pending = text.rstrip()[:-1] + " "
            continue
        pending = ""
        if text.strip():
            commands.append(Command(" ".join(text.split()), number, path.relative_to(REPO).as_posix()))
    return commands


def strip_comment(line: str) -> str:
    """The line up to its shell comment (a `#` starting a word outside quotes)."""
    for match in re.finditer(r"(?:^|\s)#", line):
        try:
            shlex.split(line[: match.start()])
        except ValueError:  # inside quotes
            continue
        return line[: match.start()]
    return line


def script_index(argv: list[str]) -> int | None:
    """Where the Hydra entry point is in ``argv`` (1 after `python`, later after torchrun's options)."""
    return next((i for i, word in enumerate(argv[1:], 1) if Path(word).name in ENTRY_CONFIGS), None)


def entry_overrides(argv: list[str]) -> tuple[str, list[str], bool]:
    """(config name, overrides, multirun) of `python <entry>.py [-m] <overrides>` (or `torchrun ... <entry>.py ...`)."""
    index = script_index(argv)
    if index is None:
        raise ValueError(f"{shlex.join(argv)} runs no Hydra entry point ({', '.join(ENTRY_CONFIGS)})")
    script, args = Path(argv[index]).name, argv[index + 1:]
    multirun = any(a in ("-m", "--multirun") for a in args)
    return ENTRY_CONFIGS[script], [a for a in args if a not in ("-m", "--multirun")], multirun


def compose_jobs(argv: list[str]) -> list[DictConfig]:
    """The config of every job the command would run, as `--cfg job` prints it, with the hydra node
    (launcher, sweeper, mode) kept: a multirun's comma lists are expanded as Hydra's basic sweeper does."""
    config_name, overrides, multirun = entry_overrides(argv)
    parsed = OverridesParser.create().parse_overrides(overrides)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch] if multirun else [overrides]
    configs = []
    for job in jobs:
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            configs.append(compose(config_name, overrides=list(job), return_hydra_config=True))
    GlobalHydra.instance().clear()
    return configs


def select(cfg: DictConfig, key: str) -> Any:
    """A composed value by dotted key (interpolations resolved); `<missing>` when absent."""
    value = OmegaConf.select(cfg, key, default="<missing>", throw_on_resolution_failure=False)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


@dataclass
class Result:
    """A finished command: its output and the files it created under the sandbox."""

    command: str
    returncode: int
    output: str
    new_files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def created(self, pattern: str) -> list[Path]:
        """New files whose path relative to the sandbox matches the glob-style ``pattern``."""
        regex = re.compile(_glob_regex(pattern))
        return [p for p in self.new_files if regex.fullmatch(p.as_posix())]


def _glob_regex(pattern: str) -> str:
    out = ""
    for part in re.split(r"(\*\*/|\*|\?)", pattern):
        out += {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return out


class Sandbox:
    """A fresh checkout's layout in a temporary folder: the repository's entry points, conf/ and
    notebooks linked in, and its own empty data/ and logs/ (PROJECT_ROOT points here). Commands run
    in it as typed; results are cached, so a command that other checks need runs once."""

    SKIP = {".git", ".venv", "data", "logs", "outputs", "multirun", "wandb", "src", "tests"}

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for entry in REPO.iterdir():
            if entry.name not in self.SKIP and not entry.name.startswith(".") and not (root / entry.name).exists():
                (root / entry.name).symlink_to(entry)
        self.env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PROJECT_ROOT": str(root), "HYDRA_FULL_ERROR": "1",
                    "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
        for name in ("WANDB_API_KEY", "FCN_DATA", "FCN_RUN_DIR", "FCN_SWEEP_DIR"):
            self.env.pop(name, None)
        self.results: dict[str, Result] = {}

    def files(self) -> set[Path]:
        return {p.relative_to(self.root) for p in self.root.rglob("*") if p.is_file() and not p.is_symlink()}

    def run(self, argv: list[str], key: str | None = None, copies: int = 1) -> Result:
        """Run ``argv`` in the sandbox once (cached under ``key``, default the command line);
        ``copies`` > 1: that many at once (the nodes of a torchrun job), their outputs joined.

        ``python <script>`` and ``python -m <module>`` run in this process, as the interpreter would
        run them (runpy, sys.argv, the sandbox as working directory and PROJECT_ROOT): importing torch
        and Lightning anew for every command would cost more than most commands themselves. Other
        programs run in a subprocess."""
        key = key or shlex.join(argv)
        if key not in self.results:
            before, start = self.files(), time.perf_counter()
            if argv[0] == sys.executable and copies == 1:
                returncode, output = self._run_python(argv[1:])
            else:
                started = [subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True) for _ in range(copies)]
                outputs = [process.communicate(timeout=600)[0] for process in started]
                returncode = next((p.returncode for p in started if p.returncode), 0)
                output = "\n".join(outputs)
            self.results[key] = Result(key, returncode, output, sorted(self.files() - before),
                                       round(time.perf_counter() - start, 1))
        return self.results[key]

    def _run_python(self, args: list[str]) -> tuple[int, str]:
        buffer = io.StringIO()
        returncode = 0
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            for name in set(os.environ) - set(self.env):
                patch.delenv(name)
            for name, value in self.env.items():
                patch.setenv(name, value)
            patch.chdir(self.root)
            GlobalHydra.instance().clear()
            try:
                if args[0] == "-m":
                    patch.setattr(sys, "argv", [args[1], *args[2:]])
                    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
                else:
                    patch.setattr(sys, "argv", list(args))
                    runpy.run_path(str(self.root / args[0]), run_name="__main__")
            except SystemExit as exit_:
                returncode = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if not isinstance(exit_.code, int | None):
                    print(exit_.code, file=buffer)
            except Exception:  # noqa: BLE001 - reported as the interpreter would, exit status 1
                traceback.print_exc(file=buffer)
                returncode = 1
            finally:
                GlobalHydra.instance().clear()
        return returncode, buffer.getvalue()
