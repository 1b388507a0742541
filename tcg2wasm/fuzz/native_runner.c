/*
 * tcg2wasm native runner: runs state cases on the host x86-64 CPU (docs/testing.md, "The native oracle").
 *
 * One process serves many cases: it reads requests from stdin and writes results to stdout
 * (the binary protocol of tcg2wasm/fuzz/native.py). Per case it maps the case's memory at
 * its fixed addresses (MAP_FIXED_NOREPLACE: a collision with the runner is reported, never
 * overwritten), enters the guest and catches whatever stops it.
 *
 * Entering and leaving the guest are both signal returns: the runner executes a ud2 at a known
 * address; its SIGILL handler saves the runner's own context (general registers and the FPU
 * legacy area of the signal frame) and replaces it by the guest's (GPRs, rip, rflags, x87
 * control word, MXCSR, xmm0-15), so that rt_sigreturn loads the whole guest state at once.
 * Any later signal raised by the guest (a fault, int3 at the stop address, a trap, a seccomp
 * SIGSYS for a guest syscall, the CPU-time timer) saves the guest context as the kernel
 * delivered it -- precise rip, registers before a faulting instruction -- and puts the
 * runner's context back.
 *
 * The runner uses no C library and no thread-local storage: the guest may set fs and gs
 * bases freely. It is a static PIE, loaded far from the low addresses cases use. A seccomp
 * filter lets only the runner's own text make system calls; a guest syscall (or int 0x80)
 * traps with SIGSYS and ends the run as a "syscall" stop.
 */

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef int i32;
typedef unsigned short u16;
typedef unsigned char u8;

#define PROTOCOL_MAGIC 0x4e573254u /* "T2WN" */
#define PROTOCOL_VERSION 1u
#define MAX_REGIONS 64
#define MAX_TOTAL_BYTES (1ul << 30)
#define PAGE 4096ul

enum { STOP_UNTIL = 1, STOP_SIGNAL = 2, STOP_TIMEOUT = 3, STOP_COUNT = 4 };
enum { STATUS_RAN = 0, STATUS_SETUP_ERROR = 1 };
enum { FLAG_STEP = 1 };

/* -- system calls ------------------------------------------------------------------------- */

#define NR_read 0
#define NR_write 1
#define NR_mmap 9
#define NR_mprotect 10
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_rt_sigreturn 15
#define NR_setitimer 38
#define NR_sigaltstack 131
#define NR_prctl 157
#define NR_arch_prctl 158
#define NR_exit_group 231

static inline i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
    register i64 r10 __asm__("r10") = d;
    register i64 r8 __asm__("r8") = e;
    register i64 r9 __asm__("r9") = f;
    i64 ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sys3(n, a, b, c) sys6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)

static void *memcpy_(void *dst, const void *src, u64 n) {
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}
static void memset_(void *dst, int v, u64 n) {
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(v) : "memory");
}
static int memeq(const void *a, const void *b, u64 n) {
    const u8 *x = a, *y = b;
    for (u64 i = 0; i < n; i++)
        if (x[i] != y[i]) return 0;
    return 1;
}
/* gcc may emit calls to these for struct copies */
void *memcpy(void *dst, const void *src, u64 n) { return memcpy_(dst, src, n); }
void *memset(void *dst, int v, u64 n) { memset_(dst, v, n); return dst; }

static u64 cstrlen(const char *s) {
    u64 n = 0;
    while (s[n]) n++;
    return n;
}

static __attribute__((noreturn)) void die(const char *msg) {
    sys3(NR_write, 2, "native runner: ", 15);
    sys3(NR_write, 2, msg, cstrlen(msg));
    sys3(NR_write, 2, "\n", 1);
    for (;;) sys3(NR_exit_group, 70, 0, 0);
}

/* -- kernel ABI structures (x86-64) ----------------------------------------------------------- */

struct kernel_sigaction {
    void *handler;
    u64 flags;
    void (*restorer)(void);
    u64 mask;
};
#define SA_SIGINFO 0x4ul
#define SA_ONSTACK 0x08000000ul
#define SA_RESTORER 0x04000000ul

struct siginfo {
    i32 signo, errno_, code, pad;
    union {
        struct { u64 addr; } fault;
        struct { u64 call_addr; i32 syscall; u32 arch; } sys;
        u8 raw[112];
    } u;
};

struct mcontext { /* struct sigcontext */
    u64 r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
    u16 cs, gs, fs, ss;
    u64 err, trapno, oldmask, cr2;
    u8 *fpstate;
    u64 reserved1[8];
};

struct ucontext {
    u64 flags;
    void *link;
    struct { void *sp; i32 flags; i32 pad; u64 size; } stack;
    struct mcontext mc;
    u64 sigmask;
};

/* offsets in the FXSAVE legacy area the frame's fpstate points to */
#define FX_CWD 0
#define FX_SWD 2
#define FX_TWD 4
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define FX_ST 32
#define FX_XMM 160
#define FX_SW_BYTES 464
#define FX_SIZE 512
#define FP_XSTATE_MAGIC1 0x46505853u

#define SIGILL 4
#define SIGTRAP 5
#define SIGBUS 7
#define SIGFPE 8
#define SIGSEGV 11
#define SIGPROF 27
#define SIGSYS 31
#define TF_BIT 0x100ul
#define RF_BIT 0x10000ul

/* -- the case being run ------------------------------------------------------------------------- */

struct regs { u64 gpr[16], rip, rflags, fs_base, gs_base; }; /* gpr in rax rcx rdx rbx rsp rbp rsi rdi r8..r15 order */
struct fpu { u8 xmm[256]; u32 mxcsr, fpcw; };

struct request {
    u32 magic, nregions;
    u64 until, count;
    u32 timeout_ms, flags;
    struct regs regs;
    struct fpu fpu;
};

struct region { u64 addr, size; u32 perms, mapped, unprotected, pad; u64 datalen; };

struct result {
    u32 stop, signo;
    i32 si_code;
    u32 si_arch;
    u64 si_addr, trapno, err;
    i64 si_syscall;
    u64 steps;
    u32 patched, pad;
    struct regs regs;
    struct fpu fpu;
};

static struct request req;
static struct region regions[MAX_REGIONS];
static struct result res;
static volatile int in_guest;
static struct mcontext host_mc;
static u8 host_fx[FX_SIZE] __attribute__((aligned(64)));
static u8 alt_stack[256 * 1024] __attribute__((aligned(64)));
extern char runner_enter_ud2[];
extern char __executable_start[], __etext[];

/* -- guest context switch (in the signal handler) ---------------------------------------------- */

static void mark_fp_valid(u8 *fp) {
    /* With XSAVE frames the kernel restores x87/SSE from the frame only if their xstate_bv bits are set. */
    u32 magic1;
    memcpy_(&magic1, fp + FX_SW_BYTES, 4);
    if (magic1 == FP_XSTATE_MAGIC1) {
        u64 bv;
        memcpy_(&bv, fp + FX_SIZE, 8);
        bv |= 3;
        memcpy_(fp + FX_SIZE, &bv, 8);
    }
}

static void regs_to_mc(const struct regs *r, struct mcontext *mc) {
    const u64 *g = r->gpr;
    mc->rax = g[0]; mc->rcx = g[1]; mc->rdx = g[2]; mc->rbx = g[3];
    mc->rsp = g[4]; mc->rbp = g[5]; mc->rsi = g[6]; mc->rdi = g[7];
    mc->r8 = g[8]; mc->r9 = g[9]; mc->r10 = g[10]; mc->r11 = g[11];
    mc->r12 = g[12]; mc->r13 = g[13]; mc->r14 = g[14]; mc->r15 = g[15];
    mc->rip = r->rip;
    mc->eflags = r->rflags & ~RF_BIT;
}

static void mc_to_regs(const struct mcontext *mc, struct regs *r) {
    u64 *g = r->gpr;
    g[0] = mc->rax; g[1] = mc->rcx; g[2] = mc->rdx; g[3] = mc->rbx;
    g[4] = mc->rsp; g[5] = mc->rbp; g[6] = mc->rsi; g[7] = mc->rdi;
    g[8] = mc->r8; g[9] = mc->r9; g[10] = mc->r10; g[11] = mc->r11;
    g[12] = mc->r12; g[13] = mc->r13; g[14] = mc->r14; g[15] = mc->r15;
    r->rip = mc->rip;
    r->rflags = mc->eflags;
}

static void enter_guest_context(struct ucontext *uc) {
    u8 *fp = uc->mc.fpstate;
    u8 *keep = uc->mc.fpstate;
    host_mc = uc->mc;
    memcpy_(host_fx, fp, FX_SIZE);
    regs_to_mc(&req.regs, &uc->mc);
    if (req.flags & FLAG_STEP) uc->mc.eflags |= TF_BIT;
    uc->mc.fpstate = keep;
    u16 cwd = (u16)req.fpu.fpcw, zero16 = 0;
    memcpy_(fp + FX_CWD, &cwd, 2);
    memcpy_(fp + FX_SWD, &zero16, 2);
    memcpy_(fp + FX_TWD, &zero16, 2);
    memcpy_(fp + FX_MXCSR, &req.fpu.mxcsr, 4);
    memset_(fp + FX_ST, 0, 128);
    memcpy_(fp + FX_XMM, req.fpu.xmm, 256);
    mark_fp_valid(fp);
    in_guest = 1;
}

static void leave_guest_context(struct ucontext *uc, u32 stop) {
    u8 *fp = uc->mc.fpstate;
    mc_to_regs(&uc->mc, &res.regs);
    u16 cwd;
    memcpy_(&cwd, fp + FX_CWD, 2);
    res.fpu.fpcw = cwd;
    memcpy_(&res.fpu.mxcsr, fp + FX_MXCSR, 4);
    memcpy_(res.fpu.xmm, fp + FX_XMM, 256);
    res.stop = stop;
    uc->mc = host_mc;
    uc->mc.fpstate = fp;
    uc->mc.rip += 2; /* past the ud2 */
    memcpy_(fp, host_fx, FX_SIZE);
    mark_fp_valid(fp);
    in_guest = 0;
}

static void record_signal(int sig, const struct siginfo *si, const struct ucontext *uc) {
    res.signo = (u32)sig;
    res.si_code = si->code;
    res.trapno = uc->mc.trapno;
    res.err = uc->mc.err;
    if (sig == SIGSYS) {
        res.si_addr = si->u.sys.call_addr;
        res.si_syscall = si->u.sys.syscall;
        res.si_arch = si->u.sys.arch;
    } else {
        res.si_addr = si->u.fault.addr;
    }
}

static void on_signal(int sig, struct siginfo *si, void *ucv) {
    /* The kernel delivers the signal with the guest's AC flag still set (it clears only DF, RF and TF), and
     * Linux sets CR0.AM: the handler's own unaligned copies would raise #AC inside it (a dead runner). The
     * guest's rflags, AC too, are in uc; sigreturn loads them back. */
    __asm__ volatile("pushfq\n\tandq $~0x40000, (%%rsp)\n\tpopfq" : : : "memory", "cc");
    struct ucontext *uc = ucv;
    u64 rip = uc->mc.rip;
    if (!in_guest) {
        if (sig == SIGILL && rip == (u64)runner_enter_ud2) {
            enter_guest_context(uc);
            return;
        }
        if (sig == SIGPROF) return; /* the timer fired after the guest stopped */
        die("fault in the runner itself");
    }
    if (sig == SIGPROF) {
        leave_guest_context(uc, STOP_TIMEOUT);
        return;
    }
    if (sig == SIGTRAP && (req.flags & FLAG_STEP) && uc->mc.trapno == 1 && si->code == 2 /* TRAP_TRACE */) {
        res.steps++;
        if (rip == req.until) {
            leave_guest_context(uc, STOP_UNTIL);
        } else if (req.count && res.steps >= req.count) {
            leave_guest_context(uc, STOP_COUNT);
        }
        return;
    }
    if (sig == SIGTRAP && uc->mc.trapno == 3 && rip - 1 == req.until && !(req.flags & FLAG_STEP)) {
        uc->mc.rip = req.until;
        leave_guest_context(uc, STOP_UNTIL);
        return;
    }
    record_signal(sig, si, uc);
    leave_guest_context(uc, STOP_SIGNAL);
}

/* The signal restorer (no C library provides one): rt_sigreturn. */
extern void runner_restorer(void);
__asm__(".globl runner_restorer\nrunner_restorer:\n\tmov $15, %eax\n\tsyscall\n\thlt\n");

/* rflags bits rt_sigreturn does not load (not in the kernel's FIX_EFLAGS): NT and ID keep the value they
 * have when the signal returns. So they are set with popf before the ud2 that enters the guest, and
 * cleared again after it (else a guest's NT or ID would carry over into the next case). */
#define NOT_RESTORED_FLAGS (0x4000ul | 0x200000ul)

static __attribute__((noinline)) void run_guest(u64 extra_flags) {
    __asm__ volatile("pushfq\n\tor %0, (%%rsp)\n\tpopfq\n\t"
                     ".globl runner_enter_ud2\nrunner_enter_ud2:\n\tud2\n\t"
                     "pushfq\n\tandq %1, (%%rsp)\n\tpopfq"
                     : : "r"(extra_flags), "r"(~NOT_RESTORED_FLAGS) : "memory", "cc");
}

/* -- set-up ------------------------------------------------------------------------------------- */

static void install_handlers(void) {
    struct { void *sp; i32 flags; i32 pad; u64 size; } ss = {alt_stack, 0, 0, sizeof alt_stack};
    if (sys3(NR_sigaltstack, &ss, 0, 0) != 0) die("sigaltstack failed");
    static const int sigs[] = {SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV, SIGPROF, SIGSYS};
    struct kernel_sigaction sa;
    sa.handler = (void *)on_signal;
    sa.flags = SA_SIGINFO | SA_ONSTACK | SA_RESTORER;
    sa.restorer = runner_restorer;
    sa.mask = ~0ul; /* nothing nests inside the handler */
    for (u64 i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sys6(NR_rt_sigaction, sigs[i], (i64)&sa, 0, 8, 0, 0) != 0) die("rt_sigaction failed");
}

struct sock_filter { u16 code; u8 jt, jf; u32 k; };
struct sock_fprog { u16 len; struct sock_filter *filter; };
#define BPF_LD_ABS 0x20
#define BPF_JEQ 0x15
#define BPF_JGE 0x35
#define BPF_RET 0x06
#define AUDIT_ARCH_X86_64 0xC000003Eu
#define SECCOMP_RET_ALLOW 0x7fff0000u
#define SECCOMP_RET_TRAP 0x00030000u

static void install_seccomp(void) {
    u64 lo = (u64)__executable_start, hi = (u64)__etext;
    if ((lo >> 32) != ((hi - 1) >> 32)) die("runner text crosses a 4 GiB boundary");
    struct sock_filter prog[] = {
        {BPF_LD_ABS, 0, 0, 4},                         /* arch */
        {BPF_JEQ, 0, 6, AUDIT_ARCH_X86_64},
        {BPF_LD_ABS, 0, 0, 12},                        /* instruction_pointer, high word */
        {BPF_JEQ, 0, 4, (u32)(lo >> 32)},
        {BPF_LD_ABS, 0, 0, 8},                         /* instruction_pointer, low word */
        {BPF_JGE, 0, 2, (u32)lo},
        {BPF_JGE, 1, 0, (u32)hi},
        {BPF_RET, 0, 0, SECCOMP_RET_ALLOW},
        {BPF_RET, 0, 0, SECCOMP_RET_TRAP},
    };
    struct sock_fprog fprog = {sizeof prog / sizeof prog[0], prog};
    if (sys6(NR_prctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0, 0) != 0) die("PR_SET_NO_NEW_PRIVS failed");
    if (sys6(NR_prctl, 22 /* PR_SET_SECCOMP */, 2 /* FILTER */, (i64)&fprog, 0, 0, 0) != 0) die("seccomp failed");
}

/* -- buffered pipe I/O ------------------------------------------------------------------------- */

static u8 inbuf[1 << 16];
static u64 in_pos, in_len;
static u8 outbuf[1 << 16];
static u64 out_len;

static int read_exact(void *dst, u64 n) { /* 0 on EOF before anything was read, 1 on success; dies on a short read */
    u8 *d = dst;
    u64 got = 0;
    while (got < n) {
        if (in_pos == in_len) {
            i64 r = sys3(NR_read, 0, inbuf, sizeof inbuf);
            if (r == -4) continue; /* EINTR */
            if (r <= 0) {
                if (got == 0 && r == 0) return 0;
                die("short read from the request pipe");
            }
            in_pos = 0;
            in_len = (u64)r;
        }
        u64 k = in_len - in_pos < n - got ? in_len - in_pos : n - got;
        memcpy_(d + got, inbuf + in_pos, k);
        in_pos += k;
        got += k;
    }
    return 1;
}

static void flush_out(void) {
    u64 done = 0;
    while (done < out_len) {
        i64 w = sys3(NR_write, 1, outbuf + done, out_len - done);
        if (w == -4) continue;
        if (w <= 0) die("cannot write results");
        done += (u64)w;
    }
    out_len = 0;
}

static void write_out(const void *src, u64 n) {
    const u8 *s = src;
    while (n) {
        if (out_len == sizeof outbuf) flush_out();
        u64 k = sizeof outbuf - out_len < n ? sizeof outbuf - out_len : n;
        memcpy_(outbuf + out_len, s, k);
        out_len += k;
        s += k;
        n -= k;
    }
}

static void setup_error(const char *msg) {
    u32 head[3] = {PROTOCOL_MAGIC, STATUS_SETUP_ERROR, (u32)cstrlen(msg)};
    write_out(head, sizeof head);
    write_out(msg, head[2]);
    flush_out();
}

/* -- one case ----------------------------------------------------------------------------------- */

/* Mappings are kept from one case to the next when the layout is the same (address, size, perms):
 * mmap/munmap and the page faults on fresh pages cost more than running a short case. */
static struct region kept[MAX_REGIONS];
static u32 nkept;
static u8 scratch[1 << 16];

#define PROT_RW 3

static void drop_kept_from(u32 first) {
    for (u32 i = first; i < nkept; i++)
        if (kept[i].mapped) sys3(NR_munmap, kept[i].addr, kept[i].size, 0);
    if (first < nkept) nkept = first;
}

static void unmap_all(u32 n) {
    for (u32 i = 0; i < n; i++)
        if (regions[i].mapped) sys3(NR_munmap, regions[i].addr, regions[i].size, 0);
    drop_kept_from(0);
}

static void discard(u64 n) {
    while (n) {
        u64 k = n < sizeof scratch ? n : sizeof scratch;
        read_exact(scratch, k);
        n -= k;
    }
}

static void make_writable(struct region *r) {
    if (!r->unprotected && (r->perms & PROT_RW) != PROT_RW) {
        sys3(NR_mprotect, r->addr, r->size, PROT_RW);
        r->unprotected = 1;
    }
}

/* A kept mapping gets the new contents: writable ones are rewritten whole (the guest may have written
 * anywhere), the others only where they differ (each change costs two mprotect calls). */
static void refill(struct region *r, u64 datalen) {
    u8 *base = (u8 *)r->addr;
    if (r->perms & 2 || !(r->perms & 1)) {
        make_writable(r);
        read_exact(base, datalen);
        u64 end = r->perms & 2 ? r->size : (r->datalen > datalen ? r->datalen : datalen);
        memset_(base + datalen, 0, end - datalen);
        r->datalen = datalen;
        return;
    }
    for (u64 off = 0; off < datalen;) {
        u64 k = datalen - off < sizeof scratch ? datalen - off : sizeof scratch;
        read_exact(scratch, k);
        if (r->unprotected || !memeq(base + off, scratch, k)) {
            make_writable(r);
            memcpy_(base + off, scratch, k);
        }
        off += k;
    }
    if (r->datalen > datalen) {
        make_writable(r);
        memset_(base + datalen, 0, r->datalen - datalen);
    }
    r->datalen = datalen;
}

static const char *map_fresh(struct region *r) {
    i64 p = sys6(NR_mmap, (i64)r->addr, (i64)r->size, PROT_RW, 0x22 | 0x100000 /* PRIVATE|ANON|FIXED_NOREPLACE */,
                 -1, 0);
    if (p < 0 && p > -4096)
        return p == -17 ? "address range is taken by the runner itself" : "mmap failed (not a user address)";
    if ((u64)p != r->addr) {
        sys3(NR_munmap, p, r->size, 0);
        return "the kernel did not map the region at its address";
    }
    r->mapped = 1;
    r->unprotected = (r->perms & 7) != PROT_RW;
    return 0;
}

/* Map (or reuse) and fill every region; returns an error message or 0. Always consumes the request's data. */
static const char *load_regions(void) {
    const char *err = 0;
    u64 total = 0;
    for (u32 i = 0; i < req.nregions; i++) {
        struct { u64 addr, size; u32 perms, datalen; } h;
        read_exact(&h, sizeof h);
        struct region *r = &regions[i];
        *r = (struct region){h.addr, h.size, h.perms & 7, 0, 0, 0, 0};
        total += h.size;
        if (!err && (h.addr % PAGE || h.size % PAGE || !h.size || h.datalen > h.size || total > MAX_TOTAL_BYTES))
            err = "region not page-aligned, empty, overfull, or more than 1 GiB in all";
        if (!err && i < nkept && kept[i].mapped && kept[i].addr == r->addr && kept[i].size == r->size
            && kept[i].perms == r->perms) {
            *r = kept[i];
            kept[i].mapped = 0; /* owned by regions[i] now */
            refill(r, h.datalen);
            continue;
        }
        if (!err) {
            drop_kept_from(i);
            err = map_fresh(r);
        }
        if (r->mapped) {
            read_exact((void *)h.addr, h.datalen);
            r->datalen = h.datalen;
        } else {
            discard(h.datalen);
        }
    }
    drop_kept_from(req.nregions);
    return err;
}

static struct region *region_of(u64 addr) {
    for (u32 i = 0; i < req.nregions; i++)
        if (regions[i].addr <= addr && addr - regions[i].addr < regions[i].size) return &regions[i];
    return 0;
}

static const char *protect_regions(void) {
    for (u32 i = 0; i < req.nregions; i++) {
        struct region *r = &regions[i];
        if (!r->unprotected) continue;
        if (sys3(NR_mprotect, r->addr, r->size, r->perms) != 0) return "mprotect failed";
        r->unprotected = 0;
    }
    return 0;
}

static void arm_timer(u32 ms) {
    u64 it[4] = {0, 0, ms / 1000, (ms % 1000) * 1000};
    sys3(NR_setitimer, 2 /* ITIMER_PROF */, it, 0);
}

static void enter_and_wait(void) {
    sys3(NR_arch_prctl, 0x1002 /* ARCH_SET_FS */, req.regs.fs_base, 0);
    sys3(NR_arch_prctl, 0x1001 /* ARCH_SET_GS */, req.regs.gs_base, 0);
    if (req.flags & FLAG_STEP && req.until == req.regs.rip) {
        res.regs = req.regs;
        res.fpu = req.fpu;
        res.stop = STOP_UNTIL;
    } else {
        arm_timer(req.timeout_ms ? req.timeout_ms : 1000);
        run_guest(req.regs.rflags & NOT_RESTORED_FLAGS);
        arm_timer(0);
    }
    sys3(NR_arch_prctl, 0x1003 /* ARCH_GET_FS */, &res.regs.fs_base, 0);
    sys3(NR_arch_prctl, 0x1004 /* ARCH_GET_GS */, &res.regs.gs_base, 0);
}

static void run_case(void) {
    u8 saved_byte = 0;
    struct region *stop_region = 0;
    memset_(&res, 0, sizeof res);
    if (!(req.flags & FLAG_STEP) && req.until != ~0ul) {
        stop_region = region_of(req.until);
        if (stop_region && *(u8 *)req.until != 0xCC) {
            if (!(stop_region->perms & 1)) make_writable(stop_region);
            saved_byte = *(u8 *)req.until;
            make_writable(stop_region);
            *(u8 *)req.until = 0xCC;
            res.patched = 1;
        }
    }
    const char *err = protect_regions();
    if (err) {
        unmap_all(req.nregions);
        setup_error(err);
        return;
    }
    enter_and_wait();
    if (res.patched) {
        make_writable(stop_region);
        *(u8 *)req.until = saved_byte;
        protect_regions();
    }
    u32 head[2] = {PROTOCOL_MAGIC, STATUS_RAN};
    write_out(head, sizeof head);
    write_out(&res, sizeof res);
    for (u32 i = 0; i < req.nregions; i++)
        if (regions[i].perms & 2) write_out((void *)regions[i].addr, regions[i].size); /* x86: writable is readable */
    flush_out();
    for (u32 i = 0; i < req.nregions; i++) kept[i] = regions[i];
    nkept = req.nregions;
}

static void serve(void) {
    u32 hello[2] = {PROTOCOL_MAGIC, PROTOCOL_VERSION};
    write_out(hello, sizeof hello);
    write_out(&(u32){sizeof(struct result)}, 4);
    flush_out();
    for (;;) {
        if (!read_exact(&req, sizeof req)) return;
        if (req.magic != PROTOCOL_MAGIC) die("bad request magic");
        if (req.nregions > MAX_REGIONS) die("too many regions");
        const char *err = load_regions();
        if (!err && (req.fpu.mxcsr & 0xffff0000u)) err = "mxcsr has reserved bits set (ldmxcsr would raise #GP)";
        if (err) {
            unmap_all(req.nregions);
            setup_error(err);
            continue;
        }
        run_case();
    }
}

void __attribute__((noreturn, used)) runner_main(void) {
    install_handlers();
    install_seccomp();
    serve();
    for (;;) sys3(NR_exit_group, 0, 0, 0);
}

/* The entry point: align the stack and call runner_main (no C library start-up code). */
__asm__(".globl _start\n_start:\n\txor %ebp, %ebp\n\tand $-16, %rsp\n\tcall runner_main\n\thlt\n");
