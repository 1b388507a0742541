"""The memory-access slow paths, in wasm: a TLB miss refilled from the guest page table without Python.

A region's inline fast path compares the access with the soft-TLB entry of its
page; on a mismatch it calls ``env.ld_miss`` / ``env.st_miss``, defined here.
They walk the three-level page table (``abi.PT_*``, kept by
``runtime/memory.py``), refill the TLB entry exactly as the Python side would
(``GuestMemory.tlb_fill``), and do the access -- page-crossing accesses too,
byte by byte, when both pages allow it. Only what needs the host goes on to the
Python helpers ``ld_slow`` / ``st_slow`` with the same arguments: an unmapped or
protected page (a fault), a store to a page holding translated code, a watched
page, an address beyond the page table (2**48 and up).
"""

from __future__ import annotations

from tcg2wasm import abi
from tcg2wasm.ir.opdef import MemOp

__all__ = ["MEMORY_HELPERS_WAT", "MEMORY_HELPER_IMPORTS_WAT"]

_READ_OK = abi.PT_READ | abi.PT_SLOW_READ  # masked entry == PT_READ: loads may be done here
_WRITE_OK = abi.PT_WRITE | abi.PT_SLOW_WRITE  # masked entry == PT_WRITE: stores may be done here
_HOST_MASK = -abi.PAGE_SIZE  # as i32: the host page offset of a leaf entry

#: The imports the helpers need (a module's imports come before its functions).
MEMORY_HELPER_IMPORTS_WAT = f"""
  (import "{abi.IMPORT_MODULE}" "ld_slow" (func $ld_slow (param i64 i32) (result i64)))
  (import "{abi.IMPORT_MODULE}" "st_slow" (func $st_slow (param i64 i64 i32)))
"""

MEMORY_HELPERS_WAT = f"""
  ;; The leaf entry of the page holding addr: host page offset | PT flags; 0 if unmapped or not in the table.
  (func $pt_entry (param $addr i64) (result i32)
    (local $page i64) (local $table i32)
    (local.set $page (i64.shr_u (local.get $addr) (i64.const {abi.PAGE_BITS})))
    (if (i64.ne (i64.shr_u (local.get $page) (i64.const {abi.PT_PAGE_BITS})) (i64.const 0))
      (then (return (i32.const 0))))
    (local.set $table (i32.load offset={abi.PT_L1_BASE}
      (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $page) (i64.const {2 * abi.PT_LEVEL_BITS}))) (i32.const 2))))
    (if (i32.eqz (local.get $table)) (then (return (i32.const 0))))
    (local.set $table (i32.load (i32.add (local.get $table)
      (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $page) (i64.const {abi.PT_LEVEL_BITS})))
                        (i32.const {abi.PT_LEVEL_ENTRIES - 1})) (i32.const 2)))))
    (if (i32.eqz (local.get $table)) (then (return (i32.const 0))))
    (i32.load (i32.add (local.get $table)
      (i32.shl (i32.and (i32.wrap_i64 (local.get $page)) (i32.const {abi.PT_LEVEL_ENTRIES - 1})) (i32.const 2)))))

  ;; The TLB entry of addr's page from its leaf entry e (as GuestMemory.tlb_fill writes it).
  (func $tlb_fill (param $addr i64) (param $e i32)
    (local $slot i32) (local $tag i64)
    (local.set $tag (i64.and (local.get $addr) (i64.const {abi.PAGE_MASK - (1 << 64)})))
    (local.set $slot (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $addr) (i64.const {abi.PAGE_BITS})))
                                       (i32.const {abi.TLB_ENTRIES - 1}))
                              (i32.const {abi.TLB_ENTRY_SIZE.bit_length() - 1})))
    (i64.store offset={abi.TLB_BASE + abi.TLB_TAG_READ} (local.get $slot)
      (select (local.get $tag) (i64.const {abi.TLB_INVALID})
              (i32.eq (i32.and (local.get $e) (i32.const {_READ_OK})) (i32.const {abi.PT_READ}))))
    (i64.store offset={abi.TLB_BASE + abi.TLB_TAG_WRITE} (local.get $slot)
      (select (local.get $tag) (i64.const {abi.TLB_INVALID})
              (i32.eq (i32.and (local.get $e) (i32.const {_WRITE_OK})) (i32.const {abi.PT_WRITE}))))
    (i64.store offset={abi.TLB_BASE + abi.TLB_TAG_EXEC} (local.get $slot)
      (select (local.get $tag) (i64.const {abi.TLB_INVALID}) (i32.and (local.get $e) (i32.const {abi.PT_EXEC}))))
    (i64.store offset={abi.TLB_BASE + abi.TLB_ADDEND} (local.get $slot)
      (i64.sub (i64.extend_i32_u (i32.and (local.get $e) (i32.const {_HOST_MASK}))) (local.get $tag))))

  ;; A load of memop's size and extension from host address h.
  (func $load_sized (param $h i32) (param $memop i32) (result i64)
    (block $q (block $sl (block $sw (block $sb (block $l (block $w (block $b
      (br_table $b $w $l $q $sb $sw $sl $q (local.get $memop)))
      (return (i64.load8_u (local.get $h))))
      (return (i64.load16_u (local.get $h))))
      (return (i64.load32_u (local.get $h))))
      (return (i64.load8_s (local.get $h))))
      (return (i64.load16_s (local.get $h))))
      (return (i64.load32_s (local.get $h))))
    (i64.load (local.get $h)))

  (func $store_sized (param $h i32) (param $v i64) (param $memop i32)
    (block $q (block $l (block $w (block $b
      (br_table $b $w $l $q (i32.and (local.get $memop) (i32.const 3))))
      (i64.store8 (local.get $h) (local.get $v)) (return))
      (i64.store16 (local.get $h) (local.get $v)) (return))
      (i64.store32 (local.get $h) (local.get $v)) (return))
    (i64.store (local.get $h) (local.get $v)))

  ;; Host address of byte k of an access at page offset off spanning two pages (leaf entries e1, e2).
  (func $split_byte (param $e1 i32) (param $e2 i32) (param $off i32) (param $k i32) (result i32)
    (local $pos i32)
    (local.set $pos (i32.add (local.get $off) (local.get $k)))
    (if (result i32) (i32.lt_u (local.get $pos) (i32.const {abi.PAGE_SIZE}))
      (then (i32.add (i32.and (local.get $e1) (i32.const {_HOST_MASK})) (local.get $pos)))
      (else (i32.add (i32.and (local.get $e2) (i32.const {_HOST_MASK}))
                     (i32.sub (local.get $pos) (i32.const {abi.PAGE_SIZE}))))))

  (func $ld_split (param $e1 i32) (param $e2 i32) (param $off i32) (param $memop i32) (result i64)
    (local $k i32) (local $size i32) (local $v i64) (local $shift i64)
    (local.set $size (i32.shl (i32.const 1) (i32.and (local.get $memop) (i32.const 3))))
    (loop $next
      (local.set $v (i64.or (local.get $v)
        (i64.shl (i64.load8_u (call $split_byte (local.get $e1) (local.get $e2) (local.get $off) (local.get $k)))
                 (i64.extend_i32_u (i32.shl (local.get $k) (i32.const 3))))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $k) (local.get $size))))
    (if (i32.and (local.get $memop) (i32.const {int(MemOp.SIGN)}))
      (then
        (local.set $shift (i64.extend_i32_u (i32.sub (i32.const 64) (i32.shl (local.get $size) (i32.const 3)))))
        (local.set $v (i64.shr_s (i64.shl (local.get $v) (local.get $shift)) (local.get $shift)))))
    (local.get $v))

  (func $st_split (param $e1 i32) (param $e2 i32) (param $off i32) (param $v i64) (param $memop i32)
    (local $k i32) (local $size i32)
    (local.set $size (i32.shl (i32.const 1) (i32.and (local.get $memop) (i32.const 3))))
    (loop $next
      (i64.store8 (call $split_byte (local.get $e1) (local.get $e2) (local.get $off) (local.get $k))
                  (i64.shr_u (local.get $v) (i64.extend_i32_u (i32.shl (local.get $k) (i32.const 3)))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $k) (local.get $size)))))

  ;; Whether a load may be done here from leaf entry e: readable without the host, and writable too for
  ;; the read of a read-modify-write (MemOp.FOR_WRITE: the host reports a fault as a write).
  (func $load_ok (param $e i32) (param $memop i32) (result i32)
    (i32.and
      (i32.eq (i32.and (local.get $e) (i32.const {_READ_OK})) (i32.const {abi.PT_READ}))
      (i32.or (i32.eqz (i32.and (local.get $memop) (i32.const {int(MemOp.FOR_WRITE)})))
              (i32.eq (i32.and (local.get $e) (i32.const {_WRITE_OK})) (i32.const {abi.PT_WRITE})))))

  (func (export "ld_miss") (param $addr i64) (param $memop i32) (result i64)
    (local $e i32) (local $e2 i32) (local $off i32)
    (local.set $off (i32.and (i32.wrap_i64 (local.get $addr)) (i32.const {abi.PAGE_SIZE - 1})))
    (local.set $e (call $pt_entry (local.get $addr)))
    (if (i32.eqz (call $load_ok (local.get $e) (local.get $memop)))
      (then (return (call $ld_slow (local.get $addr) (local.get $memop)))))
    (if (i32.le_u (i32.add (local.get $off) (i32.shl (i32.const 1) (i32.and (local.get $memop) (i32.const 3))))
                  (i32.const {abi.PAGE_SIZE}))
      (then
        (call $tlb_fill (local.get $addr) (local.get $e))
        (return (call $load_sized (i32.add (i32.and (local.get $e) (i32.const {_HOST_MASK})) (local.get $off))
                                  (i32.and (local.get $memop) (i32.const 7))))))
    (local.set $e2 (call $pt_entry (i64.add (local.get $addr) (i64.const {abi.PAGE_SIZE}))))
    (if (i32.eqz (call $load_ok (local.get $e2) (local.get $memop)))
      (then (return (call $ld_slow (local.get $addr) (local.get $memop)))))
    (call $ld_split (local.get $e) (local.get $e2) (local.get $off) (local.get $memop)))

  (func (export "st_miss") (param $addr i64) (param $v i64) (param $memop i32)
    (local $e i32) (local $e2 i32) (local $off i32)
    (local.set $off (i32.and (i32.wrap_i64 (local.get $addr)) (i32.const {abi.PAGE_SIZE - 1})))
    (local.set $e (call $pt_entry (local.get $addr)))
    (if (i32.ne (i32.and (local.get $e) (i32.const {_WRITE_OK})) (i32.const {abi.PT_WRITE}))
      (then (return (call $st_slow (local.get $addr) (local.get $v) (local.get $memop)))))
    (if (i32.le_u (i32.add (local.get $off) (i32.shl (i32.const 1) (i32.and (local.get $memop) (i32.const 3))))
                  (i32.const {abi.PAGE_SIZE}))
      (then
        (call $tlb_fill (local.get $addr) (local.get $e))
        (call $store_sized (i32.add (i32.and (local.get $e) (i32.const {_HOST_MASK})) (local.get $off))
                           (local.get $v) (local.get $memop))
        (return)))
    (local.set $e2 (call $pt_entry (i64.add (local.get $addr) (i64.const {abi.PAGE_SIZE}))))
    (if (i32.ne (i32.and (local.get $e2) (i32.const {_WRITE_OK})) (i32.const {abi.PT_WRITE}))
      (then (return (call $st_slow (local.get $addr) (local.get $v) (local.get $memop)))))
    (call $st_split (local.get $e) (local.get $e2) (local.get $off) (local.get $v) (local.get $memop)))
"""
