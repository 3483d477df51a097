"""Crash-safe file writes for run directories: every file is written to a temporary file in the same
folder, flushed, fsynced and renamed over the target, so a kill at any instant leaves either the old
file or the new one, never a truncated one. A full disk becomes one sentence naming the folder."""
import errno
import os
import shutil
from pathlib import Path

TMP, OLD = ".tmp", ".old"  # suffixes of leftovers, always hidden: '.NAME.tmp', '.NAME.old'


class DiskFullError(OSError):
    """No space left where a run writes; nothing half-written was left behind."""


def disk_full(folder, what, needed=None):
    free = shutil.disk_usage(folder).free
    need = f"; it needs about {_mb(needed)} and {_mb(free)} are free" if needed else f"; {_mb(free)} are free"
    return DiskFullError(errno.ENOSPC, f"no space left on the device holding '{folder}' while writing {what}{need}: "
                                       "free some space (or choose another --out) and run again with --resume")


def is_disk_full(error):
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def _mb(n):
    return f"{n / 2**20:.1f} MB"


def fsync_dir(folder):
    """Make a rename in `folder` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path, write, needed=None, durable=True):
    """Write `path` by calling `write(f)` on a binary file: to '.NAME.tmp' beside it, flushed, fsynced
    (unless not `durable`: files that can be rebuilt need survive a kill, not a power cut), then renamed
    over `path`. On any failure the temporary file is removed and `path` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if is_disk_full(e) and not isinstance(e, DiskFullError):
            raise disk_full(path.parent, path.name, needed) from None
        raise
    if durable:
        fsync_dir(path.parent)


def write_new(path, data):
    """Write the new file `path`, flushed and fsynced, without a rename of its own: for the files of a
    temporary folder that is renamed into place whole."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path, text, durable=True):
    write_atomic(path, lambda f: f.write(text.encode()), durable=durable)


def remove_leftovers(folder):
    """Delete the temporary files an interrupted write left in `folder` ('.NAME.tmp')."""
    for p in Path(folder).glob(f".*{TMP}"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
