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
