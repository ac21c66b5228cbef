"""data.download=true against a local HTTP server serving small archives built here."""

import hashlib
import http.server
import tarfile
import threading

import numpy as np
import pytest
from ondisk import write_sbd

from functools import partial

from fcn_lit.data import SBD, VOC, SIFTFlow, SegmentationDataModule
from fcn_lit.data.download import DownloadError, fetch


class Server:
    """Serves files by name, honours Range, and cuts the first transfer of each file in half."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_first = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                data = server.files[name]
                start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                first = sum(n == name for n, _ in server.requests) == 1
                body = data[start:]
                self.wfile.write(body[: len(body) // 2] if server.cut_first and first else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, name: str, data: bytes) -> dict[str, str]:
        self.files[name] = data
        return {"url": f"{self.url}/{name}", "md5": hashlib.md5(data).hexdigest()}


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


def tar_folder(path, folder, arcname, mode):
    with tarfile.open(path, mode) as tar:
        tar.add(folder, arcname=arcname)
    return path.read_bytes()


def test_download_fetches_checks_resumes_and_extracts_voc_and_sbd(tmp_path, make_voc, server):
    voc_src, voc_masks = make_voc({"seg11valid": 2})
    sbd_masks = write_sbd(tmp_path / "src_sbd", {"train": 3})
    voc_tar = tar_folder(tmp_path / "voc.tar", voc_src, "VOCdevkit/VOC2012", "w")
    sbd_tgz = tar_folder(tmp_path / "sbd.tgz", tmp_path / "src_sbd", "benchmark_RELEASE/dataset", "w:gz")
    archives = {"voc": server.add("VOCtrainval.tar", voc_tar), "sbd": server.add("benchmark.tgz", sbd_tgz)}
    data = tmp_path / "data"
    dm = SegmentationDataModule(VOC, data / "VOCdevkit/VOC2012", mirror=archives["voc"],
                                train_dataset=partial(SBD, root=data / "sbd/dataset", mirror=archives["sbd"]),
                                val_split="seg11valid", download=True, num_workers=0)
    dm.prepare_data()
    # each first transfer stopped half way: the client asked for the rest with a Range header
    assert server.requests == [
        ("VOCtrainval.tar", None), ("VOCtrainval.tar", f"bytes={len(voc_tar) // 2}-"),
        ("benchmark.tgz", None), ("benchmark.tgz", f"bytes={len(sbd_tgz) // 2}-"),
    ]
    assert (data / "VOCdevkit" / "VOCtrainval.tar").read_bytes() == voc_tar
    dm.setup("fit")
    assert dm.train_dataset.ids == list(sbd_masks) and dm.val_dataset.ids == list(voc_masks)
    np.testing.assert_array_equal(dm.val_dataset[0][1], voc_masks[dm.val_dataset.ids[0]])
    np.testing.assert_array_equal(dm.train_dataset[2][1], sbd_masks[dm.train_dataset.ids[2]])
    server.requests.clear()
    dm.prepare_data()  # already there: nothing fetched again
    assert server.requests == []


def test_wrong_checksum_names_the_url_and_both_sums(tmp_path, server):
    server.cut_first = False
    spec = server.add("a.tar", b"x" * 1000)
    with pytest.raises(DownloadError) as err:
        fetch(spec["url"], tmp_path / "a.tar", md5="0" * 32)
    assert spec["url"] in str(err.value) and spec["md5"] in str(err.value) and "0" * 32 in str(err.value)
    assert not (tmp_path / "a.tar").exists() and not (tmp_path / "a.tar.part").exists()


def test_download_is_refused_for_sets_without_an_official_archive(tmp_path):
    with pytest.raises(ValueError, match="data.download=true: SIFTFlow declares no archive to fetch"):
        SegmentationDataModule(SIFTFlow, tmp_path, download=True)
