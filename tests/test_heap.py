import subprocess
import sys

import pytest
import torch

from prunesearch import _heap

#: a fresh interpreter: 8 MB blocks from the heap (as glibc serves them once its threshold has risen), freed, and
#: free() kept from returning them itself (as it does not where live blocks sit above them)
CHILD = """
import ctypes
import importlib.util
import sys

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
libc.mallopt(-3, 16 * 2**20)  # M_MMAP_THRESHOLD
libc.mallopt(-1, 2**30)  # M_TRIM_THRESHOLD
blocks = [libc.malloc(8 * 2**20) for _ in range(16)]
for b in blocks:
    ctypes.memset(b, 1, 8 * 2**20)
for b in blocks:
    libc.free(b)
held = resident_mb()
# the module alone: the package's imports would allocate into the freed blocks
spec = importlib.util.spec_from_file_location("heap", sys.argv[1])
heap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(heap)
with heap.trimmed_heap(every=0.01) as trims:
    pass
print(trims, held, resident_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_freed_heap_blocks_go_back_to_the_system():
    argv = [sys.executable, "-c", CHILD, _heap.__file__]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    trims, held, after = out[0] == "True", float(out[1]), float(out[2])
    assert trims
    assert after < held - 100, (held, after)  # the 128 MB freed is resident no more


def _mapped_linear(path, features: int = 512) -> torch.nn.Linear:
    """A Linear layer whose weight is a view of a private mapping of ``path`` (as safetensors loads weights)."""
    torch.randn(features, features, generator=torch.Generator().manual_seed(0)).numpy().tofile(path)
    layer = torch.nn.Linear(features, features, bias=False)
    weight = torch.from_file(str(path), shared=False, size=features * features, dtype=torch.float32)
    layer.weight = torch.nn.Parameter(weight.view(features, features), requires_grad=False)
    return layer


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise: Linux")
def test_mapped_weights_are_handed_back_and_read_the_same_from_the_file(tmp_path):
    layer = _mapped_linear(tmp_path / "weight.bin")
    before = layer.weight.clone()
    assert _heap.released_file_pages(layer) >= 512 * 512 * 4 - 2 * 4096  # all but the two partial pages
    assert torch.equal(layer.weight, before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise: Linux")
def test_a_mapping_written_to_is_left_resident(tmp_path):
    layer = _mapped_linear(tmp_path / "weight.bin")
    with torch.no_grad():
        layer.weight[0, 0] = 7.0  # a private copy of that page now exists only in memory
    assert _heap.released_file_pages(layer) == 0
    assert float(layer.weight[0, 0]) == 7.0


def test_weights_in_memory_are_left_alone():
    assert _heap.released_file_pages(torch.nn.Linear(64, 64)) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise: Linux")
def test_a_pass_hands_each_layer_back_once_it_has_run_and_computes_the_same(tmp_path):
    from tests.prune.mapped import resident_kb

    files = [(tmp_path / f"weight{i}.bin").resolve() for i in range(3)]
    layers = [_mapped_linear(file) for file in files]
    model = torch.nn.Sequential(*layers)
    x = torch.randn(4, 512, generator=torch.Generator().manual_seed(1))
    expected = model(x)
    resident = []
    layers[-1].register_forward_pre_hook(lambda module, args: resident.append(sum(map(resident_kb, files))))
    with _heap.pages_released_as_run(layers):
        got = model(x)
    assert torch.equal(got, expected)
    layer_kb = 512 * 512 * 4 // 1024
    assert resident[0] < 1.2 * layer_kb  # before the last layer ran: the first two were handed back
    assert sum(map(resident_kb, files)) < 0.2 * layer_kb
    assert not layers[0]._forward_hooks  # the hooks go with the block
