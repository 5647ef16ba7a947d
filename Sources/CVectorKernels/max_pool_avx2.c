// AVX2 version of max_pool.c (2×2, stride-2 max pooling; see the header): 8 outputs of a row
// from two 16-float input rows, split into even and odd columns by an in-lane shuffle and a
// cross-lane permute. Same winners (first maximum in scan order, first NaN) as the definition.
#if defined(__x86_64__)
#include "avx2_lanes.h"
#include "kernel_levels.h"

/// best/where take `candidate`/`offset` in the lanes where it is greater, or NaN while best is not.
__attribute__((target("avx2")))
static inline void challenge(__m256 *best, __m256i *where, __m256 candidate, int offset) {
    const __m256 greater = _mm256_cmp_ps(candidate, *best, _CMP_GT_OQ);
    const __m256 nan = _mm256_andnot_ps(_mm256_cmp_ps(*best, *best, _CMP_UNORD_Q),
                                        _mm256_cmp_ps(candidate, candidate, _CMP_UNORD_Q));
    const __m256 take = _mm256_or_ps(greater, nan);
    *best = _mm256_blendv_ps(*best, candidate, take);
    *where = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(*where), _mm256_castsi256_ps(_mm256_set1_epi32(offset)), take));
}

/// Elements 0, 2, …, 14 (`odd` = 0: even columns) or 1, 3, …, 15 of the 16 floats low:high.
__attribute__((target("avx2")))
static inline __m256 columns_of(__m256 low, __m256 high, int odd) {
    const __m256 mixed = odd ? _mm256_shuffle_ps(low, high, _MM_SHUFFLE(3, 1, 3, 1))
                             : _mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
}

__attribute__((target("avx2")))
void max_pool_2x2_avx2(const float *x, long planes, long height, long width, float *y, int *argmax) {
    const long output_height = height / 2, output_width = width / 2;
    const __m256i lane_columns = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for (long plane = 0; plane < planes; plane++) {
        const float *source = x + plane * height * width;
        float *target = y + plane * output_height * output_width;
        int *indices = argmax ? argmax + plane * output_height * output_width : 0;
        for (long row = 0; row < output_height; row++) {
            const float *top = source + 2 * row * width, *bottom = top + width;
            for (long column = 0; column < output_width; column += 8) {
                const long count = output_width - column < 8 ? output_width - column : 8;
                const unsigned low = first_lanes8(2 * count), high = first_lanes8(2 * count - 8);
                const unsigned lanes = first_lanes8(count);
                const float *t = top + 2 * column, *b = bottom + 2 * column;
                const __m256 t0 = load_lanes(t, low), t1 = load_lanes(t + 8, high);
                const __m256 b0 = load_lanes(b, low), b1 = load_lanes(b + 8, high);
                __m256 best = columns_of(t0, t1, 0);
                __m256i where = _mm256_setzero_si256();
                challenge(&best, &where, columns_of(t0, t1, 1), 1);
                challenge(&best, &where, columns_of(b0, b1, 0), (int)width);
                challenge(&best, &where, columns_of(b0, b1, 1), (int)width + 1);
                store_lanes(target + row * output_width + column, lanes, best);
                if (indices) {
                    const __m256i base = _mm256_set1_epi32((int)(2 * row * width + 2 * column));
                    const __m256i index = _mm256_add_epi32(_mm256_add_epi32(base, lane_columns), where);
                    int *out = indices + row * output_width + column;
                    if (lanes == 0xFF) _mm256_storeu_si256((__m256i *)out, index);
                    else _mm256_maskstore_epi32(out, lane_vector(lanes), index);
                }
            }
        }
    }
}
#endif
