"""A safe wrapper over Binaryen's Relooper.

Binaryen's C Relooper aborts the whole process (a C++ assert) on misuse, for
example on a second branch between the same two blocks. So the graph is built
in Python first, its invariants are checked, and only then is it handed to
``RelooperCreate/AddBlock/AddBranch/RenderAndDispose`` in one go. Every misuse
becomes a :class:`RelooperError` naming the block.

Invariants enforced:

* one branch per (from, to) pair: a second conditional branch to the same
  target is folded into the first (``i32.or`` of the conditions); a default
  branch absorbs conditional ones to the same target;
* at most one default (condition ``None``) branch per block;
* branch targets and the entry exist;
* a block without outgoing branches has code of type ``unreachable`` (it ends
  in ``return``, ``unreachable`` or a ``br`` out of the relooped code);
* no expression is handed over twice (Binaryen trees must not share nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import binaryen

_lib = binaryen.lib
_ffi = binaryen.ffi

Expr = Any  # a cffi ``BinaryenExpressionRef``


class RelooperError(ValueError):
    """The graph handed to the Relooper breaks one of its rules."""


@dataclass
class _Branch:
    target: int
    condition: Expr | None  # None: the default branch, taken when no other condition holds
    code: Expr | None = None


@dataclass
class _Block:
    code: Expr
    name: str
    branches: list[_Branch] = field(default_factory=list)


def _expr_key(expr: Expr) -> int:
    return int(_ffi.cast("uintptr_t", expr))


class RelooperGraph:
    """A control-flow graph of Binaryen expressions, checked before rendering.

    ``module`` is the ``BinaryenModuleRef`` the expressions belong to.
    """

    def __init__(self, module: Any) -> None:
        self._module = module
        self._blocks: list[_Block] = []
        self._seen_exprs: set[int] = set()
        self._rendered = False

    @property
    def n_blocks(self) -> int:
        return len(self._blocks)

    def _claim(self, expr: Expr, where: str) -> None:
        if expr is None or expr == _ffi.NULL:
            raise RelooperError(f"{where}: expression is NULL")
        key = _expr_key(expr)
        if key in self._seen_exprs:
            raise RelooperError(f"{where}: expression already used elsewhere in the graph")
        self._seen_exprs.add(key)

    def _block(self, index: int, what: str) -> _Block:
        if not isinstance(index, int) or not 0 <= index < len(self._blocks):
            raise RelooperError(f"{what}: no block {index!r} (graph has {len(self._blocks)})")
        return self._blocks[index]

    def add_block(self, code: Expr, name: str = "") -> int:
        """Add a block running ``code``; returns its id. ``name`` only labels error messages."""
        self._check_open()
        index = len(self._blocks)
        label = name or f"block {index}"
        self._claim(code, label)
        self._blocks.append(_Block(code, label))
        return index

    def add_branch(self, src: int, dst: int, condition: Expr | None = None, code: Expr | None = None) -> None:
        """Branch from ``src`` to ``dst`` when the i32 ``condition`` holds (None: default branch).

        ``code`` runs on the edge. Conditions must be free of side effects: the
        Relooper may evaluate them in any order.
        """
        self._check_open()
        block = self._block(src, "add_branch source")
        self._block(dst, f"add_branch from {block.name}: target")
        if condition is not None:
            self._claim(condition, f"{block.name} -> block {dst}: condition")
        if code is not None:
            self._claim(code, f"{block.name} -> block {dst}: edge code")
        existing = next((b for b in block.branches if b.target == dst), None)
        if existing is None:
            if condition is None and any(b.condition is None for b in block.branches):
                raise RelooperError(f"{block.name}: second default branch (to block {dst})")
            block.branches.append(_Branch(dst, condition, code))
            return
        if code is not None or existing.code is not None:
            raise RelooperError(f"{block.name}: two branches to block {dst} with edge code cannot be folded")
        self._fold(block, existing, condition)

    def _fold(self, block: _Block, existing: _Branch, condition: Expr | None) -> None:
        if existing.condition is None:
            return  # already the default: it covers the new condition too
        if condition is None:
            if any(b.condition is None for b in block.branches):
                raise RelooperError(f"{block.name}: second default branch (to block {existing.target})")
            existing.condition = None
            return
        existing.condition = _lib.BinaryenBinary(self._module, _lib.BinaryenOrInt32(), existing.condition, condition)

    def _check_open(self) -> None:
        if self._rendered:
            raise RelooperError("graph already rendered")

    def check(self, entry: int) -> None:
        """Raise :class:`RelooperError` unless the graph can be rendered from ``entry``."""
        self._block(entry, "entry")
        unreachable = _lib.BinaryenTypeUnreachable()
        i32 = _lib.BinaryenTypeInt32()
        for block in self._blocks:
            if not block.branches and _lib.BinaryenExpressionGetType(block.code) != unreachable:
                raise RelooperError(f"{block.name}: no outgoing branch, so it must end in return/unreachable/br")
            for br in block.branches:
                if br.condition is not None and _lib.BinaryenExpressionGetType(br.condition) != i32:
                    raise RelooperError(f"{block.name} -> block {br.target}: condition is not i32")

    def render(self, entry: int, label_helper: int) -> Expr:
        """Check, then run the Relooper; ``label_helper`` is a free i32 local of the function."""
        if not isinstance(label_helper, int) or label_helper < 0:
            raise RelooperError(f"label helper must be a local index, got {label_helper!r}")
        self._check_open()
        self.check(entry)
        self._rendered = True
        relooper = _lib.RelooperCreate(self._module)
        handles = [_lib.RelooperAddBlock(relooper, b.code) for b in self._blocks]
        null = _ffi.NULL
        for block, handle in zip(self._blocks, handles, strict=True):
            for br in block.branches:
                cond = null if br.condition is None else br.condition
                code = null if br.code is None else br.code
                _lib.RelooperAddBranch(handle, handles[br.target], cond, code)
        return _lib.RelooperRenderAndDispose(relooper, handles[entry], label_helper)
