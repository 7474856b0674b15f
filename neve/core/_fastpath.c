/*
 * neve's compiled fast path: Unicorn hooks that answer, without entering Python,
 * what the register table already decided.  neve/core/fastpath.py builds the
 * tables and the state; the Python hooks stay the reference implementation and
 * are called from here for everything else (NEVE_FASTPATH=0 runs them alone).
 *
 *   MRS/MSR: a table per context (vEL2, EL1, EL0), indexed by the instruction's
 *     encoding and direction, says: go to Python; let the CPU execute it (native);
 *     or read/write vEL2's storage slot (a NEVE/VNCR page access or a redirect:
 *     no trap on hardware), with the register's write mask, counted; or read the
 *     system counter (instructions executed plus ticks skipped in WFI) or its
 *     virtual view (minus CNTVOFF_EL2).
 *   Before each block: nothing unless an FP access could trap now (neve/core/fptrap.py),
 *     or an interrupt waits for a PSTATE mask bit that is now clear (neve/gic/delivery.py).
 *   Each memory access while the Device-memory alignment check is on: nothing
 *     unless the access is unaligned or could be (neve/core/align.py).
 *   World switches: a register program (neve/core/cpu.py OP_*) run in one call.
 *
 * No Python API is used: the module is loaded with ctypes, and Unicorn's own
 * functions are reached through pointers the Python side stores in the state,
 * so nothing links against libunicorn.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* uc_arm64_cp_reg */
typedef struct {
    uint32_t crn, crm, op0, op1, op2;
    uint64_t val;
} cp_reg;

typedef int (*reg_fn)(void *uc, int regid, void *value);
typedef uint32_t (*sys_hook)(void *uc, int reg, const cp_reg *cp, void *data);
typedef void (*block_hook)(void *uc, uint64_t addr, uint32_t size, void *data);
typedef void (*mem_hook)(void *uc, int type, uint64_t addr, int size, int64_t value, void *data);

/* Table entries: the action in bits 0-2, ADVANCE in bit 3, the storage slot above. */
enum { SLOW = 0, NATIVE = 1, MEM = 2, REDIRECT = 3, COUNT_P = 4, COUNT_V = 5, DAIF_W = 6 };
#define ADVANCE 8u
#define SLOT_SHIFT 4
#define TABLE_ENTRIES (1u << 17)        /* 16-bit encoding, and the direction */

/* Contexts: which table applies. */
enum { CTX_VEL2 = 0, CTX_EL1 = 1, CTX_EL0 = 2 };

/* Caches the Python hooks fill: a block known to hold no FP instruction (in the
   address space `space`, the translation table base), and a load/store known not to
   need 16-byte alignment.  Direct-mapped by address. */
#define CACHE_SIZE 65536
typedef struct {
    uint64_t addr, space;
    uint32_t size, valid;
} block_entry;
typedef struct {
    uint64_t pc;
    uint32_t valid, pad;
} pc_entry;

/* Keep in step with fastpath.py's _State. */
typedef struct {
    reg_fn reg_read;            /* uc_reg_read, uc_reg_write */
    reg_fn reg_write;
    sys_hook py_mrs;            /* the Python hooks */
    sys_hook py_msr;
    block_hook py_block;
    mem_hook py_mem;
    uint16_t *table[3];         /* per context */
    uint64_t *store;            /* vEL2's storage, by slot */
    uint64_t *wmask;            /* each slot's write mask */
    int32_t reg_pc, reg_pstate; /* Unicorn's register ids */
    int32_t reg_cp, pad0;
    int32_t vel2_active;        /* vEL2 runs (hardware EL1): the vEL2 table */
    int32_t fp_want;            /* ELs (bit 0: EL0, bit 1: EL1) where an FP access could trap now */
    int32_t fp_hold;            /* running up to a known FP instruction */
    int32_t align_pending;      /* an alignment fault is being collected */
    int32_t fp_space_known;     /* fp_space holds the current TTBR0/TTBR1 */
    int32_t pad;
    uint64_t fp_space[2];
    block_entry *fp_free;       /* blocks without FP instructions */
    pc_entry *align8;           /* loads/stores that need no more than 8-byte alignment */
    const uint64_t *icount_base; /* instructions of completed emu_starts (CPU.base) */
    const uint64_t *counter;    /* Unicorn's count in the running one */
    const uint64_t *skipped;    /* ticks skipped in WFI (timer.Counter) */
    int32_t cntvoff_slot;       /* CNTVOFF_EL2's storage slot, or -1 (no EL2: offset 0) */
    int32_t pad2;
    block_hook py_irq_block;    /* the Python unmask watch */
    uint64_t irq_watch;         /* PSTATE.I/F bits masking a pending interrupt (0: none) */
    block_hook py_code;         /* the Python ERET/LDAR/STLR hooks (neve/core/eret.py) */
    const uint64_t *code_addrs; /* ... at these addresses, sorted */
    int64_t n_code;
    sys_hook py_sys;            /* the Python SYS hook */
    int (*emu_stop)(void *uc);  /* uc_emu_stop */
    uint64_t count;             /* instructions counted in the running emu_start (neve_fast_count) */
    uint64_t limit;             /* ... and where it stops */
    uint64_t code_lo, code_hi;  /* code_addrs[0], code_addrs[n_code - 1] (n_code > 0) */
    uint64_t page_counts[2];    /* vEL2 accesses made as MEM, REDIRECT */
    uint64_t hits[6];           /* answered here: by action (SLOW = sent to Python) */
    int (*uc_ctl)(void *uc, int control, ...); /* uc_ctl */
    int32_t tlb_flush;          /* uc_ctl's code for UC_CTL_TLB_FLUSH, written */
    int32_t reg_sp;             /* Unicorn's ids of SP, SP_EL0, SP_EL1 */
    int32_t reg_sp_el[2];
    int32_t irq_masked;         /* an interrupt is pending but masked by PSTATE (Interrupts.masked) */
    int32_t tlb_virtual;        /* UC_TLB_VIRTUAL: a translation may call the Python TLB-fill hook */
    int (*vmem_read)(void *uc, uint64_t addr, int prot, void *bytes, size_t size);   /* uc_vmem_read */
    uint64_t watch_lo[4];       /* the armed watchpoints' byte ranges [lo, hi) (neve/devices/debug.py) */
    uint64_t watch_hi[4];
    int32_t n_watch, pad3;
    block_hook py_el_block;     /* the PMU's level watch (neve/gic/delivery.py) */
    int32_t el_watch;           /* bit 0: report changes of the guest's level; bit 1: new EL1 code pages */
    int32_t el_last;            /* the guest's level last reported */
    uint64_t code_seen[64];     /* EL1 code pages reported (VA >> 10, plus 1), by page & 63 */
} state;

static inline int context(state *s, void *uc)
{
    uint64_t pstate;
    if (s->vel2_active)
        return CTX_VEL2;
    s->reg_read(uc, s->reg_pstate, &pstate);
    return ((pstate >> 2) & 3) == 0 ? CTX_EL0 : CTX_EL1;
}

static inline uint16_t lookup(state *s, void *uc, const cp_reg *cp, int write)
{
    uint32_t enc = (cp->op0 & 3) << 14 | (cp->op1 & 7) << 11 | (cp->crn & 15) << 7
                   | (cp->crm & 15) << 3 | (cp->op2 & 7);
    return s->table[context(s, uc)][enc << 1 | (uint32_t)write];
}

static inline uint32_t finish(state *s, void *uc, uint16_t e)
{
    if (e & ADVANCE) {          /* Unicorn does not skip this encoding by itself */
        uint64_t pc;
        s->reg_read(uc, s->reg_pc, &pc);
        pc += 4;
        s->reg_write(uc, s->reg_pc, &pc);
    }
    return 1;
}

uint32_t neve_fast_mrs(void *uc, int reg, const cp_reg *cp, void *data)
{
    state *s = data;
    uint16_t e = lookup(s, uc, cp, 0);
    unsigned act = e & 7;
    s->hits[act]++;
    if (act == NATIVE)
        return 0;
    if (act == MEM || act == REDIRECT) {
        uint64_t v = s->store[e >> SLOT_SHIFT];
        s->page_counts[act - MEM]++;
        s->reg_write(uc, reg, &v);
        return finish(s, uc, e);
    }
    if (act == COUNT_P || act == COUNT_V) {
        uint64_t v = *s->icount_base + *s->counter + *s->skipped;
        if (act == COUNT_V && s->cntvoff_slot >= 0)
            v -= s->store[s->cntvoff_slot];
        s->reg_write(uc, reg, &v);
        return finish(s, uc, e);
    }
    return s->py_mrs(uc, reg, cp, NULL);
}

uint32_t neve_fast_msr(void *uc, int reg, const cp_reg *cp, void *data)
{
    state *s = data;
    uint16_t e = lookup(s, uc, cp, 1);
    unsigned act = e & 7;
    if (act == DAIF_W)                  /* MSR DAIF: Python's only when it may unmask a pending interrupt */
        act = s->irq_masked ? SLOW : NATIVE;
    else if (act > REDIRECT)            /* only reads have other actions */
        act = SLOW;
    s->hits[act]++;
    if (act == NATIVE)
        return 0;
    if (act == MEM || act == REDIRECT) {
        unsigned slot = e >> SLOT_SHIFT;
        uint64_t m = s->wmask[slot];
        s->store[slot] = (s->store[slot] & ~m) | (cp->val & m);
        s->page_counts[act - MEM]++;
        return finish(s, uc, e);
    }
    return s->py_msr(uc, reg, cp, NULL);
}

/* SYS (DC, IC, AT, TLBI): the table's op0 = 1 entries, as a write. */
uint32_t neve_fast_sys(void *uc, int reg, const cp_reg *cp, void *data)
{
    state *s = data;
    cp_reg k = *cp;
    k.op0 = 1;
    if ((lookup(s, uc, &k, 1) & 7) == NATIVE) {
        s->hits[NATIVE]++;
        return 0;
    }
    s->hits[SLOW]++;
    return s->py_sys(uc, reg, cp, NULL);
}

/* Could `w` be an FP/SIMD, SVE or SME instruction (decode.py _is_fp: every word it
   says is one, and the FEAT_MOPS SET* forms it then excludes)? */
static inline int maybe_fp(uint32_t w)
{
    uint32_t op1 = (w >> 25) & 0xF;
    return op1 == 0x2 || (op1 == 0x0 && (w >> 31)) || (op1 & 0x7) == 0x7 || ((op1 & 0x5) == 0x4 && ((w >> 26) & 1));
}

int neve_fast_maybe_fp(uint32_t w)      /* (for the tests) */
{
    return maybe_fp(w);
}

/* A block none of whose words could be an FP instruction needs no Python: cached as
   FPTraps._block_raw caches it.  Read as Python reads it (uc_vmem_read, as an
   instruction fetch), but only where that walks the tables in C (not UC_TLB_VIRTUAL,
   whose fills are Python's); 0 when Python must look. */
static int fp_free_in_c(state *s, void *uc, uint64_t addr, uint32_t size)
{
    uint8_t buf[4096];
    if (s->tlb_virtual || !s->fp_space_known || size > sizeof buf || s->vmem_read(uc, addr, 4, buf, size))
        return 0;
    for (uint32_t i = 0; i + 4 <= size; i += 4) {
        uint32_t w = (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8 | (uint32_t)buf[i + 2] << 16
                     | (uint32_t)buf[i + 3] << 24;
        if (maybe_fp(w))
            return 0;
    }
    block_entry *e = &s->fp_free[(addr >> 2) & (CACHE_SIZE - 1)];
    e->addr = addr;
    e->size = size;
    e->space = s->fp_space[(addr >> 55) & 1];
    e->valid = 1;
    return 1;
}

static void fp_block(void *uc, uint64_t addr, uint32_t size, void *data)
{
    state *s = data;
    if (s->fp_hold || !s->fp_want)
        return;
    if (s->fp_want != 3) {
        uint64_t pstate;
        s->reg_read(uc, s->reg_pstate, &pstate);
        if (!((s->fp_want >> ((pstate >> 2) & 3)) & 1))
            return;
    }
    if (!s->fp_space_known) {   /* as FPTraps._fp_in reads it: once per regime change */
        cp_reg t0 = {2, 0, 3, 0, 0, 0}, t1 = {2, 0, 3, 0, 1, 0};     /* TTBR0_EL1, TTBR1_EL1 */
        if (!s->reg_read(uc, s->reg_cp, &t0) && !s->reg_read(uc, s->reg_cp, &t1)) {
            s->fp_space[0] = t0.val;
            s->fp_space[1] = t1.val;
            s->fp_space_known = 1;
        }
    }
    if (s->fp_space_known) {
        const block_entry *e = &s->fp_free[(addr >> 2) & (CACHE_SIZE - 1)];
        if (e->valid && e->addr == addr && e->size == size && e->space == s->fp_space[(addr >> 55) & 1])
            return;
    }
    if (fp_free_in_c(s, uc, addr, size))
        return;
    s->py_block(uc, addr, size, NULL);
}

/* While an interrupt waits for PSTATE.I/F: Python once a watched bit is clear. */
static void irq_block(void *uc, uint64_t addr, uint32_t size, void *data)
{
    state *s = data;
    uint64_t pstate;
    if (!s->irq_watch)
        return;
    s->reg_read(uc, s->reg_pstate, &pstate);
    if ((pstate & s->irq_watch) != s->irq_watch)
        s->py_irq_block(uc, addr, size, NULL);
}

/* The PMU's level watch: Python when the guest's exception level changed since the
   last block (vEL2 is level 2), and with bit 1, when EL1 runs code in a page not
   reported yet (neve/core/eret.py hooks its ERETs at that VA: EXC_RETURN counts them).
   A level changes only by an exception entry or return, and an ERET ends its block. */
static void el_block(void *uc, uint64_t addr, uint32_t size, void *data)
{
    state *s = data;
    uint64_t pstate;
    int32_t el;
    if (!s->el_watch)
        return;
    if (s->vel2_active)
        el = 2;
    else {
        s->reg_read(uc, s->reg_pstate, &pstate);
        el = (pstate >> 2) & 3;
    }
    if (el != s->el_last) {
        s->el_last = el;
        s->py_el_block(uc, addr, size, NULL);
        return;
    }
    if ((s->el_watch & 2) && el == 1 && !s->vel2_active && !s->tlb_virtual) {
        uint64_t first = addr >> 10, last = (addr + size - 1) >> 10;
        if (s->code_seen[first & 63] != first + 1 || s->code_seen[last & 63] != last + 1) {
            s->code_seen[first & 63] = first + 1;
            s->code_seen[last & 63] = last + 1;
            s->py_el_block(uc, addr, size, NULL);
        }
    }
}

/* Before each block, the checks in one hook, each once its Python side is there:
   Unicorn calls a single block hook directly, but walks its list of them
   (helper_uc_tracecode) before every block once there are two. */
void neve_fast_blocks(void *uc, uint64_t addr, uint32_t size, void *data)
{
    state *s = data;
    if (s->py_block)
        fp_block(uc, addr, size, data);
    if (s->py_irq_block)
        irq_block(uc, addr, size, data);
    if (s->py_el_block)
        el_block(uc, addr, size, data);
}

/* One code hook for all the instructions neve/core/eret.py watches (a hook per
   address would make Unicorn walk the whole list on every instruction). */
void neve_fast_code(void *uc, uint64_t addr, uint32_t size, void *data)
{
    state *s = data;
    int64_t lo = 0, hi = s->n_code - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        uint64_t a = s->code_addrs[mid];
        if (a == addr) {
            s->py_code(uc, addr, size, NULL);
            return;
        }
        if (a < addr)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
}

/* The instruction counter, in place of Unicorn's own (emu_start's count=N, which
   registers hook_count_cb in front of every other code hook): the same count and
   the same stop (before the instruction that would exceed the limit, no later hook
   called for it), and the ERET/LDAR/STLR check of neve_fast_code in the same call,
   so that Unicorn walks a list of one code hook on every instruction, not two. */
void neve_fast_count(void *uc, uint64_t addr, uint32_t size, void *data)
{
    state *s = data;
    if (++s->count > s->limit) {
        s->emu_stop(uc);
        return;
    }
    if (s->n_code && addr - s->code_lo <= s->code_hi - s->code_lo)
        neve_fast_code(uc, addr, size, data);
}

void neve_fast_mem(void *uc, int type, uint64_t addr, int size, int64_t value, void *data)
{
    state *s = data;
    for (int32_t i = 0; i < s->n_watch; i++) {
        if (addr < s->watch_hi[i] && addr + (uint64_t)size > s->watch_lo[i]) {
            s->py_mem(uc, type, addr, size, value, NULL);      /* a watchpoint may match */
            return;
        }
    }
    /* Aligned, and not the second half of a 128-bit access that may be unaligned
       (Unicorn splits those into two 64-bit accesses): nothing to check. */
    if (!(addr & (uint64_t)(size - 1)) && !s->align_pending) {
        uint64_t pc;
        const pc_entry *e;
        if (size != 8 || (addr & 15) != 8)
            return;
        s->reg_read(uc, s->reg_pc, &pc);
        e = &s->align8[(pc >> 2) & (CACHE_SIZE - 1)];
        if (e->valid && e->pc == pc)
            return;
    }
    s->py_mem(uc, type, addr, size, value, NULL);
}

/* Register programs (neve/core/cpu.py RegOps, which runs the same list in Python):
   a world switch's moves between the CPU and vEL2's storage slots in one call.
   An op's slot holds the value to write or receives the value read. */
enum { OP_CP_SAVE = 0, OP_CP_LOAD, OP_REG_SAVE, OP_REG_LOAD, OP_SP_SAVE, OP_SP_LOAD, OP_PSTATE, OP_TLB_FLUSH };
typedef struct {
    uint32_t kind;
    uint32_t crn, crm, op0, op1, op2;   /* OP_CP_*: the encoding */
    int32_t reg;                        /* OP_REG_*: Unicorn's id; OP_SP_*: n of SP_ELn */
    int32_t slot;
} reg_op;

/* The stack pointer in use for PSTATE `ps`: 0 (SP_EL0) or the EL's own. */
static inline int sp_index(uint64_t ps)
{
    return (ps & 1) ? (int)((ps >> 2) & 3) : 0;
}

/* CPU.set_pstate: bank the current SP, load the new level's, write PSTATE, and make
   Unicorn re-derive its cached flags (any CP register write does) when EL or the
   SP selection changed. */
static int set_pstate(state *s, void *uc, uint64_t new)
{
    uint64_t old, cur, other;
    int oi, ni, err = 0;
    err |= s->reg_read(uc, s->reg_pstate, &old);
    oi = sp_index(old);
    ni = sp_index(new);
    if (oi != ni) {
        err |= s->reg_read(uc, s->reg_sp, &cur);
        err |= s->reg_read(uc, s->reg_sp_el[ni != 0], &other);
        err |= s->reg_write(uc, s->reg_sp_el[oi != 0], &cur);
        err |= s->reg_write(uc, s->reg_sp, &other);
    }
    new &= 0xFFFFFFFFu;
    err |= s->reg_write(uc, s->reg_pstate, &new);
    if ((old ^ new) & (0x1Fu | 1u << 21 | 1u << 9)) {   /* M, SS, D: QEMU's cached hflags (cpu.py) */
        cp_reg c = {13, 0, 3, 3, 3, 0};          /* TPIDRRO_EL0 */
        err |= s->reg_read(uc, s->reg_cp, &c);
        err |= s->reg_write(uc, s->reg_cp, &c);
    }
    return err;
}

/* 0, or 1 + the index of the op Unicorn refused. */
int neve_fast_reg_ops(state *s, void *uc, const reg_op *ops, int n)
{
    for (int i = 0; i < n; i++) {
        const reg_op *o = &ops[i];
        uint64_t *v = &s->store[o->slot];
        int err = 0;
        switch (o->kind) {
        case OP_CP_SAVE:
        case OP_CP_LOAD: {
            cp_reg c = {o->crn, o->crm, o->op0, o->op1, o->op2, o->kind == OP_CP_LOAD ? *v : 0};
            if (o->kind == OP_CP_LOAD) {
                err = s->reg_write(uc, s->reg_cp, &c);
            } else {
                err = s->reg_read(uc, s->reg_cp, &c);
                *v = c.val;
            }
            break;
        }
        case OP_REG_SAVE:
            err = s->reg_read(uc, o->reg, v);
            break;
        case OP_REG_LOAD:
            err = s->reg_write(uc, o->reg, v);
            break;
        case OP_SP_SAVE:
        case OP_SP_LOAD: {
            uint64_t ps;
            int id;
            err = s->reg_read(uc, s->reg_pstate, &ps);
            id = sp_index(ps) == o->reg ? s->reg_sp : s->reg_sp_el[o->reg != 0];
            err |= o->kind == OP_SP_SAVE ? s->reg_read(uc, id, v) : s->reg_write(uc, id, v);
            break;
        }
        case OP_PSTATE:
            err = set_pstate(s, uc, *v);
            break;
        case OP_TLB_FLUSH:
            err = s->uc_ctl(uc, s->tlb_flush);
            break;
        default:
            err = 1;
        }
        if (err)
            return i + 1;
    }
    return 0;
}

/* neve/core/eret.py's scan of RAM for the words it hooks, 4-byte aligned, in
   [lo, hi) of `ram`: ERET/ERETAA/ERETAB (kind 0) and the LDAR/STLR forms its regular
   expression matches (kind 1: bytes 1-3 of the word are 0x80-0xff, 0x80-0x9f or
   0xc0-0xdf, and 0x48/0x88/0xc8).  Offsets and kinds into `out`/`kinds`, at most
   `max`; returns how many (== max: call again from the last one + 4). */
#ifdef __SSE2__
/* Does any of the four words at p (16-byte aligned) have one of the top bytes sought? */
static inline int maybe_sought(const uint8_t *p)
{
    __m128i v = _mm_load_si128((const __m128i *)p);
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xD6)),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x48))),
                               _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0x88)),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xC8))));
    return _mm_movemask_epi8(hit) & 0x8888;          /* byte 3 of each word */
}
#endif

int64_t neve_fast_scan(const uint8_t *ram, uint64_t lo, uint64_t hi, uint64_t *out, uint8_t *kinds, int64_t max)
{
    int64_t n = 0;
    for (uint64_t i = (lo + 3) & ~(uint64_t)3; i + 4 <= hi && n < max; i += 4) {
#ifdef __SSE2__
        /* Sixteen bytes at a time while none of their words can be one (RAM is
           mmap'ed, so page-aligned: `ram + i` is 16-byte aligned when i is). */
        if (!(i & 15) && !(((uintptr_t)ram) & 15)) {
            while (i + 16 <= hi && !maybe_sought(ram + i))
                i += 16;
            if (i + 4 > hi)
                break;
        }
#endif
        uint8_t b3 = ram[i + 3];
        /* Every word sought has one of these top bytes: most words stop here. */
        if (b3 != 0xD6 && b3 != 0x48 && b3 != 0x88 && b3 != 0xC8)
            continue;
        uint32_t w = (uint32_t)ram[i] | (uint32_t)ram[i + 1] << 8 | (uint32_t)ram[i + 2] << 16
                     | (uint32_t)b3 << 24;
        uint8_t b1 = ram[i + 1], b2 = ram[i + 2];
        if (w == 0xD69F03E0u || w == 0xD69F0BFFu || w == 0xD69F0FFFu) {
            out[n] = i;
            kinds[n++] = 0;
        } else if (b1 >= 0x80 && (b2 & 0xA0) == 0x80 && b3 != 0xD6) {
            out[n] = i;
            kinds[n++] = 1;
        }
    }
    return n;
}

/* Instruction-cache maintenance of [lo, hi): forget the cached blocks that overlap
   it (a block starts at most a page before) and the loads/stores in it. */
void neve_fast_forget(state *s, uint64_t lo, uint64_t hi)
{
    uint64_t start = lo >= 4096 ? lo - 4096 : 0;
    for (uint64_t a = start & ~(uint64_t)3; a < hi; a += 4) {
        block_entry *e = &s->fp_free[(a >> 2) & (CACHE_SIZE - 1)];
        if (e->valid && e->addr == a && e->addr < hi && e->addr + e->size > lo)
            e->valid = 0;
        if (a >= lo) {
            pc_entry *p = &s->align8[(a >> 2) & (CACHE_SIZE - 1)];
            if (p->valid && p->pc == a)
                p->valid = 0;
        }
    }
}

size_t neve_fast_state_size(void)
{
    return sizeof(state);
}

/* A module so that pip builds it as an extension; it has no Python functions. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpath",
                                    "neve's compiled hooks (loaded with ctypes)", -1, NULL};

PyMODINIT_FUNC PyInit__fastpath(void)
{
    return PyModule_Create(&module);
}
