"""Every shell command in the code blocks of README.md and docs/*.md works as typed.

COMMANDS below maps each command, exactly as its page writes it (comment dropped, spaces
collapsed), to how it is checked:

- ``Run()``: run as typed in a sandbox (the repository's layout with its own empty data/ and logs/,
  so the embedded synthetic set is generated there), with TINY overrides appended for the keys the
  command does not set itself, and README placeholders (`<run>`, `...`) replaced by a real run;
- ``Compose(needs=..., expect={...})``: for a command that needs a GPU or a data set that is not
  here: every job it would run is composed, as `python train.py ... --cfg job` prints it, and the
  settings in ``expect`` are checked;
- ``Make(target, recipe)``: `make <target>` runs ``recipe`` (read with `make -n`), itself checked.

Adding a command to a page: add one line to COMMANDS. A command without an entry, or an entry
whose command left every page, fails test_every_readme_command_has_a_check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from caffe_nets import write_small_caffemodel
from readme_commands import REPO, Command, Result, Sandbox, compose_jobs, readme_commands, script_index, select

from fcn_lit.data.palette import save_index_png

# Appended to train.py commands that run here, except for keys the command sets itself: a 1/16-width
# trunk from scratch (no weights offline), 8 + 4 synthetic images of 48x48 pixels, one epoch.
TINY = (
    "model.backbone.width=0.0625",
    "model.backbone.pretrained=false",
    "data.generator.num_train=8",
    "data.generator.num_val=4",
    "data.generator.size=48",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "num_pictures=2",
)
# The README run whose checkpoint the predict/export commands use for `<run>` and `...`.
TRAINED = "python train.py experiment=quickstart trainer.max_epochs=2"
# The README sweep whose multirun directory report.py reads for `<sweep>`.
SWEEP = "python train.py -m model/backbone=alexnet,vgg16,googlenet"


@dataclass(frozen=True)
class Run:
    """Run as typed in the sandbox; ``extra`` overrides appended after TINY (train.py only);
    ``creates``: glob patterns (relative to the sandbox) each matching at least one new file;
    ``absent``: patterns no new file may match; ``prints``: text the output must hold."""

    extra: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    realdata: bool = False  # reads ../shared/realdata: skipped when it is absent
    prints: tuple[str, ...] = ()  # text the output must hold
    after: str | None = None  # a Make entry the README runs first (checked and run here first)
    setup: Callable[[Sandbox], None] | None = None  # prepares the sandbox first (files the command reads)
    slurm: bool = False  # runs its jobs on a SLURM cluster: marked `slurm`
    nodes: int = 1  # started that many times at once, one per node (torchrun --nnodes)


@dataclass(frozen=True)
class Compose:
    """Composed, not run. ``needs`` says why (a GPU, a data set that is not here); ``expect`` maps
    dotted keys (``hydra.*`` included) to the value every job must compose to; ``jobs`` is how many
    jobs a multirun expands to."""

    needs: str
    expect: dict[str, Any] = field(default_factory=dict)
    jobs: int = 1


@dataclass(frozen=True)
class Make:
    """`make <target>` (install aside, which is `make install`'s business) runs exactly ``recipe``."""

    target: str
    recipe: tuple[str, ...]


CAFFEMODEL = "fcn8s-heavy-pascal.caffemodel"
DOWNLOAD = "python -m fcn_lit.models.caffe download voc-fcn8s"


def release_mirror(sandbox: Sandbox) -> None:
    """A mirror holding a small voc-fcn8s of the release's layout (width 1/8, 21 classes) under the
    release's file name, for the download command (FCN_CAFFE_MIRROR); and a few VOC images with
    their labels in the sandbox's data/ (seg11valid)."""
    mirror = sandbox.root.parent / "caffe_mirror"
    if not (mirror / CAFFEMODEL).is_file():
        mirror.mkdir(exist_ok=True)
        write_small_caffemodel(mirror / CAFFEMODEL, "voc-fcn8s")
    sandbox.env["FCN_CAFFE_MIRROR"] = mirror.as_uri()
    voc = sandbox.root / "data" / "VOCdevkit" / "VOC2012"
    rng = np.random.default_rng(0)
    ids = ["2011_000001", "2011_000002"]
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    for sample_id in ids:
        Image.fromarray(rng.integers(0, 255, (40, 52, 3), dtype=np.uint8)).save(voc / "JPEGImages" / f"{sample_id}.jpg")
        save_index_png(voc / "SegmentationClass" / f"{sample_id}.png", rng.integers(0, 21, (40, 52)).astype(np.uint8))
    (voc / "ImageSets" / "Segmentation" / "seg11valid.txt").write_text("\n".join(ids) + "\n")


def downloaded_caffemodel(sandbox: Sandbox) -> None:
    """The README's download command, run first."""
    release_mirror(sandbox)
    result = run_readme_command(sandbox, DOWNLOAD)
    assert result.returncode == 0, result.output[-3000:]


# precision auto: bf16-mixed where the GPU supports it (tests/training/test_devices.py resolves it).
GPU_TRAINER = {"trainer.accelerator": "gpu", "trainer.devices": 1, "trainer.precision": "auto"}

COMMANDS: dict[str, Run | Compose | Make] = {
    "make quickstart": Make("quickstart", ("python train.py experiment=quickstart",)),
    "make test": Make("test", ("python -m pytest -n 2 -q",)),
    "python train.py model=fcn16s data=voc_sbd trainer.devices=4": Compose(
        "4 GPUs and VOC + SBD", {"trainer.accelerator": "auto", "trainer.strategy": "auto", "trainer.precision": "auto",
                                 "trainer.devices": 4, "trainer.sync_batchnorm": "auto", "model.net.stride": 16}),
    "python train.py model=fcn16s data=voc_sbd trainer=gpu": Compose(
        "a GPU and VOC + SBD", {**GPU_TRAINER, "model.net.stride": 16, "data.name": "voc_sbd"}),
    "python train.py model=fcn8s model/backbone=alexnet": Run(),
    "python train.py experiment=quickstart trainer.max_epochs=2": Run(creates=("logs/quickstart/runs/*/checkpoints/best.ckpt",)),
    "python train.py debug=fast_dev_run": Run(),
    "python train.py -m model/backbone=alexnet,vgg16,googlenet": Run(),
    "python report.py <sweep>": Run(creates=("logs/train/multiruns/*/report/report.md",), prints=("alexnet", "googlenet")),
    "python eval.py ckpt_path=... data=voc_sbd": Compose("VOC", {"data.name": "voc_sbd", "ckpt_path": "..."}),
    "python train.py -m model=fcn32s,fcn16s,fcn8s data=voc_sbd,sbd": Compose(
        "VOC and SBD", {"model.net.stride": "<any>", "data.name": "<any>"}, jobs=6),
    "python train.py -m hydra/launcher=local_parallel hydra.launcher.n_jobs=3 model.net.stride=32,16,8": Run(),
    "python train.py -m hydra/launcher=slurm trainer=ddp trainer.devices=4 model=fcn32s,fcn8s": Compose(
        "SLURM and 4 GPUs", {"hydra.launcher.tasks_per_node": 4, "hydra.launcher.gpus_per_node": 4,
                             "trainer.strategy": "ddp", "trainer.accelerator": "gpu", "trainer.devices": 4,
                             "trainer.precision": "auto", "trainer.sync_batchnorm": "auto"}, jobs=2),
    # The test cluster (tests/cluster/start_slurm.sh) may have 2 CPUs: one per job.
    "python train.py -m hydra/launcher=slurm trainer=cpu hydra.launcher.partition=cpu hydra.launcher.cpus_per_task=4 "
    "hydra.launcher.mem_gb=8 model=fcn32s,fcn8s": Run(
        extra=("hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"), slurm=True),
    "torchrun --nnodes=2 --nproc_per_node=1 --rdzv_backend=c10d --rdzv_endpoint=127.0.0.1:29400 --rdzv_id=fcn "
    "train.py trainer=ddp_cpu trainer.devices=1 trainer.num_nodes=2": Run(nodes=2),
    "python train.py hparams_search=voc_optuna data=voc_sbd trainer=gpu": Compose(
        "a GPU and VOC + SBD", {**GPU_TRAINER, "data.name": "voc_sbd", "hydra.sweeper.direction": "maximize",
                                "hydra.sweeper.study_name": "voc_fcn"}),
    "python train.py hparams_search=quickstart_optuna experiment=quickstart": Run(
        extra=("hydra.sweeper.n_trials=2",), creates=("logs/quickstart/multiruns/*/optimization_results.yaml",)),
    "python train.py -m logger=wandb logger.wandb.project=fcn-voc model/backbone=alexnet,vgg16,googlenet": Run(
        creates=("logs/train/multiruns/*/*/wandb/offline-run-*/**/*",)),
    "python train.py experiment=siftflow_fcn8s_staged": Compose(
        "a GPU and SIFT Flow", {"trainer.accelerator": "gpu", "trainer.precision": "32-true", "data.name": "siftflow",
                                "val_every_n_steps": 2000, "stages": [
                                    {"stride": 32, "lr": 1e-10, "max_steps": 100000},
                                    {"stride": 16, "lr": 1e-12, "max_steps": 100000},
                                    {"stride": 8, "lr": 1e-14, "max_steps": 100000}]}),
    "python train.py experiment=nyud_fcn32s_rgbhha_staged": Compose(
        "a GPU and NYUDv2", {"trainer.accelerator": "gpu", "trainer.precision": "32-true", "data.name": "nyud",
                             "val_every_n_steps": 2000, "stages.2.init_from": {"color": "rgb", "hha": "hha"},
                             "stages.2.lr": 1e-12, "stages.1.init_from": None}),
    "python predict.py ckpt_path=<run>/checkpoints/best.ckpt input=photos/ output=masks/": Run(
        creates=("masks/a_mask.png", "masks/b_mask.png", "masks/a_overlay.png")),
    "python predict.py ckpt_path=... input='photos/**/*.jpg' output=masks/ probabilities=true": Run(
        creates=("masks/c_probs.npy", "masks/c_mask.png")),
    "python export.py ckpt_path=... output=fcn8s": Run(creates=("fcn8s.onnx", "fcn8s.pt"), absent=("fcn8s.onnx.data",)),
    "python export.py ckpt_path=... output=fcn8s quantize=int8": Run(creates=("fcn8s.int8.onnx",)),
    "python export.py ckpt_path=... output=fcn8s 'formats=[onnx,openvino]'": Run(creates=("fcn8s.xml", "fcn8s.bin")),
    "python predict.py ckpt_path=... input=photos/ output=auto/ speed.auto_cache=false": Run(
        creates=("auto/a_mask.png", "auto/b_mask.png"), prints=("auto: choosing among", "<- picked")),
    "python predict.py ckpt_path=... input=photos/ output=vino/ speed.runtime=openvino": Run(
        creates=("vino/a_mask.png", "vino/b_mask.png")),
    "python predict.py ckpt_path=... input=photos/ output=tiled/ tiling.window=512 tiling.stride=341": Run(
        creates=("tiled/a_mask.png", "tiled/b_overlay.png")),
    "python eval.py ckpt_path=... 'tta.scales=[0.5,0.75,1.0,1.25,1.5,1.75]' tta.flip=true": Run(
        creates=("logs/eval/runs/*/metrics.json",)),
    "python predict.py ckpt_path=... input='data/cityscapes/leftImg8bit/test/*/*_leftImg8bit.png' "
    "output=results/cityscapes/ format=benchmark": Compose(
        "Cityscapes and a checkpoint trained on it", {"format": "benchmark", "output": "results/cityscapes/"}),
    "python predict.py ckpt_path=... input=data/ade20k/ADEChallengeData2016/images/validation/ output=results/ade20k/ "
    "format=benchmark data=ade20k": Compose(
        "ADE20K and a checkpoint trained on it", {"format": "benchmark", "data.dataset._target_": "fcn_lit.data.ADE20K"}),
    "python predict.py ckpt_path=... input=photos/ output=submission/ format=benchmark": Run(
        creates=("submission/a.png", "submission/b.png"), absent=("submission/*_*.png", "submission/*.npy")),
    "python eval.py ckpt_path=... data=cityscapes": Compose(
        "Cityscapes and a checkpoint trained on it", {"data.dataset._target_": "fcn_lit.data.Cityscapes", "data.test_split": None}),
    "python eval.py ckpt_path=... data=ade20k data.batch_size=1": Compose(
        "ADE20K and a checkpoint trained on it", {"data.dataset._target_": "fcn_lit.data.ADE20K", "data.batch_size": 1}),
    "python train.py experiment=quickstart model/backbone=timm model.backbone.name=convnext_tiny": Run(
        extra=("model.backbone.width=1.0",)),
    DOWNLOAD: Run(creates=(CAFFEMODEL,), setup=release_mirror),
    f"python eval.py ckpt_path={CAFFEMODEL} data=voc": Run(
        creates=("logs/eval/runs/*/metrics.json",), prints=("Caffe release net voc-fcn8s at width 0.125",),
        setup=downloaded_caffemodel),
    f"python predict.py ckpt_path={CAFFEMODEL} input=photos/ output=release_masks/": Run(
        creates=("release_masks/a_mask.png", "release_masks/b_overlay.png"), setup=downloaded_caffemodel),
    f"python export.py ckpt_path={CAFFEMODEL} output=fcn8s_release": Run(
        creates=("fcn8s_release.onnx", "fcn8s_release.pt"), setup=downloaded_caffemodel),
    "python train.py experiment=voc_fcn8s_vgg16_heavy init_from=fcn16s-heavy-pascal.caffemodel": Compose(
        "a GPU, VOC + SBD and the release's FCN-16s", {"init_from": "fcn16s-heavy-pascal.caffemodel",
                                                       "model.net.stride": 8, "model.backbone.weights": "caffe"}),
    "python train.py experiment=voc_fcn32s_vgg16_heavy model.backbone.weights_path=VGG_ILSVRC_16_layers.caffemodel": Compose(
        "a GPU, VOC + SBD and the 0.5 GB VGG16 classifier", {
            "model.backbone.weights_path": "VGG_ILSVRC_16_layers.caffemodel", "model.backbone.pretrained": True}),
    "python -m fcn_lit.data.browse data=synthetic data.augmentation=modern data.batching=crop data.crop_size=64 --out browse.png": Run(
        creates=("browse.png",)),
    "python -m fcn_lit.data.hha ../shared/realdata/nyud/data/depth outputs/nyud_hha --raw ../shared/realdata/nyud/data/rawdepth": Run(
        creates=("outputs/nyud_hha/rcnn_depth_demo.png",), realdata=True),
    "python -m fcn_lit.models.summary model=fcn8s model/backbone=vgg16 size=500": Run(
        prints=("134.5M", "216.6", "404")),
    # Its first cell asserts that it found a finished training run.
    "jupyter execute notebooks/fcn_lit_tour.ipynb": Run(after="make quickstart", prints=("Executing notebooks/fcn_lit_tour.ipynb",)),
}


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def with_tiny(argv: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    """Commands taking train.py's overrides (train.py, ``-m fcn_lit.data.browse``) get TINY and
    ``extra`` for the keys they do not set; eval.py gets TINY's data keys (the sandbox's synthetic
    set as the trained run generated it); others run as typed."""
    index = script_index(argv)
    script = Path(argv[index]).name if index else None
    if script == "eval.py":  # the synthetic set's keys, unless the command names its data
        tiny = () if any(a.startswith("data=") for a in argv[2:]) else tuple(o for o in TINY if o.startswith("data."))
    elif script == "train.py" or argv[1:3] == ["-m", "fcn_lit.data.browse"]:
        tiny = TINY
    else:
        return argv
    own = {_key(a) for a in argv[(index or 1) + 1:]}
    return [*argv, *(o for o in tiny if _key(o) not in own), *extra]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    """A fresh checkout: empty data/ and logs/, and a folder of photos (two sizes, one nested)."""
    box = Sandbox(tmp_path_factory.mktemp("readme"))
    shared = box.root.parent / "shared"  # ../shared/realdata, as from the repository
    if (REPO.parent / "shared").is_dir() and not shared.exists():
        shared.symlink_to(REPO.parent / "shared")
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a": (48, 48), "b": (48, 48), "more/c": (40, 56)}.items():
        path = box.root / "photos" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return box


def run_readme_command(sandbox: Sandbox, text: str) -> Result:
    """Run a README command (it must be a Run entry) in the sandbox once; later calls reuse it."""
    check = COMMANDS[text]
    assert isinstance(check, Run), f"{text!r} is not run, it is {type(check).__name__}"
    if check.setup:
        check.setup(sandbox)
    if check.after:
        first = COMMANDS[check.after]
        assert isinstance(first, Make), f"{check.after!r} is not a make target"
        check_make(sandbox, Command(check.after, 0), first)
    if "<run>" in text or "ckpt_path=..." in text:
        run_dir = trained_run(sandbox)
        text = text.replace("ckpt_path=...", "ckpt_path=<run>/checkpoints/best.ckpt").replace("<run>", str(run_dir))
    if "<sweep>" in text:
        sweep = run_readme_command(sandbox, SWEEP)
        assert sweep.returncode == 0, sweep.output[-3000:]
        text = text.replace("<sweep>", str(sandbox.root / sweep.created("logs/**/metrics.json")[0].parents[1]))
    return sandbox.run(with_tiny(Command(text, 0).argv, check.extra), key=text, copies=check.nodes)


def trained_run(sandbox: Sandbox) -> Path:
    result = run_readme_command(sandbox, TRAINED)
    assert result.returncode == 0, result.output[-3000:]
    (metrics,) = result.created("logs/**/metrics.json")
    return sandbox.root / metrics.parent


def check_run(sandbox: Sandbox, command: Command, check: Run) -> None:
    if check.realdata and not (REPO.parent / "shared" / "realdata").is_dir():
        pytest.skip(f"real samples not found at {REPO.parent / 'shared' / 'realdata'}")
    result = run_readme_command(sandbox, command.text)
    assert result.returncode == 0, f"{command.where} `{command.text}` failed:\n{result.output[-4000:]}"
    index = script_index(command.argv)
    if index and Path(command.argv[index]).name == "train.py":
        jobs = compose_jobs(with_tiny(command.argv, check.extra))
        trials = select(jobs[0], "hydra.sweeper.n_trials")  # an Optuna sweep runs its trials
        expected = trials if isinstance(trials, int) else len(jobs)
        assert len(result.created("logs/**/metrics.json")) == expected, result.output[-3000:]
    for pattern in check.creates:
        assert result.created(pattern), f"`{command.text}` created nothing matching {pattern}: {result.new_files}"
    for pattern in check.absent:
        assert not result.created(pattern), f"`{command.text}` created {result.created(pattern)}"
    for text in check.prints:
        assert text in result.output, f"`{command.text}` did not print {text!r}:\n{result.output[-3000:]}"


def check_compose(command: Command, check: Compose) -> None:
    jobs = compose_jobs(command.argv)
    assert len(jobs) == check.jobs, f"`{command.text}` composes {len(jobs)} jobs, not {check.jobs}"
    for cfg in jobs:
        for key, expected in check.expect.items():
            value = select(cfg, key)
            assert value != "<missing>", f"`{command.text}`: {key} is not in the composed config"
            if expected != "<any>":
                assert value == expected, f"`{command.text}` composes {key}={value!r}, expected {expected!r}"


def check_make(sandbox: Sandbox, command: Command, check: Make) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # also under `make test`
    dry = subprocess.run(["make", "-n", "-o", "install", check.target], cwd=REPO, capture_output=True, text=True, env=env)
    assert dry.returncode == 0, dry.stderr
    recipe = tuple(re.sub(r"^\S*/?\.venv/bin/python\b", "python", line) for line in dry.stdout.splitlines())
    assert recipe == check.recipe, f"`make {check.target}` runs {recipe}, the test expects {check.recipe}"
    for line in recipe:
        if line.startswith("python -m pytest"):
            # This very suite: pytest's testpaths hold this file.
            assert Path(__file__).is_relative_to(REPO / "tests")
        else:
            sub = Command(line, command.line)
            result = sandbox.run(with_tiny(sub.argv), key=f"make {check.target}: {line}")
            assert result.returncode == 0, f"`{line}` (make {check.target}) failed:\n{result.output[-4000:]}"
            assert result.created("logs/**/metrics.json")


def test_every_readme_command_has_a_check():
    commands = readme_commands()
    texts = [c.text for c in commands]
    unchecked = [f"{c.where}: {c.text}" for c in commands if c.text not in COMMANDS]
    assert not unchecked, ("Commands without a check: add them to COMMANDS in "
                           "tests/test_readme_commands.py:\n" + "\n".join(unchecked))
    stale = [text for text in COMMANDS if text not in texts]
    assert not stale, f"COMMANDS entries no longer in README.md or docs/ (remove or update them): {stale}"


def _params() -> list[Any]:
    params = []
    for command in readme_commands():
        check = COMMANDS.get(command.text)
        marks = [pytest.mark.slow] if isinstance(check, Run | Make) else []
        if isinstance(check, Run) and check.slurm:
            marks.append(pytest.mark.slurm)
        params.append(pytest.param(command, id=command.where, marks=marks))
    return params


@pytest.mark.parametrize("command", _params())
def test_readme_command(command: Command, request):
    check = COMMANDS.get(command.text)
    assert check is not None, f"{command.where} `{command.text}` has no entry in COMMANDS"
    if isinstance(check, Compose):
        check_compose(command, check)
    elif isinstance(check, Run):
        check_run(request.getfixturevalue("sandbox"), command, check)
    else:
        check_make(request.getfixturevalue("sandbox"), command, check)


@pytest.mark.slow
def test_the_notebook_runs_after_make_quickstart_from_any_directory(sandbox, tmp_path, monkeypatch):
    """No FCN_RUN_DIR: the notebook finds the quickstart's run under the checkout's logs/ (not an
    eval run), from a working directory elsewhere, and says how to make a sweep when there is none yet."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    check_make(sandbox, Command("make quickstart", 0), COMMANDS["make quickstart"])  # runs it once a session
    quickstart = sandbox.results["make quickstart: python train.py experiment=quickstart"]
    (metrics,) = quickstart.created("logs/**/metrics.json")
    empty = sandbox.root.parent / f"{sandbox.root.name}-fresh"  # a fresh clone: logs/ holds the quickstart only
    (empty / "logs").mkdir(parents=True, exist_ok=True)
    run_dir = empty / metrics.parent
    if not run_dir.exists():
        shutil.copytree(sandbox.root / metrics.parent, run_dir)
    monkeypatch.setenv("PROJECT_ROOT", str(empty))
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    for name in ("FCN_RUN_DIR", "FCN_SWEEP_DIR"):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(REPO / "notebooks" / "fcn_lit_tour.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert f"run: {run_dir}" in text and "No sweep yet" in text


@pytest.mark.slow
def test_the_runs_task_log_holds_fcn_lits_lines(sandbox):
    """<run dir>/<task>.log: the trainer settings, the test scores and where the results are."""
    run_dir = trained_run(sandbox)
    log = (run_dir / "quickstart.log").read_text()
    assert "[fcn_lit.training.devices][INFO] - Trainer: accelerator=cpu" in log
    scores = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert f"[fcn_lit.training.tasks][INFO] - test: pixel acc. {100 * scores['pixel_acc']:.2f}" in log
    assert f"metrics in {run_dir / 'metrics.json'}" in log
