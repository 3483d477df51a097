"""keep_freed_memory: after it, freeing and reallocating a large buffer reuses its pages instead of faulting
them in again (checked in a fresh process: the setting is process-wide)."""
import subprocess
import sys

import pytest

_PROBE = """
import resource, sys, torch
from danlu.engine.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.empty(2**24).fill_(1.0)  # 64 MB: over glibc's largest mmap threshold
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.empty(2**24).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode):
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_without_page_faults():
    buffer = 2**26 // 4096  # one 64 MB buffer, in 4 KB pages
    assert _faults("system") > 4 * buffer  # the default: each of the five is faulted in anew
    assert _faults("keep") < 1.5 * buffer  # at most one more (the heap grows once)
