"""Thin, fast access to the Binaryen C API (cffi) for building one function.

cffi attribute lookups on ``binaryen.lib`` cost as much as a small call, so the
functions and opcode numbers used per op are looked up once here. The
:class:`Exprs` helper binds the module and keeps each expression one Python call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import binaryen

lib = binaryen.lib
ffi = binaryen.ffi

Expr = Any  # cffi BinaryenExpressionRef

I32 = lib.BinaryenTypeInt32()
I64 = lib.BinaryenTypeInt64()
NONE = lib.BinaryenTypeNone()
AUTO = lib.BinaryenTypeAuto()
UNREACHABLE = lib.BinaryenTypeUnreachable()
NULL = ffi.NULL
MEMORY_NAME = b"0"


class Op:
    """Binaryen opcode numbers (``BinaryenAddInt64()`` and friends), fetched once."""

    ADD64 = lib.BinaryenAddInt64()
    SUB64 = lib.BinaryenSubInt64()
    MUL64 = lib.BinaryenMulInt64()
    AND64 = lib.BinaryenAndInt64()
    OR64 = lib.BinaryenOrInt64()
    XOR64 = lib.BinaryenXorInt64()
    SHL64 = lib.BinaryenShlInt64()
    SHRU64 = lib.BinaryenShrUInt64()
    SHRS64 = lib.BinaryenShrSInt64()
    ROTL64 = lib.BinaryenRotLInt64()
    ROTR64 = lib.BinaryenRotRInt64()
    DIVU64 = lib.BinaryenDivUInt64()
    DIVS64 = lib.BinaryenDivSInt64()
    REMU64 = lib.BinaryenRemUInt64()
    REMS64 = lib.BinaryenRemSInt64()
    EQ64 = lib.BinaryenEqInt64()
    NE64 = lib.BinaryenNeInt64()
    LTS64 = lib.BinaryenLtSInt64()
    LTU64 = lib.BinaryenLtUInt64()
    LES64 = lib.BinaryenLeSInt64()
    LEU64 = lib.BinaryenLeUInt64()
    GTS64 = lib.BinaryenGtSInt64()
    GTU64 = lib.BinaryenGtUInt64()
    GES64 = lib.BinaryenGeSInt64()
    GEU64 = lib.BinaryenGeUInt64()
    EQZ64 = lib.BinaryenEqZInt64()
    CLZ64 = lib.BinaryenClzInt64()
    CTZ64 = lib.BinaryenCtzInt64()
    POPCNT64 = lib.BinaryenPopcntInt64()
    EXT8S64 = lib.BinaryenExtendS8Int64()
    EXT16S64 = lib.BinaryenExtendS16Int64()
    EXT32S64 = lib.BinaryenExtendS32Int64()
    EXTU32 = lib.BinaryenExtendUInt32()
    WRAP64 = lib.BinaryenWrapInt64()
    AND32 = lib.BinaryenAndInt32()
    OR32 = lib.BinaryenOrInt32()
    SHL32 = lib.BinaryenShlInt32()
    ROTL32 = lib.BinaryenRotLInt32()
    ROTR32 = lib.BinaryenRotRInt32()
    EQZ32 = lib.BinaryenEqZInt32()


def to_s64(value: int) -> int:
    """An unsigned 64-bit value as the signed int Binaryen's literal API wants."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >> 63 else value


def to_s32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >> 31 else value


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def c_free(ptr: Any) -> None:
    """free() a buffer Binaryen malloc'd (AllocateAndWrite results)."""
    if ptr != NULL:
        _libc.free(int(ffi.cast("uintptr_t", ptr)))


class Exprs:
    """Expression constructors bound to one module (one Python call per wasm node)."""

    __slots__ = ("m", "_get", "_set", "_bin", "_un", "_c", "_l64", "_l32", "_load", "_store", "_block", "_if",
                 "_br", "_call", "_select", "_return", "_unreachable")

    def __init__(self, module: Any) -> None:
        self.m = module
        self._get = lib.BinaryenLocalGet
        self._set = lib.BinaryenLocalSet
        self._bin = lib.BinaryenBinary
        self._un = lib.BinaryenUnary
        self._c = lib.BinaryenConst
        self._l64 = lib.BinaryenLiteralInt64
        self._l32 = lib.BinaryenLiteralInt32
        self._load = lib.BinaryenLoad
        self._store = lib.BinaryenStore
        self._block = lib.BinaryenBlock
        self._if = lib.BinaryenIf
        self._br = lib.BinaryenBreak
        self._call = lib.BinaryenCall
        self._select = lib.BinaryenSelect
        self._return = lib.BinaryenReturn
        self._unreachable = lib.BinaryenUnreachable

    def get(self, index: int) -> Expr:
        return self._get(self.m, index, I64)

    def get32(self, index: int) -> Expr:
        return self._get(self.m, index, I32)

    def set(self, index: int, value: Expr) -> Expr:
        return self._set(self.m, index, value)

    def c64(self, value: int) -> Expr:
        return self._c(self.m, self._l64(to_s64(value)))

    def c32(self, value: int) -> Expr:
        return self._c(self.m, self._l32(to_s32(value)))

    def bin(self, op: int, a: Expr, b: Expr) -> Expr:
        return self._bin(self.m, op, a, b)

    def un(self, op: int, a: Expr) -> Expr:
        return self._un(self.m, op, a)

    def load(self, nbytes: int, signed: bool, offset: int, ptr: Expr, type_: int = I64) -> Expr:
        return self._load(self.m, nbytes, signed, offset, 0, type_, ptr, MEMORY_NAME)

    def store(self, nbytes: int, offset: int, ptr: Expr, value: Expr, type_: int = I64) -> Expr:
        return self._store(self.m, nbytes, offset, 0, ptr, value, type_, MEMORY_NAME)

    def state_load(self, offset: int) -> Expr:
        """i64 field of the state block (absolute offset)."""
        return self._load(self.m, 8, False, offset, 0, I64, self._c(self.m, self._l32(0)), MEMORY_NAME)

    def state_load32(self, offset: int) -> Expr:
        return self._load(self.m, 4, False, offset, 0, I32, self._c(self.m, self._l32(0)), MEMORY_NAME)

    def state_store(self, offset: int, value: Expr) -> Expr:
        return self._store(self.m, 8, offset, 0, self._c(self.m, self._l32(0)), value, I64, MEMORY_NAME)

    def block(self, stmts: Sequence[Expr], name: bytes | None = None, type_: int = AUTO) -> Expr:
        return self._block(self.m, name if name is not None else NULL, ffi.new("BinaryenExpressionRef[]", stmts),
                           len(stmts), type_)

    def if_(self, cond: Expr, then: Expr, else_: Expr | None = None) -> Expr:
        return self._if(self.m, cond, then, NULL if else_ is None else else_)

    def br(self, name: bytes, cond: Expr | None = None) -> Expr:
        return self._br(self.m, name, NULL if cond is None else cond, NULL)

    def call(self, name: bytes, args: Sequence[Expr], result: int) -> Expr:
        return self._call(self.m, name, ffi.new("BinaryenExpressionRef[]", args), len(args), result)

    def select(self, cond: Expr, if_true: Expr, if_false: Expr) -> Expr:
        return self._select(self.m, cond, if_true, if_false, I64)

    def ret(self, value: Expr) -> Expr:
        return self._return(self.m, value)

    def unreachable(self) -> Expr:
        return self._unreachable(self.m)
