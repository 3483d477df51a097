"""Fused optimizer steps: a chain's pieces traced into one compiled kernel per tile.

Run eagerly, a chain streams every tensor through memory once per op. Here the same pieces run once, at trace
time, on symbolic flat (1-D) tensors through `ops.Pointwise` (`make_fx`), and inductor compiles that graph
(`torch._inductor.standalone_compile`) into one loop that reads p, g and the state once and writes them once. The
graph's scalar work (bias corrections, lerp's branch, casts) is split off into a prologue run once per step (`_split`).
One compiled step per chain structure -- the pieces' classes and non-number attributes, the state keys, maximize,
dtype, device and CPU thread count -- serves every tensor size and every optimizer in the process: the pieces'
numbers (lr, betas, this step's bias corrections) are run-time inputs, one float64 tensor per bucket and step, so
schedules never recompile. Compiled outside dynamo, a call costs about 7 us; a `torch.compile`d function costs
about 28 us in guards and wrappers, which shows at ~150 tensors per step.

A tensor whose gradient and state share its dense layout runs on flat aliases (a 1-D one as it is), `CHUNK` such
tensors to a call: one compiled step takes `CHUNK` tensors of any sizes, so the ~10 us a call costs is paid once
per chunk, not per tensor (the last few of a bucket go one to a call), and the compiled wrapper checks no sizes,
since `run` builds every input. Packing small tensors into one buffer instead costs more (ViT-S's 101 biases and
norms: ~13 us a tensor in copies in and out, ~1 us in chunks). The rest (a gradient strided unlike its tensor) are
packed into one flat buffer per list for one call, and copied back. If tracing or compiling fails, `run` warns
once and returns False, and the caller runs the chain eagerly.
"""
import copy
import functools
import warnings

import torch

from .ops import Pointwise, opmath_dtype

# `fused=None` fuses from this many elements per step: see ChainOptimizer and benchmarks/bench_optim.py.
AUTO_NUMEL = 2**20
# The traced size: inductor sizes its loops' parallelism from it (a small hint gives a serial kernel).
_HINT = 2**20
# Tensors per call of the chunked step (ViT-S: 51 large tensors in 9 calls instead of 51).
CHUNK = 8
_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

_steps = {}  # structure key -> compiled step, or None where compiling failed
_warned = set()


@functools.cache
def available() -> bool:
    """Whether this torch can trace and compile a step (torch >= 2.8: `standalone_compile`)."""
    try:
        from torch._inductor import standalone_compile  # noqa: F401
        from torch.fx.experimental.proxy_tensor import make_fx  # noqa: F401
    except ImportError:
        return False
    return True


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(piece):
    """The piece's number attributes: passed to the compiled step as run-time scalars."""
    return sorted(k for k, v in vars(piece).items() if _is_number(v) and k not in piece.totals)


def _structure(piece, numbers):
    """What the kernel is specialized on: the class and every other attribute (`state` only fills new state)."""
    skip = {*numbers, *piece.totals, "state"}
    return type(piece), tuple(numbers), tuple(sorted((k, v) for k, v in vars(piece).items() if k not in skip))


def _split(graph, numbers):
    """`graph` (a traced step whose last input is `numbers`) as two graphs: the prologue, numbers -> the 0-d
    values that the per-element work reads (each in the dtype the loop computes it in), and the loop, (tensors,
    those values) -> the step's outputs. In one kernel, the loop would redo the scalar work (bias corrections,
    lerp's branch, double -> float) for every vector: the stores may alias the numbers, so the C++ compiler cannot
    hoist it (Adam over 22M floats: 1.16x torch's fused time with it in the loop, about 1.06x without)."""
    scalar = {numbers}
    for node in graph.graph.nodes:
        val = node.meta.get("val")
        if (node.op in ("call_function", "get_attr") and isinstance(val, torch.Tensor) and val.dim() == 0
                and all(n in scalar for n in node.all_input_nodes)):
            scalar.add(node)
    boundary = [n for n in graph.graph.nodes if n in scalar and any(u not in scalar for u in n.users)]
    vector_dtype = next(n.meta["val"].dtype for n in graph.graph.nodes if n.op == "placeholder")

    def loop_dtype(val):  # the dtype the loop computes a float scalar in
        return opmath_dtype(vector_dtype) if val.is_floating_point() else val.dtype

    prologue, env = torch.fx.Graph(), {}
    for node in graph.graph.nodes:
        if node in scalar:
            env[node] = prologue.node_copy(node, env.__getitem__)
    prologue.output(tuple(prologue.call_function(torch.ops.prims.convert_element_type.default,
                                                 (env[n], loop_dtype(n.meta["val"]))) for n in boundary))
    loop, env = torch.fx.Graph(), {}
    for node in graph.graph.nodes:
        if node.op == "placeholder" and node is not numbers:
            env[node] = loop.node_copy(node)
    for i, node in enumerate(boundary):
        env[node] = loop.placeholder(f"scalar{i}")
    for node in graph.graph.nodes:
        if node not in scalar and node.op != "placeholder":
            env[node] = loop.node_copy(node, env.__getitem__)
    values = [torch.zeros((), dtype=loop_dtype(n.meta["val"]), device=n.meta["val"].device) for n in boundary]
    return torch.fx.GraphModule(graph, prologue), torch.fx.GraphModule(graph, loop), values


class _Step:
    """A compiled step: `scalars(numbers)` once per call of `run`, then `__call__(*tensors, scalars)` per call."""

    def __init__(self, prologue, loop):
        self.scalars, self._loop = prologue, loop

    def __call__(self, *args):
        *tensors, scalars = args
        return self._loop(*tensors, *scalars)


def _trace_and_compile(pieces, names, keys, maximize, run_tile, like, n_numbers, count):
    from torch.fx.experimental.proxy_tensor import make_fx

    def step(*args):
        *tensors, numbers = args
        lists = [tensors[i:i + count] for i in range(0, len(tensors), count)]  # params, grads, then each state
        values = iter(range(n_numbers))
        twins = []
        for piece, ns in zip(pieces, names):
            twin = copy.copy(piece)
            for n in ns:
                setattr(twin, n, numbers[next(values)])
            for n in piece.totals:
                setattr(twin, n, 0.0)
            twins.append(twin)
        run_tile(twins, keys, maximize, Pointwise, lists[0], lists[1], lists[2:])
        return tuple(getattr(t, n) for t in twins for n in t.totals)

    # a size per tensor of the chunk (distinct, so each gets its own symbol), shared by its gradient and state
    examples = [torch.empty(_HINT + i, dtype=like.dtype, device=like.device)
                for _ in range(2 + len(keys)) for i in range(count)]
    numbers = torch.empty(n_numbers, dtype=torch.float64, device=like.device)
    graph = make_fx(step, tracing_mode="symbolic")(*examples, numbers)
    prologue, loop, scalars = _split(graph, list(graph.graph.nodes)[len(examples)])
    # no size asserts in the compiled wrapper (~1.6 us an input): `run` passes only aligned flat tensors
    with torch._inductor.config.patch(size_asserts=False):
        return _Step(torch._inductor.standalone_compile(prologue, [numbers]),
                     torch._inductor.standalone_compile(loop, [*examples, *scalars]))


def _compiled(pieces, names, keys, maximize, run_tile, like, n_numbers, count=1):
    threads = torch.get_num_threads() if like.device.type == "cpu" else 0
    key = (tuple(_structure(p, ns) for p, ns in zip(pieces, names)), tuple(keys), maximize, like.dtype,
           like.device, threads, count)
    if key not in _steps:
        try:
            _steps[key] = _trace_and_compile(pieces, names, keys, maximize, run_tile, like, n_numbers, count)
        except Exception as e:  # any tracing or compiler failure: the eager chain computes the same step
            _steps[key] = None
            _warn_once(key, f"could not compile the fused optimizer step for {[p.name for p in pieces]} "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); running it "
                            "eagerly (pass fused=False to silence this).")
    return _steps[key]


def _flats(tensors):
    """Flat aliases of a tensor, its gradient and state, element for element; None where their layouts differ."""
    if all(t.is_contiguous() for t in tensors):  # a 1-D tensor is passed as it is: a view costs ~1 us, four a tensor
        return tensors if tensors[0].dim() == 1 else [t.view(-1) for t in tensors]
    p = tensors[0]
    if p.is_contiguous(memory_format=torch.channels_last) and all(t.stride() == p.stride() for t in tensors):
        return [t.as_strided((t.numel(),), (1,)) for t in tensors]
    return None


def run(pieces, keys, maximize, lists, run_tile, warn=True) -> bool:
    """One fused step over a bucket's aligned `lists` (params, grads, then one list per state key). False: not run
    (unsupported device or dtype, or no compiler; a warning if `warn`), the caller runs the eager chain."""
    like = lists[0][0]
    if not (available() and like.device.type in ("cpu", "cuda") and like.dtype in _DTYPES):
        if warn:
            _warn_once((like.device.type, like.dtype), f"fused optimizer steps need torch >= 2.8 and float tensors "
                       f"on cpu or cuda, not {like.dtype} on {like.device.type}; running the eager chain.")
        return False
    names = [_numbers(p) for p in pieces]
    try:
        step = _compiled(pieces, names, keys, maximize, run_tile, like, sum(map(len, names)))
    except TypeError:  # an attribute the structure key cannot hash (a piece holding a tensor or a list)
        _warn_once(tuple(p.name for p in pieces), f"cannot fuse {[p.name for p in pieces]}: a piece has an "
                   "unhashable attribute; running the chain eagerly.")
        return False
    if step is None:
        return False
    numbers = torch.tensor([getattr(p, n) for p, ns in zip(pieces, names) for n in ns], dtype=torch.float64,
                           device=like.device)
    alone, packed = [], []
    for i, tensors in enumerate(zip(*lists)):
        flats = _flats(tensors)
        if flats is None:
            packed.append(i)
        else:
            alone.append(flats)
    whole = len(alone) - len(alone) % CHUNK
    chunked = _compiled(pieces, names, keys, maximize, run_tile, like, len(numbers), CHUNK) if whole else None
    if chunked is None:  # not compiled: the single-tensor step does them all
        whole = 0
    # a chunk's arguments: its params, then its grads, then each state list
    chunk_scalars = chunked.scalars(numbers) if whole else None
    outs = [chunked(*[f[k] for k in range(len(lists)) for f in alone[c:c + CHUNK]], chunk_scalars)
            for c in range(0, whole, CHUNK)]
    scalars = step.scalars(numbers) if whole < len(alone) or packed else None
    outs += [step(*flats, scalars) for flats in alone[whole:]]
    if packed:
        small = [[x[i] for i in packed] for x in lists]
        flats = [torch._utils._flatten_dense_tensors(xs) for xs in small]
        outs.append(step(*flats, scalars))
        for xs, flat in zip(small[:1] + small[2:], flats[:1] + flats[2:]):  # the grads are only read
            torch._foreach_copy_(xs, torch._utils._unflatten_dense_tensors(flat, xs))
    totals = [(p, n) for p in pieces for n in p.totals]
    for out in outs:
        for (p, n), v in zip(totals, out):
            setattr(p, n, getattr(p, n) + v)
    return True
