"""`ky.dot` on cpu: register-blocked micro-kernels in C, the vector ISA chosen by the C compiler.

`C[MxN] = Cin + A[MxK] @ B[KxN]` (static shapes; `Cin` may be `C`: the dot then accumulates in
place; no `Cin` (NULL): C starts at zero). C and Cin are row-major tile arrays; A is addressed
through two strides (element (i, k) at A[i*lda + k*acs]) and B through its row offsets (row k at
B + k*ldb, or B + table[k] in the "r" family), with contiguous columns: so A and B may be the
emitter's tile arrays or the caller's memory, read in place (direct.py). One C source serves every target: the ISA header
below picks the vector width and the register blocking from the compiler's predefined macros
(`-march=native` decides what they are), so nothing here assumes the machine.

| path      | macros                    | vector   | MR x NR (floats), per k: loads + FMAs        |
|-----------|---------------------------|----------|----------------------------------------------|
| avx512    | __AVX512F__               | 64 bytes | 6 x 64 (24 zmm accumulators: 4 + 6 loads, 24 FMAs) |
| avx2      | __AVX2__ && __FMA__       | 32 bytes | 6 x 16 (12 ymm accumulators, Haswell-style)  |
| neon      | __ARM_NEON && __aarch64__ | 16 bytes | 8 x 12 (24 q accumulators)                   |
| generic   | anything else             | 16 bytes | 4 x 8  (GNU vector extensions, a*b+c)        |

The micro-kernel keeps an MR x NV block of accumulator vectors in registers for the whole K
walk: per k it loads NV vectors of B's row k and broadcasts A[i, k] for each of the MR rows
(B is not packed into panels: that measured 0-10% slower at 64x64x32 .. 128x128x64 on Zen 4).
Operands read in place from the caller's memory stream from L2/L3 the first time, so each block
prefetches A 32 columns ahead and the next block's C rows (+5-7% at 1024^3 on Zen 4, nothing lost
on cache-resident tiles), and the first row block of each column panel, the one that reads B's
rows from memory, prefetches them KY_PFD = 16 rows ahead (a model's weights stream from DRAM once
per run: a 128x1536x384 linear over 94 MB of weights took 16-22% longer than with its weight in
cache before, 11-15% after; 48 or 96 rows ahead measured no better). Columns left over after
the full NR panels use fewer vectors (and more rows, KY_MR(nv)); a last partial vector (N not a
multiple of the vector length) goes through a zero-padded copy. Rows left over use the same
kernel with fewer rows. All counts are C constants after inlining, so gcc unrolls the blocks
and keeps the accumulators in registers.

Kinds: f32 (float accumulate; f16/bf16/f32 inputs are converted to float first), f64, i32
(i8/i16/i32 inputs widened to int32). FMA is the ISA's fused instruction (vfmadd231ps,
vfmaq_f32); the generic path multiplies and adds (the toolchain's -ffp-contract=off keeps it
two roundings). `KAIYUAN_CPU_ISA=generic|avx2` (toolchain.py) defines KY_ISA_GENERIC /
KY_ISA_AVX2 to force a narrower path, for testing what machines without AVX-512 run.
"""

from __future__ import annotations

ISA_HEADER = r"""
/* ---- ky.dot micro-kernels (backends/cpu/dot.py): ISA from the compiler's target macros */
#if defined(KY_ISA_GENERIC)
#  define KY_ISA 0
#elif defined(__AVX512F__) && !defined(KY_ISA_AVX2)
#  define KY_ISA 3
#elif defined(__AVX2__) && defined(__FMA__)
#  define KY_ISA 2
#elif defined(__ARM_NEON) && defined(__aarch64__)
#  define KY_ISA 1
#else
#  define KY_ISA 0
#endif
#if KY_ISA == 3
#  include <immintrin.h>
#  define KY_ISA_NAME "avx512"
#  define KY_VBYTES 64
#  define KY_NV 4
#  define KY_MRMAX 14
#  define KY_MR(nv) ((nv) >= 4 ? 6 : (nv) == 3 ? 8 : (nv) == 2 ? 12 : 14)
typedef __m512 ky_vf32;
typedef __m512d ky_vf64;
#  define KY_FMA_f32(a, b, c) _mm512_fmadd_ps(a, b, c)
#  define KY_FMA_f64(a, b, c) _mm512_fmadd_pd(a, b, c)
#elif KY_ISA == 2
#  include <immintrin.h>
#  define KY_ISA_NAME "avx2"
#  define KY_VBYTES 32
#  define KY_NV 2
#  define KY_MRMAX 12
#  define KY_MR(nv) ((nv) >= 2 ? 6 : 12)
typedef __m256 ky_vf32;
typedef __m256d ky_vf64;
#  define KY_FMA_f32(a, b, c) _mm256_fmadd_ps(a, b, c)
#  define KY_FMA_f64(a, b, c) _mm256_fmadd_pd(a, b, c)
#elif KY_ISA == 1
#  include <arm_neon.h>
#  define KY_ISA_NAME "neon"
#  define KY_VBYTES 16
#  define KY_NV 3
#  define KY_MRMAX 12
#  define KY_MR(nv) ((nv) >= 3 ? 8 : 12)
typedef float32x4_t ky_vf32;
typedef float64x2_t ky_vf64;
#  define KY_FMA_f32(a, b, c) vfmaq_f32(c, a, b)
#  define KY_FMA_f64(a, b, c) vfmaq_f64(c, a, b)
#else
#  define KY_ISA_NAME "generic"
#  define KY_VBYTES 16
#  define KY_NV 2
#  define KY_MRMAX 8
#  define KY_MR(nv) ((nv) >= 2 ? 4 : 8)
typedef float ky_vf32 __attribute__((vector_size(16)));
typedef double ky_vf64 __attribute__((vector_size(16)));
#  define KY_FMA_f32(a, b, c) ((c) + (a) * (b))
#  define KY_FMA_f64(a, b, c) ((c) + (a) * (b))
#endif
typedef int32_t ky_vi32 __attribute__((vector_size(KY_VBYTES)));
#define KY_FMA_i32(a, b, c) ((c) + (a) * (b))
#define KY_DOT_KC 64
#define KY_ROW(k, ldb) ((int64_t)(k) * (ldb))
#define KY_ROWr(k, table) ((table)[k])
/* B rows are prefetched KY_PFD rows ahead by the first row block of a panel (the one that reads
   them from memory: weights streamed once per run); a prefetch past the end never faults, but
   a row table has only K entries */
#define KY_PFD 16
#define KY_PF_OK(k, K) 1
#define KY_PF_OKr(k, K) ((k) < (K))
const char *ky_dot_isa(void) { return KY_ISA_NAME; }
"""

KERNEL = r"""
/* ---- ky.dot, {T}: C[MxN] = Ci + A @ B; A[i, k] at A[i * lda + k * acs], B's row k (unit column
   stride) at B + KY_ROW(k, bs) (KY_ROWr: a table of row offsets); Ci, C row-major, Ci may be C */
#define KY_AI static inline __attribute__((always_inline))
KY_AI ky_v{S} ky_ld_{S}(const {T} *p) { ky_v{S} v; __builtin_memcpy(&v, p, sizeof v); return v; }
KY_AI void ky_st_{S}({T} *p, ky_v{S} v) { __builtin_memcpy(p, &v, sizeof v); }
"""

# One family of kernels per B addressing: "" (B's rows ldb apart) and "r" (a row-offset table, for
# operands read in place whose rows are not evenly spaced, e.g. conv2d's (c, kh, kw) rows).
FAMILY = r"""
/* mr x nv vectors of C, kept in registers over the K walk (mr, nv constant after inlining) */
KY_AI void ky_mk{R}_{S}(const int mr, const int nv, const int K, const {T} *A, const int64_t lda, const int64_t acs,
                     const {T} *B, {BT} bs, const int cz, const {T} *Ci, {T} *C, const int ldc, const int pfb) {
    const int vl = (int)(sizeof(ky_v{S}) / sizeof({T}));
    ky_v{S} acc[KY_MRMAX][KY_NV];
#pragma GCC unroll 16
    for (int i = 0; i < KY_MRMAX; i++)
#pragma GCC unroll 4
        for (int v = 0; v < KY_NV; v++)
            if (i < mr && v < nv) {
                acc[i][v] = cz ? (ky_v{S}){0} : ky_ld_{S}(Ci + i * ldc + v * vl);
                __builtin_prefetch(C + (i + mr) * ldc + v * vl, 1, 3);   /* the next block's rows */
            }
    for (int k = 0; k < K; k++) {
        if ((k & 15) == 0) {       /* A read in place streams from L2/L3: fetch 32 columns ahead */
#pragma GCC unroll 16
            for (int i = 0; i < KY_MRMAX; i++)
                if (i < mr) __builtin_prefetch(A + i * lda + (k + 32) * acs, 0, 3);
        }
        if (pfb && KY_PF_OK{R}(k + KY_PFD, K)) {  /* first row block: B rows from memory, KY_PFD ahead */
#pragma GCC unroll 4
            for (int v = 0; v < KY_NV; v++)
                if (v < nv) __builtin_prefetch(B + KY_ROW{R}(k + KY_PFD, bs) + v * vl, 0, 3);
        }
        ky_v{S} b[KY_NV];
        const {T} *bk = B + KY_ROW{R}(k, bs);
#pragma GCC unroll 4
        for (int v = 0; v < KY_NV; v++)
            if (v < nv) b[v] = ky_ld_{S}(bk + v * vl);
#pragma GCC unroll 16
        for (int i = 0; i < KY_MRMAX; i++) {
            if (i < mr) {
                ky_v{S} a = A[i * lda + k * acs] - (ky_v{S}){0};
#pragma GCC unroll 4
                for (int v = 0; v < KY_NV; v++)
                    if (v < nv) acc[i][v] = KY_FMA_{S}(a, b[v], acc[i][v]);
            }
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < KY_MRMAX; i++)
#pragma GCC unroll 4
        for (int v = 0; v < KY_NV; v++)
            if (i < mr && v < nv) ky_st_{S}(C + i * ldc + v * vl, acc[i][v]);
}
/* one column panel of nv vectors, all rows (blocks of KY_MR(nv) rows, then the leftover rows) */
KY_AI void ky_rows{R}_{S}(const int nv, const int M, const int N, const int K, const {T} *A, const int64_t lda,
                       const int64_t acs, const {T} *B, {BT} bs, const int cz, const {T} *Ci, {T} *C) {
    const int mr = KY_MR(nv);
    int i = 0;
    if (M >= mr) { ky_mk{R}_{S}(mr, nv, K, A, lda, acs, B, bs, cz, Ci, C, N, 1); i = mr; }
    for (; i + mr <= M; i += mr) ky_mk{R}_{S}(mr, nv, K, A + i * lda, lda, acs, B, bs, cz, Ci + i * N, C + i * N, N, 0);
    if (M % mr) ky_mk{R}_{S}(M % mr, nv, K, A + i * lda, lda, acs, B, bs, cz, Ci + i * N, C + i * N, N, M < mr);
}
/* the last w (< one vector) columns, through zero-padded copies of B and C */
KY_AI void ky_part_block{R}_{S}(const int mr, const int w, const int N, const int K, const {T} *A, const int64_t lda,
                             const int64_t acs, const {T} *B, {BT} bs, const int cz, const {T} *Ci, {T} *C) {
    const int vl = (int)(sizeof(ky_v{S}) / sizeof({T}));
    {T} bt[KY_DOT_KC * (KY_VBYTES / sizeof({T}))] __attribute__((aligned(64)));
    {T} ct[KY_MRMAX * (KY_VBYTES / sizeof({T}))] __attribute__((aligned(64)));
    for (int i = 0; i < mr; i++)
        for (int q = 0; q < vl; q++) ct[i * vl + q] = q < w && !cz ? Ci[i * N + q] : ({T})0;
    for (int k0 = 0; k0 < K; k0 += KY_DOT_KC) {
        const int kc = K - k0 < KY_DOT_KC ? K - k0 : KY_DOT_KC;
        for (int k = 0; k < kc; k++)
            for (int q = 0; q < vl; q++) bt[k * vl + q] = q < w ? B[KY_ROW{R}(k0 + k, bs) + q] : ({T})0;
        ky_mk_{S}(mr, 1, kc, A + k0 * acs, lda, acs, bt, vl, 0, ct, ct, vl, 0);
    }
    for (int i = 0; i < mr; i++)
        for (int q = 0; q < w; q++) C[i * N + q] = ct[i * vl + q];
}
KY_AI void ky_part{R}_{S}(const int w, const int M, const int N, const int K, const {T} *A, const int64_t lda,
                       const int64_t acs, const {T} *B, {BT} bs, const int cz, const {T} *Ci, {T} *C) {
    const int mr = KY_MR(1);
    int i = 0;
    for (; i + mr <= M; i += mr) ky_part_block{R}_{S}(mr, w, N, K, A + i * lda, lda, acs, B, bs, cz, Ci + i * N, C + i * N);
    if (M % mr) ky_part_block{R}_{S}(M % mr, w, N, K, A + i * lda, lda, acs, B, bs, cz, Ci + i * N, C + i * N);
}
KY_AI void ky_dot{R}_{S}(const int M, const int N, const int K, const {T} *A, const int64_t lda, const int64_t acs,
                      const {T} *B, {BT} bs, const {T} *Ci, {T} *C) {
    const int vl = (int)(sizeof(ky_v{S}) / sizeof({T}));
    const int nr = KY_NV * vl;
    const int cz = !Ci;            /* no Ci: C starts at zero (kl.dot without an accumulator) */
    if (cz) Ci = C;
    int j = 0;
    for (; j + nr <= N; j += nr) ky_rows{R}_{S}(KY_NV, M, N, K, A, lda, acs, B + j, bs, cz, Ci + j, C + j);
    const int nvt = (N - j) / vl;
    if (nvt) { ky_rows{R}_{S}(nvt, M, N, K, A, lda, acs, B + j, bs, cz, Ci + j, C + j); j += nvt * vl; }
    if (j < N) ky_part{R}_{S}(N - j, M, N, K, A, lda, acs, B + j, bs, cz, Ci + j, C + j);
}
"""
FAMILIES = {"": "const int64_t", "r": "const int64_t *"}   # suffix -> type of `bs`

# compute C type of the accumulator -> kernel kind
KINDS = {"float": "f32", "double": "f64", "int32_t": "i32"}
_CTYPES = {"f32": "float", "f64": "double", "i32": "int32_t"}


def helpers(kinds) -> str:
    """C text defining the dot kernels of `kinds` (empty when no dot is used): "f32", "f64", "i32",
    each optionally suffixed "r" for the row-table family (the plain family is always there: the
    partial-column path of both uses it)."""
    if not kinds:
        return ""
    out = [ISA_HEADER]
    for k in ("f32", "f64", "i32"):
        if k not in kinds and k + "r" not in kinds:
            continue
        text = KERNEL + "".join(FAMILY.replace("{R}", r).replace("{BT}", bt) for r, bt in FAMILIES.items()
                                if r == "" or k + r in kinds)
        out.append(text.replace("{S}", k).replace("{T}", _CTYPES[k]))
    return "".join(out)
