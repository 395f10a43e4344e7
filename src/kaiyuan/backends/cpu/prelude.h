/* kaiyuan cpu backend: C prelude included at the top of every generated kernel.
 *
 * Everything here is `static inline` and written as plain arithmetic and bit casts so that gcc
 * vectorises it inside `#pragma omp simd` loops without -ffast-math: ky_expf/ky_exp2f/ky_logf/
 * ky_log2f/ky_erff/ky_tanhf replace libm's scalar calls for the hot math (a few ULP from correctly rounded;
 * NaN/inf/subnormals handled), bf16 is uint16_t storage with round-to-nearest-even conversions,
 * atomics on floats are compare-and-swap loops on the bit pattern.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <omp.h>
#include <sched.h>

typedef uint16_t ky_bf16;

static inline uint32_t ky_f2u(float x) { uint32_t u; __builtin_memcpy(&u, &x, 4); return u; }
static inline float ky_u2f(uint32_t u) { float x; __builtin_memcpy(&x, &u, 4); return x; }
static inline uint64_t ky_d2u(double x) { uint64_t u; __builtin_memcpy(&u, &x, 8); return u; }
static inline double ky_u2d(uint64_t u) { double x; __builtin_memcpy(&x, &u, 8); return x; }
#define KY_BITCAST(TD, TS, x) ({ TS _s = (x); TD _d; __builtin_memcpy(&_d, &_s, sizeof(_d)); _d; })

/* ---- bf16 <-> f32, round to nearest even, NaN kept quiet */
static inline float ky_bf2f(ky_bf16 h) { return ky_u2f((uint32_t)h << 16); }
static inline ky_bf16 ky_f2bf(float f) {
    uint32_t u = ky_f2u(f);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (ky_bf16)((f != f) ? ((u >> 16) | 0x40u) : r);
}

/* ---- NaN-propagating max/min with -0 < +0 (MLIR maximumf/minimumf) */
static inline float ky_maximumf(float a, float b) {
    return a > b ? a : (b > a ? b : (a == b ? (ky_f2u(a) >> 31 ? b : a) : a + b));
}
static inline float ky_minimumf(float a, float b) {
    return a < b ? a : (b < a ? b : (a == b ? (ky_f2u(a) >> 31 ? a : b) : a + b));
}
static inline double ky_maximum(double a, double b) {
    return a > b ? a : (b > a ? b : (a == b ? (ky_d2u(a) >> 63 ? b : a) : a + b));
}
static inline double ky_minimum(double a, double b) {
    return a < b ? a : (b < a ? b : (a == b ? (ky_d2u(a) >> 63 ? a : b) : a + b));
}

/* ---- exp: x = k ln2 + r, |r| <= ln2/2; exp(r) by the Cephes minimax polynomial; 2^k applied
 * in two halves so results in the subnormal range are rounded once. */
static inline float ky_exp_poly(float r) {
    float p = 1.9875691500E-4f;
    p = fmaf(p, r, 1.3981999507E-3f);
    p = fmaf(p, r, 8.3334519073E-3f);
    p = fmaf(p, r, 4.1665795894E-2f);
    p = fmaf(p, r, 1.6666665459E-1f);
    p = fmaf(p, r, 5.0000001201E-1f);
    return fmaf(p, r * r, r) + 1.0f;
}
static inline float ky_scale2(float p, float k) {
    int32_t ki = (int32_t)k, k1 = ki >> 1, k2 = ki - k1;
    return p * ky_u2f((uint32_t)(k1 + 127) << 23) * ky_u2f((uint32_t)(k2 + 127) << 23);
}
static inline float ky_expf(float x) {
    float xc = x > 89.0f ? 89.0f : (x < -104.0f ? -104.0f : x);
    xc = (x == x) ? xc : 0.0f;
    float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = fmaf(k, -0.693359375f, xc);
    r = fmaf(k, 2.12194440e-4f, r);
    float y = ky_scale2(ky_exp_poly(r), k);
    return (x == x) ? y : x;
}
static inline float ky_exp2f(float x) {
    float xc = x > 129.0f ? 129.0f : (x < -151.0f ? -151.0f : x);
    xc = (x == x) ? xc : 0.0f;
    float k = (xc + 12582912.0f) - 12582912.0f;
    float y = ky_scale2(ky_exp_poly((xc - k) * 0.693147180559945309f), k);
    return (x == x) ? y : x;
}

/* ---- log: x = 2^e m, m in [sqrt(1/2), sqrt(2)); log(m) by the Cephes polynomial in f = m-1.
 * ky_log_parts returns log(m) and e so log2 of a power of two is exact. */
static inline float ky_log_parts(float x, float *e_out) {
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 8388608.0f : x;
    uint32_t u = ky_f2u(xs);
    float e = (float)((int32_t)((u >> 23) & 0xff) - 127 - (sub ? 23 : 0));
    float m = ky_u2f((u & 0x7fffffu) | 0x3f800000u);
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    float f = m - 1.0f, z = f * f;
    float p = 7.0376836292E-2f;
    p = fmaf(p, f, -1.1514610310E-1f);
    p = fmaf(p, f, 1.1676998740E-1f);
    p = fmaf(p, f, -1.2420140846E-1f);
    p = fmaf(p, f, 1.4249322787E-1f);
    p = fmaf(p, f, -1.6668057665E-1f);
    p = fmaf(p, f, 2.0000714765E-1f);
    p = fmaf(p, f, -2.4999993993E-1f);
    p = fmaf(p, f, 3.3333331174E-1f);
    float y = f * z * p;
    y = fmaf(-0.5f, z, y);
    *e_out = e;
    return f + y;
}
static inline float ky_log_special(float x, float y) {
    return x > 0.0f ? (x == INFINITY ? x : y) : (x == 0.0f ? -INFINITY : (x == x ? NAN : x));
}
static inline float ky_logf(float x) {
    float e, lm = ky_log_parts(x, &e);
    float y = fmaf(e, 0.693359375f, fmaf(e, -2.12194440e-4f, lm));
    return ky_log_special(x, y);
}
static inline float ky_log2f(float x) {
    float e, lm = ky_log_parts(x, &e);
    return ky_log_special(x, fmaf(lm, 1.44269504088896341f, e));
}

/* ---- integer helpers: division by zero gives 0 (never traps); INT_MIN / -1 wraps */
#define KY_DIVS(T, UT, a, b) ((b) == 0 ? (T)0 : ((b) == -1 ? (T)((UT)0 - (UT)(a)) : (T)((a) / (b))))
#define KY_REMS(T, a, b) ((b) == 0 || (b) == -1 ? (T)0 : (T)((a) % (b)))
#define KY_DIVU(T, a, b) ((b) == 0 ? (T)0 : (T)((a) / (b)))
#define KY_REMU(T, a, b) ((b) == 0 ? (T)0 : (T)((a) % (b)))

/* ---- atomics: ints use gcc builtins; everything else a CAS loop on the bit pattern */
#define KY_CAS_LOOP(T, UT, p, NEWEXPR) ({                                        \
    UT *_q = (UT *)(p); UT _ob = __atomic_load_n(_q, __ATOMIC_RELAXED), _nb;     \
    T _old;                                                                      \
    do { __builtin_memcpy(&_old, &_ob, sizeof(T)); T _new = (NEWEXPR);           \
         __builtin_memcpy(&_nb, &_new, sizeof(T)); }                             \
    while (!__atomic_compare_exchange_n(_q, &_ob, _nb, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)); \
    _old; })
#define KY_CAS(T, UT, p, cmp, val) ({                                            \
    UT _e, _v; T _c = (cmp), _w = (val), _o;                                     \
    __builtin_memcpy(&_e, &_c, sizeof(T)); __builtin_memcpy(&_v, &_w, sizeof(T)); \
    __atomic_compare_exchange_n((UT *)(p), &_e, _v, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE); \
    __builtin_memcpy(&_o, &_e, sizeof(T)); _o; })

/* ---- device assert: first failing (op, program) wins */
static int64_t ky_err_op = -1;
static int64_t ky_err_pid[3];
static __thread int64_t ky_failed_here;  /* this thread's programs failed one (ky_range's result) */
static void ky_fail(int64_t op, int32_t x, int32_t y, int32_t z) {
    int64_t expected = -1;
    ky_failed_here = 1;
    if (__atomic_compare_exchange_n(&ky_err_op, &expected, -2, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        ky_err_pid[0] = x; ky_err_pid[1] = y; ky_err_pid[2] = z;
        __atomic_store_n(&ky_err_op, op, __ATOMIC_RELEASE);
    }
}
int64_t ky_error_pid(int64_t axis) { return ky_err_pid[axis]; }

/* NaN-propagating reductions for `omp simd` (OpenMP's own max/min would drop NaN lanes) */
#pragma omp declare reduction(ky_maxf : float : omp_out = ky_maximumf(omp_out, omp_in)) initializer(omp_priv = -INFINITY)
#pragma omp declare reduction(ky_minf : float : omp_out = ky_minimumf(omp_out, omp_in)) initializer(omp_priv = INFINITY)
#pragma omp declare reduction(ky_max : double : omp_out = ky_maximum(omp_out, omp_in)) initializer(omp_priv = -INFINITY)
#pragma omp declare reduction(ky_min : double : omp_out = ky_minimum(omp_out, omp_in)) initializer(omp_priv = INFINITY)

/* erf, vectorisable (libm's erff is a scalar call): |x| < 1: x * p(x^2) (degree 6, fitted to
   erf(x)/x, rel. error 2e-9); 1 <= |x| < 4: 1 - exp(g(|x|) - x^2) with g a degree-10 fit of
   log(erfc(a)) + a^2 (abs. error 5e-9) and x^2 split exactly (hi + lo by fma); |x| >= 4: +-1. */
static inline float ky_erff(float x) {
    float a = fabsf(x), t = x * x;
    float small = x * fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(7.949692989e-05f, t, -8.039086795e-04f), t, 5.191611303e-03f), t, -2.685554836e-02f), t, 1.128362748e-01f), t, -3.761262980e-01f), t, 1.128379167e+00f);
    float ac = a < 4.0f ? a : 4.0f;
    float u = (ac - 2.5f) * 0.666666667f;
    float g = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(-2.285852717e-06f, u, -2.732634062e-06f), u, 4.709717032e-05f), u, -2.212947898e-04f), u, 8.765422440e-04f), u, -3.195023237e-03f), u, 1.096292536e-02f), u, -3.664623991e-02f), u, 1.262390835e-01f), u, -5.290211150e-01f), u, -1.556815273e+00f);
    float hi = ac * ac, lo = fmaf(ac, ac, -hi);
    float big = copysignf(1.0f - ky_expf((g - hi) - lo), x);
    float r = a < 1.0f ? small : (a < 4.0f ? big : copysignf(1.0f, x));
    return x == x ? r : x;
}

/* tanh, vectorisable (libm's tanhf is a scalar call: GELU's tanh form ran a GEMM epilogue at a
   third of its speed): |x| < 0.625: x * p(x^2) (degree 6, fitted to tanh(x)/x, rel. error 2e-10);
   beyond: 1 - 2 / (exp(2|x|) + 1), free of cancellation there (the result is >= 0.55); exp
   overflows to inf for |x| > 44, giving exactly +-1. At most 1.3 ulp from tanh in double. */
static inline float ky_tanhf(float x) {
    float a = fabsf(x), t = x * x;
    float p = fmaf(fmaf(fmaf(fmaf(fmaf(2.146991668e-03f, t, -8.182267658e-03f), t, 2.170291729e-02f), t,
                                -5.394722894e-02f), t, 1.333321035e-01f), t, -3.333333135e-01f);
    float small = fmaf(a * t, p, a);
    float big = 1.0f - 2.0f / (ky_expf(2.0f * a) + 1.0f);
    float r = copysignf(a < 0.625f ? small : big, x);
    return x == x ? r : x;
}

/* A captured launch list replayed in one call (CpuProgram.bind_list), in ONE OpenMP parallel
   region: ranges[i] is some kernel's ky_range, slots[i] its ky_error_slot, args[i] its packed
   argument words, grids[3i..3i+2] its grid. Each thread runs its share of a launch's programs
   and then helps with the others' (ky_share_run); a barrier separates two launches unless both
   are single programs (those run on thread 0, in order). Starting a region wakes the sleeping
   worker threads, which on a VM with GOMP_SPINCOUNT=0 cost 50-100 us per launch; a barrier
   between threads that are all awake costs far less. Stops at the first launch that reports a failed assert: *failed = its index, the
   return value its assert slot. Threads leave the loop only right after a barrier, where they
   all read the same `stop` (the smallest failing index: a launch started after the barrier can
   only set it to its own index, which does not end the loop), so no thread waits at a barrier
   the others have left. */
typedef int64_t (*ky_range_fn)(const uint64_t *, int64_t, int64_t, int64_t, int64_t, int64_t);
/* The barrier between launches spins (then yields) instead of `omp barrier`: under
   GOMP_SPINCOUNT=0 libgomp's barrier puts a thread that arrives first to sleep on a futex, and
   waking it costs tens of microseconds on a VM, about what the launch it separates takes. The
   threads of a region are all running, and a wait here is one launch's load imbalance. */
/* one step of a spin wait: a pause, and after 20000 of them a yield of the core */
static inline void ky_relax(int64_t spins) {
    if (spins > 20000) sched_yield();
#if defined(__x86_64__) || defined(__i386__)
    else __builtin_ia32_pause();
#elif defined(__aarch64__)
    else __asm__ volatile("yield");
#endif
}
typedef struct { int64_t count, sense; } ky_barrier;
static inline void ky_barrier_wait(ky_barrier *b, int64_t nt, int64_t *mine) {
    const int64_t s = *mine = 1 - *mine;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == nt) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->sense, s, __ATOMIC_RELEASE);
        return;
    }
    for (int64_t spins = 0; __atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != s; spins++) ky_relax(spins);
}
/* Work sharing within a launch: each thread owns a contiguous share of the programs (its static
   part, for cache locality) and claims them from the front; a thread that has run out claims
   programs from the back of the others' shares. A worker woken late (on a VM, tens of
   microseconds after the region starts) then costs the launch its lateness once, not twice:
   under a static split the other thread finished its half and then waited for the late half.
   Claims are half of what is left of the share (at least one program), so a launch of many
   small programs makes few claims (a quarter made twice as many: +0.1 us per launch of 64 tiny
   programs), and the last claims, of one program each, leave the threads at most about one
   program apart. The price against a static split: about 0.1-0.2 us per launch of tiny programs
   (two more cache-line transfers between cores, and the claims). share = front | back << 32 (program indices, one atomic word
   on its own cache line), changed only by compare-and-swap: no program runs twice. Grids of
   2^31 programs or more keep the static split. */
typedef struct { uint64_t w; char pad[56]; } __attribute__((aligned(64))) ky_share;
static inline void ky_share_init(ky_share *s, int64_t total, int64_t id, int64_t nt) {
    const uint64_t lo = total < (1LL << 31) ? (uint64_t)(total * id / nt) : 0;
    const uint64_t hi = total < (1LL << 31) ? (uint64_t)(total * (id + 1) / nt) : 0;
    __atomic_store_n(&s->w, lo | hi << 32, __ATOMIC_RELAXED);
}
/* claim [*lo, *hi) from the front (own share) or the back (another's); 0 when it is empty */
static inline int ky_share_claim(ky_share *s, int back, uint32_t *lo, uint32_t *hi) {
    uint64_t o = __atomic_load_n(&s->w, __ATOMIC_RELAXED);
    for (;;) {
        const uint32_t f = (uint32_t)o, b = (uint32_t)(o >> 32);
        if (f >= b) return 0;
        const uint32_t c = (b - f) / 2 > 1 ? (b - f) / 2 : 1;
        *lo = back ? b - c : f;
        *hi = back ? b : f + c;
        const uint64_t w = back ? (uint64_t)f | (uint64_t)(b - c) << 32 : (uint64_t)(f + c) | (uint64_t)b << 32;
        if (__atomic_compare_exchange_n(&s->w, &o, w, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return 1;
    }
}
/* this thread's part of a launch: its own share, then the others' (ns shares, nt threads) */
static inline int64_t ky_share_run(ky_share *share, int64_t ns, int64_t id, int64_t nt, ky_range_fn run,
                                   const uint64_t *args, const int64_t *g) {
    const int64_t total = g[0] * g[1] * g[2];
    if (total >= (1LL << 31))
        return run(args, g[0], g[1], g[2], total * id / nt, total * (id + 1) / nt);
    int64_t failed = 0;
    uint32_t lo, hi;
    for (int64_t k = 0; k < ns; k++) {
        ky_share *s = share + (id + k) % ns;
        while (ky_share_claim(s, k > 0, &lo, &hi)) failed |= run(args, g[0], g[1], g[2], lo, hi);
    }
    return failed;
}
/* The end of the region: thread 0 leaves last. libgomp's closing barrier puts a thread that
   arrives before the others to sleep (under GOMP_SPINCOUNT=0 at once), and waking thread 0
   there cost a VM wake-up after every run; the workers have nothing to wait for after it. */
static inline void ky_leave_last(int64_t *left, int64_t nt, int64_t id) {
    if (id) { __atomic_add_fetch(left, 1, __ATOMIC_RELEASE); return; }
    for (int64_t spins = 0; __atomic_load_n(left, __ATOMIC_ACQUIRE) != nt - 1; spins++) ky_relax(spins);
}
typedef int64_t (*ky_slot_fn)(int64_t);
static inline void ky_stop_at(int64_t *stop, int64_t i) {
    int64_t cur = __atomic_load_n(stop, __ATOMIC_ACQUIRE);
    while (i < cur && !__atomic_compare_exchange_n(stop, &cur, i, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {}
}
/* every kernel defines these (emit_c.py): its programs t0..t1-1, and its assert slot */
int64_t ky_range(const uint64_t *args, int64_t gx, int64_t gy, int64_t gz, int64_t t0, int64_t t1);
int64_t ky_error_slot(int64_t reset);
int64_t ky_run_list(int64_t n, void *const *ranges, void *const *slots, const uint64_t *const *args,
                    const int64_t *grids, int64_t *failed) {
    int multi = 0;
    for (int64_t i = 0; i < n; i++) {
        ((ky_slot_fn)slots[i])(1);
        multi |= grids[3 * i] * grids[3 * i + 1] * grids[3 * i + 2] > 1;
    }
    int64_t stop = INT64_MAX;
    if (!multi || omp_get_max_threads() == 1) {
        for (int64_t i = 0; i < n && stop == INT64_MAX; i++) {
            const int64_t *g = grids + 3 * i;
            if (((ky_range_fn)ranges[i])(args[i], g[0], g[1], g[2], 0, g[0] * g[1] * g[2])) stop = i;
        }
    } else {
        ky_barrier bar = {0, 0};
        const int64_t maxt = omp_get_max_threads();
        ky_share share[2 * maxt];           /* launch i uses share[(i % 2) * maxt + thread] */
        int64_t left = 0;
        for (int64_t t = 0; t < maxt; t++)  /* launch 0's shares, before anyone can steal */
            ky_share_init(share + t, grids[0] * grids[1] * grids[2], t, maxt);
        #pragma omp parallel
        {
            const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
            int64_t prev = 1, sense = 0;
            for (int64_t i = 0; i < n; i++) {
                const int64_t *g = grids + 3 * i;
                const int64_t total = g[0] * g[1] * g[2];
                ky_share *mine = share + (i % 2) * maxt;
                if (i > 0 && (total > 1 || prev > 1)) {
                    for (int64_t t = id; t < maxt; t += nt)   /* before the barrier: see above */
                        ky_share_init(mine + t, total, t, maxt);
                    ky_barrier_wait(&bar, nt, &sense);
                    if (__atomic_load_n(&stop, __ATOMIC_ACQUIRE) < i) break;  /* the same for all */
                }
                prev = total;
                /* past a failure nothing more runs (thread 0 may meet one in a run of single
                   programs, which has no barrier to leave at: it skips them until the next) */
                if (__atomic_load_n(&stop, __ATOMIC_ACQUIRE) != INT64_MAX) continue;
                const ky_range_fn run = (ky_range_fn)ranges[i];
                if (total == 1) {
                    if (id == 0 && run(args[i], g[0], g[1], g[2], 0, 1)) ky_stop_at(&stop, i);
                } else if (ky_share_run(mine, maxt, id, nt, run, args[i], g)) {
                    ky_stop_at(&stop, i);
                }
            }
            ky_leave_last(&left, nt, id);
        }
    }
    if (stop == INT64_MAX) return -1;
    *failed = stop;
    return ((ky_slot_fn)slots[stop])(0);
}
