"""Fetching data set files from their canonical sources, with checksums, and saying what is
expected where when they are missing and cannot be fetched."""
import hashlib
import os
import urllib.request
from pathlib import Path


def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def ensure_files(root, files, dataset, download=False):
    """Make sure every `name` of `files` ({name: (url, md5)}) is in `root`; fetch it if asked.

    Raises FileNotFoundError listing the expected files and their sources when they are missing."""
    root = Path(root)
    missing = [name for name in files if not (root / name).is_file()]
    if missing and download:
        root.mkdir(parents=True, exist_ok=True)
        for name in missing:
            _fetch(files[name][0], root / name, files[name][1], dataset)
        missing = []
    if missing:
        sources = "; ".join(f"{name} from {files[name][0]}" for name in missing)
        raise FileNotFoundError(f"{dataset}: missing {', '.join(missing)} in '{root}'; pass download=True "
                                f"(--download) when online, or place the files there ({sources})")
    return [root / name for name in files]


def _fetch(url, path, md5, dataset):
    tmp = path.with_suffix(path.suffix + ".part")
    try:
        urllib.request.urlretrieve(url, tmp)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise FileNotFoundError(f"{dataset}: could not download {url} ({e}); this machine may be offline: "
                                f"place {path.name} in '{path.parent}' by hand") from None
    if md5 and md5sum(tmp) != md5:
        tmp.unlink()
        raise ValueError(f"{dataset}: the download of {url} is corrupt (MD5 mismatch); try again")
    os.replace(tmp, path)
