// 2×2, stride-2 max pooling (VGG's, every pool of a CIFAR VGG) with masked 16-float vectors:
// 16 outputs of a row from two 32-float input rows, split into even and odd columns by
// permutes. The scalar loop it replaces compared one element at a time (≈ 4 GB/s).
#if defined(__x86_64__)
#include "kernel_levels.h"

#include <immintrin.h>

static inline __mmask16 first_lanes(long lanes) {
    return lanes >= 16 ? (__mmask16)0xFFFF : lanes <= 0 ? (__mmask16)0 : (__mmask16)((1u << lanes) - 1);
}

/// best/where take `candidate`/`offset` in the lanes where it wins: greater, or NaN while best
/// is not (so the first NaN in scan order wins and stays).
__attribute__((target("avx512f")))
static inline void challenge(__m512 *best, __m512i *where, __m512 candidate, int offset) {
    const __mmask16 greater = _mm512_cmp_ps_mask(candidate, *best, _CMP_GT_OQ);
    const __mmask16 nan = _mm512_cmp_ps_mask(candidate, candidate, _CMP_UNORD_Q)
                          & ~_mm512_cmp_ps_mask(*best, *best, _CMP_UNORD_Q);
    const __mmask16 take = greater | nan;
    *best = _mm512_mask_mov_ps(*best, take, candidate);
    *where = _mm512_mask_mov_epi32(*where, take, _mm512_set1_epi32(offset));
}

__attribute__((target("avx512f")))
void max_pool_2x2_avx512(const float *x, long planes, long height, long width, float *y, int *argmax) {
    const long output_height = height / 2, output_width = width / 2;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i lane_columns = _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
    for (long plane = 0; plane < planes; plane++) {
        const float *source = x + plane * height * width;
        float *target = y + plane * output_height * output_width;
        int *indices = argmax ? argmax + plane * output_height * output_width : 0;
        for (long row = 0; row < output_height; row++) {
            const float *top = source + 2 * row * width, *bottom = top + width;
            for (long column = 0; column < output_width; column += 16) {
                const long count = output_width - column < 16 ? output_width - column : 16;
                const __mmask16 low = first_lanes(2 * count), high = first_lanes(2 * count - 16);
                const __mmask16 lanes = first_lanes(count);
                const float *t = top + 2 * column, *b = bottom + 2 * column;
                const __m512 t0 = _mm512_maskz_loadu_ps(low, t), t1 = _mm512_maskz_loadu_ps(high, t + 16);
                const __m512 b0 = _mm512_maskz_loadu_ps(low, b), b1 = _mm512_maskz_loadu_ps(high, b + 16);
                __m512 best = _mm512_permutex2var_ps(t0, even, t1);
                __m512i where = _mm512_setzero_si512();
                challenge(&best, &where, _mm512_permutex2var_ps(t0, odd, t1), 1);
                challenge(&best, &where, _mm512_permutex2var_ps(b0, even, b1), (int)width);
                challenge(&best, &where, _mm512_permutex2var_ps(b0, odd, b1), (int)width + 1);
                _mm512_mask_storeu_ps(target + row * output_width + column, lanes, best);
                if (indices) {
                    // Index in the input plane: (2·row)·W + 2·(column + lane) + the winner's offset.
                    const __m512i base = _mm512_set1_epi32((int)(2 * row * width + 2 * column));
                    const __m512i index = _mm512_add_epi32(_mm512_add_epi32(base, lane_columns), where);
                    _mm512_mask_storeu_epi32(indices + row * output_width + column, lanes, index);
                }
            }
        }
    }
}
#endif
