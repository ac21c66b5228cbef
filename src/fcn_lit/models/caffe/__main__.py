"""``python -m fcn_lit.models.caffe download <net> [--to DIR]``: a release .caffemodel (the URL in its
folder's caffemodel-url, fcn.berkeleyvision.org), with a progress bar and resumable, into DIR
(default: here). ``FCN_CAFFE_MIRROR=<url prefix>`` fetches the same file name from a mirror."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fcn_lit.cli import exit_on_user_error
from fcn_lit.data.download import DownloadError, fetch

RELEASE = "http://dl.caffe.berkeleyvision.org/"
# The release's caffemodel-url files (nyud-fcn32s-color-d has none), and the ImageNet classifiers
# its ilsvrc-nets/README.md points to. The publishers give no checksums.
URLS = {
    "voc-fcn32s": RELEASE + "fcn32s-heavy-pascal.caffemodel",
    "voc-fcn16s": RELEASE + "fcn16s-heavy-pascal.caffemodel",
    "voc-fcn8s": RELEASE + "fcn8s-heavy-pascal.caffemodel",
    "voc-fcn8s-atonce": RELEASE + "fcn8s-atonce-pascal.caffemodel",
    "voc-fcn-alexnet": RELEASE + "fcn-alexnet-pascal.caffemodel",
    **{f"pascalcontext-fcn{s}s": RELEASE + f"pascalcontext-fcn{s}s-heavy.caffemodel" for s in (32, 16, 8)},
    **{f"siftflow-fcn{s}s": RELEASE + f"siftflow-fcn{s}s-heavy.caffemodel" for s in (32, 16, 8)},
    **{f"nyud-fcn32s-{m}": RELEASE + f"nyud-fcn32s-{m}-heavy.caffemodel" for m in ("color", "hha", "color-hha")},
    "vgg16": "http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/VGG_ILSVRC_16_layers.caffemodel",
    "caffenet": RELEASE + "bvlc_reference_caffenet.caffemodel",
}


def download(net: str, folder: Path) -> Path:
    if net not in URLS:
        raise DownloadError(f"{net!r} is not a release net with a caffemodel-url; choose one of {', '.join(URLS)}")
    url = URLS[net]
    mirror = os.environ.get("FCN_CAFFE_MIRROR")
    if mirror:
        url = mirror.rstrip("/") + "/" + url.rsplit("/", 1)[1]
    return fetch(url, folder / url.rsplit("/", 1)[1], md5=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fcn_lit.models.caffe", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("download", help="download a release .caffemodel (resumable)")
    get.add_argument("net", help=f"one of {', '.join(URLS)}")
    get.add_argument("--to", type=Path, default=Path("."), help="folder to save it in (default: here)")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        path = download(args.net, args.to)
    print(f"{path}: python eval.py ckpt_path={path} data=<its data set>")


if __name__ == "__main__":
    main()
