/* kaiyuan cpu backend: how a launch runs. Compiled once per toolchain into its own shared object
 * (launch.py), not into every kernel: gcc took ~0.1 s of each kernel's compile for this code.
 * A kernel's .so exports ky_range (its programs t0..t1-1, on the calling thread) and
 * ky_error_slot (its assert slot); everything here calls them through function pointers.
 *
 *   int64_t ky_run_list(n, ranges, slots, args, grids, failed)   n launches, one parallel region
 *   int64_t ky_run_one(range, slot, args, gx, gy, gz)            one launch (a list of one)
 *
 * Both return -1, or the assert slot of the first launch whose assert failed (*failed = its index).
 */
#include <stdint.h>
#include <omp.h>
#include <sched.h>

/* A captured launch list replayed in one call (CpuProgram.bind_list), in ONE OpenMP parallel
   region: ranges[i] is some kernel's ky_range, slots[i] its ky_error_slot, args[i] its packed
   argument words, grids[3i..3i+2] its grid. Each thread runs its share of a launch's programs
   and then helps with the others' (ky_share_run); a barrier separates two launches unless both
   are single programs (those run on thread 0, in order). Starting a region wakes the sleeping
   worker threads, which on a VM with GOMP_SPINCOUNT=0 cost 50-100 us per launch; a barrier
   between threads that are all awake costs far less. Stops at the first launch that reports a
   failed assert: *failed = its index, the return value its assert slot. Threads leave the loop
   only right after a barrier, where they all read the same `stop` (the smallest failing index: a
   launch started after the barrier can only set it to its own index, which does not end the
   loop), so no thread waits at a barrier the others have left. */
typedef int64_t (*ky_range_fn)(const uint64_t *, int64_t, int64_t, int64_t, int64_t, int64_t);
/* one step of a spin wait: a pause, and after 20000 of them a yield of the core */
static inline void ky_relax(int64_t spins) {
    if (spins > 20000) sched_yield();
#if defined(__x86_64__) || defined(__i386__)
    else __builtin_ia32_pause();
#elif defined(__aarch64__)
    else __asm__ volatile("yield");
#endif
}
/* The barrier between launches spins (then yields) instead of `omp barrier`: under
   GOMP_SPINCOUNT=0 libgomp's barrier puts a thread that arrives first to sleep on a futex, and
   waking it costs tens of microseconds on a VM, about what the launch it separates takes. The
   threads of a region are all running, and a wait here is one launch's load imbalance. */
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
int64_t ky_run_one(void *range, void *slot, const uint64_t *args, int64_t gx, int64_t gy, int64_t gz) {
    const int64_t grid[3] = {gx, gy, gz};
    int64_t failed;
    return ky_run_list(1, &range, &slot, &args, grid, &failed);
}
