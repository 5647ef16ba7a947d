// Lane masks of the AVX2 kernels: AVX2 has no mask registers, so a kernel computes an 8-bit
// lane set (bit i = lane i) as the AVX-512 versions do and turns it into the vector mask that
// _mm256_maskload_ps / _mm256_maskstore_ps take. Disabled lanes are never accessed (no fault,
// no read of memory outside the operand). Included by the *_avx2.c files only.
#ifndef REPARO_AVX2_LANES_H
#define REPARO_AVX2_LANES_H
#if defined(__x86_64__)

#include <immintrin.h>

/// Lanes [lower, upper) of an 8-lane chunk as bits (bounds relative to the chunk, clamped).
static inline unsigned lanes_between8(long lower, long upper) {
    if (lower < 0) lower = 0;
    if (upper > 8) upper = 8;
    if (upper <= lower) return 0;
    return ((1u << (upper - lower)) - 1) << lower;
}

/// The first `lanes` lanes as bits.
static inline unsigned first_lanes8(long lanes) { return lanes_between8(0, lanes); }

/// The vector mask of lane bits: lane i all ones when bit i is set.
__attribute__((target("avx2"))) static inline __m256i lane_vector(unsigned bits) {
    const __m256i powers = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), powers), powers);
}

/// The lanes `bits` of p (others zero); a plain load when all 8 are wanted.
__attribute__((target("avx2"))) static inline __m256 load_lanes(const float *p, unsigned bits) {
    if (bits == 0xFF) return _mm256_loadu_ps(p);
    if (bits == 0) return _mm256_setzero_ps();
    return _mm256_maskload_ps(p, lane_vector(bits));
}

/// Stores the lanes `bits` of v to p; a plain store when all 8 are written.
__attribute__((target("avx2"))) static inline void store_lanes(float *p, unsigned bits, __m256 v) {
    if (bits == 0xFF) _mm256_storeu_ps(p, v);
    else if (bits != 0) _mm256_maskstore_ps(p, lane_vector(bits), v);
}

#endif
#endif
