"""C backend, the split kernel's driver (c_split): the code that is the same for every
split kernel, written once here and compiled once per compiler and flag set into a
cached object that every split build links (c_build), so that a split build
compiles only its parts.

The driver takes what used to be compiled into each kernel as constants as
arguments instead: the parts (a table of function pointers), the tape's width XC_W,
the block and whether the parts run vector by vector. It is

- xc_split_run: the batch over blocks of points, an OpenMP team sharing them (the
  gather of the inputs into the tape, the parts in turn, the scatter of the outputs,
  past the cache where they are large: XC_STREAM_FROM);
- xc_split_point: one point, on one frame of the tape kept per thread between calls
  (c_split.point_entry says what that gave).

Each kernel keeps, in its last unit of parts, small functions of its own (`entries`):
the batch kernel with its signature of pointers and strides, which fills the tables
and calls xc_split_run, the one-point entry, which calls xc_split_point, and (for
Jacobians and Hessians) the batch entry of the extension's array calls, whose arrays
are xc_split_run's tables as they are.

The source of a split kernel still holds the driver, after DRIVER_MARK, so that the
joined text is one valid translation unit (`exprc export`); there its functions are
static. Compiled unit by unit (c_split.split_units defines XC_UNITS in each), they are
global with hidden visibility: each kernel library links its own copy of the object,
whose statics (the tape's pthread key) are then the library's own, as before.

Measured on the 6-link pendulum's Jacobian (gcc 12, this 2-core machine), which was
one unit of parts and the driver's unit, two compiler runs of 0.26-0.29 and 0.18-0.21 s
wall in parallel (load 0.8), now the first only. Cold builds in fresh caches holding
the driver object, each tree in its own process, the two taking turns (11 rounds, load
3.8): the C compiler's CPU min / median 0.229 / 0.303 s before, 0.176 / 0.223 s now;
wall 0.51 / 0.78 against 0.40 / 0.55 s. Beside symengine's Lambdify(backend="llvm")
of the same Jacobian in the same process (3 x 5 rounds, load 2.1-2.3): the build's wall
min / median 0.26-0.36 / 0.26-0.41 s before (4.6-5.6x symengine's, medians), 0.22-0.30
/ 0.25-0.35 s now (4.2-4.7x). Results bit for bit the same, the kernel as fast (10^4
points, min of 21: 1.12 against 1.07 ms; J.at 1.30 against 1.29 us). The first split
build in a cache compiles the object alongside its parts: 0.247 / 0.309 s of CPU
before, 0.279 / 0.325 s (7 rounds). (The driver's own CPU by its flags: c_build.)
"""

from __future__ import annotations

DRIVER_MARK = "/* exprcompiler: the driver of split kernels (backends/c_driver.py) */"

# The lanes of the vectors of doubles that gcc's own vectorizer uses for the target
# (dtypes' float rewrite doubles them): 256-bit vectors from AVX on, AVX-512 included,
# since gcc prefers 256-bit vectors there (-mprefer-vector-width=256 is its default for
# -march=native on the AVX-512 CPUs it knows), so that its `omp simd` loops call the
# same libmvec variants as the vector-extension parts (c_lanes.MVEC): the same bits.
# 512-bit vectors do not pay on Rocket Lake (gcc 12, libmvec's _ZGVeN8v_* in both
# kinds of parts, -mprefer-vector-width=512, XC_VL 8; one thread, process CPU, medians
# of 5, load 2-6): pendulum Jacobians at 10^4 points, out= arrays, 10 links 271-288 ->
# 296-320 ns a point (the parts as slow and the tape's frames twice as large), 6 links
# 94-95 -> 95-98, 3 links (one function) 26-27 -> 29; the 10-link one-point call
# J.at 1.19-1.22 -> 1.81-1.82 us (a vector of the point in every lane); gcc's CPU on
# the 10-link parts the same (0.247 against 0.244 s).
VL_LINES = ["#if defined(__AVX__)", "#define XC_VL 4", "#else", "#define XC_VL 2", "#endif"]

# A kernel's entries zero the upper halves of the vector registers before they return
# (vzeroupper), as the x86-64 convention expects of code that used 256-bit or wider
# vectors. gcc does so itself only from -O2 (its pass needs -fexpensive-optimizations),
# and the split kernels' units and the large one-function kernels are -O1. Left dirty,
# every SSE instruction the process runs afterwards (CPython's float arithmetic,
# symengine's LLVM code, any library built for plain x86-64) waits on the upper halves:
# symengine's Lambdify of the 10-link pendulum's Jacobian ran 10^4 states in 17.6 ms
# of CPU after one call of the C kernel against 5.3 ms before it (Rocket Lake, gcc 12;
# XGETBV(1) showed the AVX state in use; one vzeroupper brought it back to 5.3 ms).
# Our own call layer is such code too: the 10-link one-point calls J.at 1.39-1.44 ->
# 1.19-1.22 us, J(**floats) 1.77-1.78 -> 1.53 us (process CPU, medians of 7, load 5).
# -fexpensive-optimizations at -O1 would do it too, for 16% more of gcc's CPU on the
# 10-link Jacobian's parts (0.247 -> 0.288 s, medians of 5).
CLEAN_UPPER = ["#if defined(__AVX__) && defined(__GNUC__)",
               "#define XC_CLEAN_UPPER() __builtin_ia32_vzeroupper()",
               "#else", "#define XC_CLEAN_UPPER() ((void)0)", "#endif"]

# What a kernel's units see of the driver (in the prelude of every unit) and what the
# driver itself starts with: guarded, so the joined text sees it once.
API = [
    "#ifndef XC_DRIVER_API",
    "#define XC_DRIVER_API",
    "#include <stddef.h>",
    "#ifndef XC_VL", *VL_LINES, "#endif",
    "#if !defined(XC_UNITS)",
    "#define XC_SHARED static  /* the joined text, one translation unit */",
    "#elif defined(__GNUC__)",
    '#define XC_SHARED __attribute__((visibility("hidden")))',
    "#else",
    "#define XC_SHARED",
    "#endif",
    "/* a part: the tape, and the block's points (a loop inside) or its vector j */",
    "typedef void (*xc_part_fn)(double *restrict, ptrdiff_t);",
    "XC_SHARED int xc_split_run(ptrdiff_t n, int threads, const double *const *ins, const ptrdiff_t *sts,",
    "                           int n_in, double *const *outs, const ptrdiff_t *osts, int n_out,",
    "                           const xc_part_fn *parts, int n_parts, ptrdiff_t w, ptrdiff_t block,",
    "                           int per_vector);",
    "XC_SHARED int xc_split_point(const double *in, double *out, int n_in, int n_out,",
    "                             const xc_part_fn *parts, int n_parts, ptrdiff_t w, int per_vector);",
    "#endif"]

_BODY = [
    "#include <stdint.h>",
    "#include <stdlib.h>",
    *CLEAN_UPPER,
    "",
    "/* points i0 ... i0 + m - 1 of every input into the first slots of their frames of w",
    "   slots; the lanes m ... bs - 1 repeat point m - 1 (values the parts compute and",
    "   nobody stores) */",
    "static void xc_gather(double *restrict t, ptrdiff_t w, const double *const *ins, const ptrdiff_t *sts,",
    "                      int n_in, ptrdiff_t i0, ptrdiff_t m, ptrdiff_t bs)",
    "{",
    "    for (ptrdiff_t j = 0; j < bs; ++j) {",
    "        const ptrdiff_t i = i0 + (j < m ? j : m - 1);",
    "        double *slot = t + (j / XC_VL) * (w * XC_VL) + j % XC_VL;",
    "        for (int k = 0; k < n_in; ++k)",
    "            slot[k * XC_VL] = ins[k][i * sts[k]];",
    "    }",
    "}",
    "",
    # The scatter was half the time of the pendulum Jacobians' split kernels (perf: 49%
    # at 20 links, 56% at 10, nearly all on its stores to the caller's block, which miss
    # the cache), a store per output and point. Four outputs of a point gathered from
    # four slots into one vector and stored at once (a quarter of the stores, so more
    # lines in flight) gave, same bits, one thread, 10^4 points, thread CPU, medians
    # (benchmarks/bench_c_split_gap.py from C, 31 rounds, load 2.6: 20 links 16.36 ->
    # 12.75 ms, the one-function kernel 12.95; 10 links 3.83 -> 3.75 ms; callgrind 9,597
    # -> 6,890 and 2,806 -> 2,038 instructions a point). Through the calls users make, one
    # process, 15 rounds (10 links: 21), load 4.3-4.5, before -> after: 20 links
    # J(**states) 19.6-19.9 -> 18.0-18.4 ms, J(**states, out=) 16.3 -> 13.1 ms; 10 links
    # 4.28 -> 3.96-4.00 and 4.29 -> 4.00-4.03 ms. A 4 x 4 transpose by __builtin_shuffle
    # (gcc only) ran no faster (13.23 against 12.98 ms at 20 links; 5,151 instructions).
    "#if defined(__GNUC__)",
    "typedef double xc_d4 __attribute__((vector_size(sizeof(double) * 4), aligned(sizeof(double))));",
    "#endif",
    "",
    "/* r outputs of the XC_VL points of the frame's slots `f` to the points' rows o,",
    "   o + s, ...: four outputs of a point a store */",
    "static void xc_scatter_vector(const double *restrict f, double *restrict o, ptrdiff_t s, int r)",
    "{",
    "    int q = 0;",
    "#if defined(__GNUC__)",
    "    for (; q + 4 <= r; q += 4)",
    "        for (int l = 0; l < XC_VL; ++l)",
    "            *(xc_d4 *)(o + l * s + q) = (xc_d4){f[q * XC_VL + l], f[(q + 1) * XC_VL + l],",
    "                                              f[(q + 2) * XC_VL + l], f[(q + 3) * XC_VL + l]};",
    "#endif",
    "    for (; q < r; ++q)",
    "        for (int l = 0; l < XC_VL; ++l)",
    "            o[l * s + q] = f[q * XC_VL + l];",
    "}",
    "",
    # A block's outputs written past the cache (non-temporal stores, x86-64's movnti):
    # a store that misses the cache first reads its line (RFO), so plain stores moved
    # each output byte over the memory bus twice, and the 10-link pendulum's Jacobian
    # spent most of its time there (perf: 45% of the call in the scatter's stores,
    # 11% in the parts). Where a run of outputs fills its points' rows (a Jacobian's or
    # Hessian's block, stride = run), the rows of a block are one stretch of memory,
    # written here point by point, in order, 8 bytes a store, which the CPU gathers
    # into whole lines. Only for outputs of XC_STREAM_FROM bytes or more, which would
    # not stay in the cache for the caller anyway, and only into pages already in
    # memory: on the first touch of a page the OS zeroes it through the cache, and
    # non-temporal stores then went to lines the cache held (xc_resident).
    # Pendulum Jacobians into out= arrays, one thread, process CPU a point, medians of
    # 5 (Rocket Lake, gcc 12, two runs each, load 4.5), plain -> streamed at every size:
    # 10 links (253 outputs, 2 KB a point), 2,000 points 270-299 -> 266-269 ns, 4,000
    # 269-376 -> 259-264, 6,000 (11.6 MB) 554-624 -> 269-271; 6 links (105 outputs),
    # 5,000 93-99 -> 94, 10^4 92-94 -> 93-94, 2*10^4 (16 MB) 253 -> 93-96; in the cache
    # (10 links, 256 points) 241 -> 284. New arrays mapped afresh every call (10 links,
    # 3*10^4 points, 58 MB) 649 -> 833 streamed: hence xc_resident. Through J(**states)
    # at 10^4 points: 10 links 6.0-6.3 -> 2.6-2.8 ms (symengine 5.6-5.8 ms); 20 links
    # out= 16.7-17.4 -> 11.0-11.4 ms, new arrays (72 MB, not resident) 24.5-24.8 ms
    # both. The same rows with plain stores point by point: 10 links, 10^4 points 4.6 ms
    # against 6.1 ms by xc_scatter_vector and 2.9 ms streamed. The driver's compile (once
    # per cache): 61-63 -> 72-75 ms of gcc's CPU (medians of 9).
    "/* the outputs from k on side by side in memory at one stride: how many */",
    "static int xc_run(double *const *outs, const ptrdiff_t *osts, int n_out, int k)",
    "{",
    "    int r = 1;",
    "    while (k + r < n_out && osts[k + r] == osts[k]",
    "           && (uintptr_t)outs[k + r] == (uintptr_t)outs[k] + r * sizeof(double))",
    "        ++r;",
    "    return r;",
    "}",
    "",
    "#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)",
    "#define XC_STREAMS",
    "#ifndef XC_STREAM_FROM",
    "#define XC_STREAM_FROM (4 << 20)",
    "#endif",
    "/* r outputs of the XC_VL points of the frame's slots `f` to their rows o, o + r, ...",
    "   (one stretch of memory), in order, past the cache */",
    "static void xc_scatter_stream(const double *restrict f, double *restrict o, int r)",
    "{",
    "    for (int l = 0; l < XC_VL; ++l)",
    "        for (int q = 0; q < r; ++q)",
    "            if (sizeof(double) == 8) {  /* (a float kernel's text says float here) */",
    "                const union { double d; long long i; } u = {f[q * XC_VL + l]};",
    "                __builtin_ia32_movnti64((long long *)(o + l * r + q), u.i);",
    "            } else {",
    "                const union { double d; int i; } u = {f[q * XC_VL + l]};",
    "                __builtin_ia32_movnti((int *)(o + l * r + q), u.i);",
    "            }",
    "}",
    "",
    "#if defined(__linux__)",
    "int mincore(void *, size_t, unsigned char *);",
    "#endif",
    "/* whether the runs of outputs that fill their rows lie in pages already in memory */",
    "static int xc_resident(double *const *outs, const ptrdiff_t *osts, int n_out, ptrdiff_t n)",
    "{",
    "#if defined(__linux__)",
    "    for (int k = 0; k < n_out; ) {",
    "        const int r = xc_run(outs, osts, n_out, k);",
    "        if (osts[k] == r) {",
    "            uintptr_t lo = (uintptr_t)outs[k] & ~(uintptr_t)4095;",
    "            const uintptr_t hi = (uintptr_t)(outs[k] + n * r);",
    "            unsigned char in[256];",
    "            while (lo < hi) {",
    "                const size_t pages = (hi - lo + 4095) / 4096 < 256 ? (hi - lo + 4095) / 4096 : 256;",
    "                if (mincore((void *)lo, pages * 4096, in) != 0)",
    "                    return 0;",
    "                for (size_t p = 0; p < pages; ++p)",
    "                    if (!(in[p] & 1))",
    "                        return 0;",
    "                lo += pages * 4096;",
    "            }",
    "        }",
    "        k += r;",
    "    }",
    "    return 1;",
    "#else",
    "    (void)outs; (void)osts; (void)n_out; (void)n;",
    "    return 0;",
    "#endif",
    "}",
    "#endif",
    "",
    "/* the outputs' slots (from `first`) to the m points from i0: a run of outputs side",
    "   by side in memory at one stride (a Jacobian's block) is stored point by point,",
    "   a whole vector of points at a time (xc_scatter_vector), or past the cache where",
    "   it fills its rows (`stream`, see XC_STREAM_FROM) */",
    "static void xc_scatter(const double *restrict t, ptrdiff_t w, int first, double *const *outs,",
    "                       const ptrdiff_t *osts, int n_out, ptrdiff_t i0, ptrdiff_t m, int stream)",
    "{",
    "    (void)stream;",
    "    for (int k = 0; k < n_out; ) {",
    "        const int r = xc_run(outs, osts, n_out, k);",
    "        double *o = outs[k] + i0 * osts[k];",
    "        const ptrdiff_t s = osts[k];",
    "        ptrdiff_t j = 0;",
    "#ifdef XC_STREAMS",
    "        if (stream && s == r)",
    "            for (; j + XC_VL <= m; j += XC_VL)",
    "                xc_scatter_stream(t + j * w + (first + k) * XC_VL, o + j * s, r);",
    "#endif",
    "        for (; j + XC_VL <= m; j += XC_VL)",
    "            xc_scatter_vector(t + j * w + (first + k) * XC_VL, o + j * s, s, r);",
    "        for (; j < m; ++j) {",
    "            const double *slot = t + (j / XC_VL) * (w * XC_VL) + (first + k) * XC_VL + j % XC_VL;",
    "            for (int q = 0; q < r; ++q)",
    "                o[j * s + q] = slot[q * XC_VL];",
    "        }",
    "        k += r;",
    "    }",
    "}",
    "",
    "/* the parts in turn on the tape's block of bs points: each over the block, or each",
    "   vector by vector (`per_vector`: the vector-extension parts) */",
    "static void xc_parts(double *t, ptrdiff_t bs, const xc_part_fn *parts, int n_parts, int per_vector)",
    "{",
    "    for (int c = 0; c < n_parts; ++c) {",
    "        if (!per_vector)",
    "            parts[c](t, bs);",
    "        else",
    "            for (ptrdiff_t j = 0; j < bs; j += XC_VL)",
    "                parts[c](t, j);",
    "    }",
    "}",
    "",
    "/* n points: blocks of `block` points (whole vectors) over an OpenMP team, each thread",
    "   with a tape of a frame of w slots for each vector of its block; -1 if a tape cannot",
    "   be allocated */",
    "XC_SHARED int xc_split_run(ptrdiff_t n, int threads, const double *const *ins, const ptrdiff_t *sts,",
    "                           int n_in, double *const *outs, const ptrdiff_t *osts, int n_out,",
    "                           const xc_part_fn *parts, int n_parts, ptrdiff_t w, ptrdiff_t block,",
    "                           int per_vector)",
    "{",
    "    int failed = 0, stream = 0;",
    "    if (n <= 0) return 0;",
    "#ifdef XC_STREAMS",
    "    stream = (double)n * n_out * sizeof(double) >= XC_STREAM_FROM && xc_resident(outs, osts, n_out, n);",
    "#endif",
    "    (void)threads;  /* unused in a build without OpenMP */",
    "    #pragma omp parallel num_threads(threads) if(threads > 1) reduction(|: failed)",
    "    {",
    # from a cache line's start: a vector never straddles two lines (at 10^5
    # operations, 0.7-0.8x the time with malloc's 16-byte alignment)
    "        void *mem = malloc(sizeof(double) * w * block + 64);",
    "        double *t = mem ? (double *)(((uintptr_t)mem + 63) & ~(uintptr_t)63) : NULL;",
    "        failed = t == NULL;",
    "        #pragma omp for schedule(static)",
    "        for (ptrdiff_t i0 = 0; i0 < n; i0 += block) {",
    "            const ptrdiff_t m = n - i0 < block ? n - i0 : block;",
    "            /* m rounded up to whole vectors: the lanes past m repeat point m - 1 */",
    "            const ptrdiff_t bs = (m + XC_VL - 1) / XC_VL * XC_VL;",
    "            if (t == NULL) continue;",
    "            xc_gather(t, w, ins, sts, n_in, i0, m, bs);",
    "            xc_parts(t, bs, parts, n_parts, per_vector);",
    "            xc_scatter(t, w, n_in, outs, osts, n_out, i0, m, stream);",
    "        }",
    "#ifdef XC_STREAMS",
    "        if (stream)  /* the streamed stores seen by every thread after the team's end */",
    "            __builtin_ia32_sfence();",
    "#endif",
    "        XC_CLEAN_UPPER();  /* in every thread of the team (see CLEAN_UPPER) */",
    "        free(mem);",
    "    }",
    "    return failed ? -1 : 0;",
    "}",
    "",
    # The one-point entry's tape, kept per thread between calls: a pthread key whose
    # destructor (free, in libc: never unloaded with the kernel) frees a thread's tape
    # when it exits. (A `__thread` pointer left one tape behind per exiting thread.) One
    # key per loaded library whose entry is called, never deleted (CPython never unloads
    # an extension; deleting it in a library destructor would race threads still
    # calling); where pthread_key_create fails (glibc has 1,024 keys) or there are no
    # POSIX threads, the tape is malloc'd per call. The tape records its size in its
    # first double's place: a library's kernels share the key.
    "#if defined(__unix__) || defined(__APPLE__)",
    "#include <pthread.h>",
    "#define XC_TAPE_KEPT",
    "static pthread_key_t xc_tape_key;",
    "static int xc_tape_keyed;  /* 0: no key (pthread_key_create failed): a tape per call */",
    "static pthread_once_t xc_tape_once = PTHREAD_ONCE_INIT;",
    "static void xc_tape_key_make(void) { xc_tape_keyed = pthread_key_create(&xc_tape_key, free) == 0; }",
    "#endif",
    "",
    "/* one point: input k in in[k] to every lane of one vector, the parts called once",
    "   each on one frame, output k to out[k] (c_split.point_entry) */",
    "XC_SHARED int xc_split_point(const double *in, double *out, int n_in, int n_out,",
    "                             const xc_part_fn *parts, int n_parts, ptrdiff_t w, int per_vector)",
    "{",
    "    /* a size_t, then the frame from a line */",
    "    const size_t size = sizeof(double) * w * XC_VL + 128;",
    "    void *mem = NULL;",
    "    int kept = 0;",
    "#ifdef XC_TAPE_KEPT",
    "    if (pthread_once(&xc_tape_once, xc_tape_key_make) == 0 && xc_tape_keyed) {",
    "        mem = pthread_getspecific(xc_tape_key);",
    "        kept = 1;",
    "        if (mem != NULL && *(size_t *)mem < size) {  /* a smaller kernel's */",
    "            free(mem);",
    "            mem = NULL;",
    "            if (pthread_setspecific(xc_tape_key, NULL) != 0) kept = 0;",
    "        }",
    "    }",
    "#endif",
    "    if (mem == NULL) {",
    "        mem = malloc(size);",
    "        if (mem == NULL) return -1;",
    "        *(size_t *)mem = size;",
    "#ifdef XC_TAPE_KEPT",
    "        if (kept && pthread_setspecific(xc_tape_key, mem) != 0) kept = 0;",
    "#endif",
    "    }",
    "    double *t = (double *)(((uintptr_t)mem + 64) & ~(uintptr_t)63);",
    "    for (int k = 0; k < n_in; ++k)",
    "        for (int j = 0; j < XC_VL; ++j)",
    "            t[k * XC_VL + j] = in[k];",
    "    for (int c = 0; c < n_parts; ++c)",
    "        parts[c](t, per_vector ? 0 : XC_VL);",
    "    for (int k = 0; k < n_out; ++k)",
    "        out[k] = t[(n_in + k) * XC_VL];",
    "    XC_CLEAN_UPPER();",
    "    if (!kept) free(mem);",
    "    return 0;",
    "}"]

# The driver as it ends every split kernel's source: the same text for every kernel
# (the object's cache key hashes it), after DRIVER_MARK.
DRIVER = "\n".join([DRIVER_MARK, *API, *_BODY]) + "\n"


def entries(func_name: str, decl: str, packed_decl: str, n_in: int, n_out: int, parts: int,
            vector: bool, table, batch_decl: str = "") -> list[str]:
    """The lines of a kernel's own entries (see the top), in its last unit of parts:
    the batch kernel `decl`, the one-point `packed_decl` and, where `batch_decl` is
    given, the batch entry for the extension's array calls (c_entry.batch_entry's
    declaration). The batch kernel is -O0 under gcc (XC_DRIVER): it only fills tables,
    and at -O1 gcc took 2.8 s of CPU over the tables of the 20-link pendulum's 1,806
    pointer and stride parameters (0.05 s at -O0). The batch entry's arrays are the
    driver's tables already: it calls the driver itself, not the batch kernel with
    every pointer and stride spelled out (which gcc then packs back into the tables;
    about 5 ms of the 6-link Jacobian's unit)."""
    per_vector = "0" if vector else "1"
    fns = f"{func_name}_parts"

    def run(ins: str, sts: str, outs: str, osts: str) -> list:
        return [f"    return xc_split_run(n, threads, {ins}, {sts}, {n_in}, {outs}, {osts}, {n_out}, {fns}, {parts}, XC_W,",
                f"                        XC_BLOCK, {per_vector});"]

    batch = ["", "/* the batch, every pointer and stride in an array (backends/c_entry.py's run_entry) */",
             batch_decl.removesuffix(";"), "{", *run("in", "st", "out", "os"), "}"] if batch_decl else []
    return ["", f"static const xc_part_fn {fns}[] = {{{table([f'{func_name}_part{c}' for c in range(parts)])}}};",
            "", "XC_DRIVER " + decl, "{",
            f"    const double *const ins[] = {{{table([f'in{k}' for k in range(n_in)])}}};",
            f"    const ptrdiff_t sts[] = {{{table([f'st{k}' for k in range(n_in)])}}};",
            f"    double *const outs[] = {{{table([f'out{k}' for k in range(n_out)])}}};",
            f"    const ptrdiff_t osts[] = {{{table([f'os{k}' for k in range(n_out)])}}};",
            *run("ins", "sts", "outs", "osts"),
            "}", "",
            "/* one point: input k in in[k], output k to out[k] (c_split.point_entry) */",
            packed_decl, "{",
            f"    return xc_split_point(in, out, {n_in}, {n_out}, {fns}, {parts}, XC_W, {per_vector});",
            "}", *batch]
