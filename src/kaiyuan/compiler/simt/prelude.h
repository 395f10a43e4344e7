/* kaiyuan SIMT prelude: helpers shared by every SIMT dialect (OpenCL C, CUDA C).
 * Written in the C common to both; the dialect's own prelude comes first and defines the type
 * names (int32_t, _Bool, ky_f16, ky_bf16, ...), KY_BITCAST and KY_FN (helper qualifiers).
 * bf16 (and f16 unless the dialect has native halves) are uint16_t bits converted here, round
 * to nearest even, NaN kept quiet. */
#ifndef INFINITY
#define INFINITY __builtin_inff()
#endif
#ifndef NAN
#define NAN __builtin_nanf("")
#endif

KY_FN uint32_t ky_f2u(float x) { return KY_BITCAST(uint32_t, float, x); }
KY_FN float ky_u2f(uint32_t u) { return KY_BITCAST(float, uint32_t, u); }

KY_FN float ky_bf2f(ky_bf16 h) { return ky_u2f((uint32_t)h << 16); }
KY_FN ky_bf16 ky_f2bf(float f) {
    uint32_t u = ky_f2u(f);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (ky_bf16)((f != f) ? ((u >> 16) | 0x40u) : r);
}

#ifndef KY_HALF_NATIVE
/* IEEE binary16 <-> binary32 in integer arithmetic (no half type needed) */
KY_FN float ky_h2f(ky_f16 h) {
    uint32_t s = ((uint32_t)h & 0x8000u) << 16, e = ((uint32_t)h >> 10) & 0x1fu, m = (uint32_t)h & 0x3ffu;
    if (e == 0x1fu) return ky_u2f(s | 0x7f800000u | (m << 13));          /* inf, nan */
    if (e != 0) return ky_u2f(s | ((e + 112u) << 23) | (m << 13));     /* normal */
    return ky_u2f(s) + (s ? -1.0f : 1.0f) * (float)m * 5.9604644775390625e-8f;  /* subnormal, 0 */
}
KY_FN ky_f16 ky_f2h(float f) {
    uint32_t u = ky_f2u(f), s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (ky_f16)(s | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u));
    if (a >= 0x477ff000u) return (ky_f16)(s | 0x7c00u);                  /* rounds to inf */
    if (a < 0x38800000u) {                                              /* subnormal half or 0 */
        uint32_t sh = 126u - (a >> 23);                                 /* 14 .. */
        if (sh > 24u) return (ky_f16)s;
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        uint32_t q = m >> sh, rem = m & ((1u << sh) - 1u), hw = 1u << (sh - 1u);
        q += (rem > hw || (rem == hw && (q & 1u))) ? 1u : 0u;
        return (ky_f16)(s | q);
    }
    uint32_t r = a - 0x38000000u;                                        /* rebias 127 -> 15 */
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    return (ky_f16)(s | r);
}
#endif

/* NaN-propagating max/min with -0 < +0 (MLIR maximumf/minimumf) */
KY_FN float ky_maximumf(float a, float b) {
    return a > b ? a : (b > a ? b : (a == b ? (ky_f2u(a) >> 31 ? b : a) : a + b));
}
KY_FN float ky_minimumf(float a, float b) {
    return a < b ? a : (b < a ? b : (a == b ? (ky_f2u(a) >> 31 ? a : b) : a + b));
}

/* integer helpers: division by zero gives 0 (never traps); INT_MIN / -1 wraps */
#define KY_DIVS(T, UT, a, b) ((b) == 0 ? (T)0 : ((b) == -1 ? (T)((UT)0 - (UT)(a)) : (T)((a) / (b))))
#define KY_REMS(T, a, b) ((b) == 0 || (b) == -1 ? (T)0 : (T)((a) % (b)))
#define KY_DIVU(T, a, b) ((b) == 0 ? (T)0 : (T)((a) / (b)))
#define KY_REMU(T, a, b) ((b) == 0 ? (T)0 : (T)((a) % (b)))

#ifdef KY_FLOAT64
KY_FN uint64_t ky_d2u(double x) { return KY_BITCAST(uint64_t, double, x); }
KY_FN double ky_maximum(double a, double b) {
    return a > b ? a : (b > a ? b : (a == b ? (ky_d2u(a) >> 63 ? b : a) : a + b));
}
KY_FN double ky_minimum(double a, double b) {
    return a < b ? a : (b < a ? b : (a == b ? (ky_d2u(a) >> 63 ? a : b) : a + b));
}
#ifndef KY_HALF_NATIVE
/* double -> half rounded once: truncate to float with the lost bits kept sticky in the last
 * float bit (round to odd), so the float -> half rounding sees the exact tie information. */
KY_FN ky_f16 ky_d2h(double d) {
    float f = (float)d;
    if (f == f && (double)f != d && (ky_f2u(f) & 0x7fffffffu) < 0x7f800000u) {
        uint32_t u = ky_f2u(f);
        if (((double)f > d) == (d > 0.0)) u -= 1u;    /* f was rounded away from zero: step back */
        f = ky_u2f(u | 1u);
    }
    return ky_f2h(f);
}
#endif
#endif
