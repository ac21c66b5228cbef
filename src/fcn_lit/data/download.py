"""`data.download=true`: fetch a data set's official archive (its module's `archive`), resumable, checksummed."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from fcn_lit.errors import DataError


class DownloadError(DataError, OSError):
    """A transfer failed for good, or the archive's checksum is wrong."""


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str
    member: str  # the folder inside the archive that becomes the data set's root


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, md5: str | None, retries: int = 5) -> Path:
    """Download `url` to `dest` with a progress bar, resuming `<dest>.part` by HTTP Range; check md5
    (None: the publisher gives none, and a file already at `dest` is taken as complete)."""
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    error: Exception | None = None
    for _ in range(retries):
        try:
            if _transfer(url, part):
                break
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
            error = err
    else:
        raise DownloadError(
            f"could not download {url} in {retries} tries ({error or 'transfer cut short'}); the partial file "
            f"{part} is kept: run again to resume, or download it by hand to {dest}"
        )
    actual = md5 and md5sum(part)
    if actual != md5:
        part.unlink()
        raise DownloadError(
            f"{url}: md5 of the download is {actual}, expected {md5}; the corrupt file was removed, run again "
            f"(or place the archive at {dest} by hand)"
        )
    part.replace(dest)
    return dest


def _transfer(url: str, part: Path) -> bool:
    """Append the rest of `url` to `part`; True once the file is complete."""
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as err:
        if err.code == 416 and done:  # nothing left to send: already complete
            return True
        raise
    with response:
        if done and response.status != 206:  # the server ignored the Range header: start over
            done = 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        columns = (TextColumn(part.name[:-5]), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with open(part, "ab" if done else "wb") as f, Progress(*columns) as progress:
            task = progress.add_task("download", total=total, completed=done)
            while block := response.read(1 << 20):
                f.write(block)
                progress.advance(task, len(block))
    return total is None or part.stat().st_size >= total


def extract(archive: Path, member: str, root: Path) -> None:
    """Unpack the `member` folder of a tar archive so that it becomes `root`."""
    staging = root.parent / f".{root.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name == member or m.name.startswith(member + "/")]
        if not members:
            raise DownloadError(f"{archive} holds no folder {member}/: is it the right archive? Delete it and retry")
        tar.extractall(staging, members=members, filter="data")
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging / member), str(root))
    shutil.rmtree(staging)


def download_archive(spec: Archive, root: Path, mirror: Mapping[str, str] | None = None) -> None:
    """Make `root` the `member` folder of archive `spec`, unless it already holds files; `mirror`
    ({url, md5[, member]}) replaces the official address."""
    root = Path(root)
    if root.is_dir() and any(root.iterdir()):
        return
    if mirror:
        spec = Archive(mirror.get("url", spec.url), mirror.get("md5", spec.md5), mirror.get("member", spec.member))
    archive = fetch(spec.url, root.parent / spec.url.rsplit("/", 1)[-1], spec.md5)
    extract(archive, spec.member, root)
