"""Every command-line override that a message of fcn-lit suggests (a `key=value` in a string of
src/fcn_lit or of the entry scripts) composes as printed, with the config of train.py, eval.py,
predict.py or export.py. `pretrained=false` for `model.backbone.pretrained=false` fails here."""

import ast
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from runconfig import CONF_DIR, REPO

SOURCES = [*sorted((REPO / "src" / "fcn_lit").rglob("*.py")), *sorted(REPO.glob("*.py"))]
CONFIGS = ("train", "eval", "predict", "export")
# key=value with a config-like key (a group or dotted path, lower case: environment variables are
# upper case), not inside a longer word or a path.
OVERRIDE = re.compile(r"(?<![\w./$<{}\[-])((?:\+\+|\+|~)?[a-z][a-z0-9_]*(?:[./][a-z_][a-z0-9_]*)*)"
                      r"=((?:<[^>]*>|[^\s`'\",;)\]<])+)")
# Top-level keys and groups the configs have: a bare `word=value` is an override only for these.
TOP = {"data", "model", "trainer", "logger", "callbacks", "experiment", "debug", "hparams_search", "paths",
       "ckpt_path", "seed", "input", "output", "formats", "quantize", "task_name", "num_pictures", "init_from",
       "train", "test", "probabilities", "device", "normalization", "at_once", "tags"}

# Keys that exist only in some options of their group (data.mask_format: data=folder).
GROUP_OF_KEY = {"data.": "data", "model.backbone.": "model/backbone"}
# A bare `word=value` right after one of these words is a suggestion too (`use pretrained=false`).
SUGGESTING = {"use", "set", "pass", "try", "or", "with", "add", "run"}


def message_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant, f-string parts included, of a Python file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def suggested_overrides() -> dict[str, list[str]]:
    """override -> where it is suggested (file:line)."""
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        for line, text in message_strings(path):
            for match in OVERRIDE.finditer(text):
                key, value = match.group(1), match.group(2).rstrip(".:")
                if value in ("", "True", "False", "None"):  # `key=...` placeholders; Python keyword arguments
                    continue
                before = text[: match.start()].replace("`", " ").split()
                suggested = bool(before) and before[-1].lower() in SUGGESTING
                if "." not in key and "/" not in key and key.lstrip("+~") not in TOP and not suggested:
                    continue
                found.setdefault(f"{key}={value}", []).append(f"{path.relative_to(REPO)}:{line}")
    return found


def composes(override: str) -> bool:
    """Whether ``override`` composes with one of the entry points' configs, with the default options
    or, for a key of a group (`data.*`, `model.backbone.*`), with one of the group's; placeholders (`<file>`) and sweep lists (`a,b`)
    stand for one concrete value."""
    key, value = override.split("=", 1)
    group = CONF_DIR / key.lstrip("+~")
    if re.fullmatch(r"<[^>]*>", value) and group.is_dir():  # `data=<name>`: one of the group's options
        value = sorted(p.stem for p in group.glob("[!_]*.yaml"))[0]
    value = re.sub(r"<[^>]*>", "x", value).split(",")[0]
    groups = [group for prefix, group in GROUP_OF_KEY.items() if key.startswith(prefix)]
    options = [[]] + [[f"{g}={p.stem}"] for g in groups for p in sorted((CONF_DIR / g).glob("[!_]*.yaml"))]
    for config in CONFIGS:
        for extra in options:
            try:
                compose(config, overrides=[*extra, f"{key}={value}"])
                return True
            except (HydraException, OmegaConfBaseException):
                continue
    return False


@pytest.fixture(scope="module", autouse=True)
def hydra_conf():
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def test_the_collector_finds_the_known_suggestions():
    found = suggested_overrides()
    for known in ("model.backbone.pretrained=false", "trainer=cpu", "trainer=ddp_cpu", "trainer.strategy=ddp_spawn",
                  "data.batch_size=8"):
        assert known in found, f"{known} is no longer suggested anywhere: update this test"
    assert composes("trainer=cpu") and not composes("pretrained=false") and not composes("trainer=cpus")


def test_every_suggested_override_composes():
    broken = [f"{override} (suggested at {', '.join(where)})" for override, where in suggested_overrides().items()
              if not composes(override)]
    assert not broken, "overrides that messages suggest but Hydra rejects:\n" + "\n".join(broken)
