// Copies between compact planes [C, H, W] and padded-width layouts (see the header), row by
// row with masked 16-float vectors: rows here are 2–64 floats, too short for memcpy calls.
#if defined(__x86_64__)
#include "kernel_levels.h"

#include <immintrin.h>

static inline __mmask16 first_lanes(long lanes) {
    return lanes >= 16 ? (__mmask16)0xFFFF : lanes <= 0 ? (__mmask16)0 : (__mmask16)((1u << lanes) - 1);
}

__attribute__((target("avx512f")))
void pad_planes_avx512(const float *source, long planes, long height, long width, long padding, float *padded) {
    const long padded_width = width + 2 * padding;
    const long padded_plane = (height + 2 * padding) * padded_width;
    for (long plane = 0; plane < planes; plane++) {
        const float *from = source + plane * height * width;
        float *to = padded + plane * padded_plane + padding * padded_width + padding;
        for (long row = 0; row < height; row++, from += width, to += padded_width) {
            for (long column = 0; column < width; column += 16) {
                const __mmask16 lanes = first_lanes(width - column);
                _mm512_mask_storeu_ps(to + column, lanes, _mm512_maskz_loadu_ps(lanes, from + column));
            }
        }
    }
}

__attribute__((target("avx512f")))
void crop_planes_avx512(const float *source, long planes, long height, long width, long row_stride, long plane_stride,
                 const float *bias, float *target) {
    for (long plane = 0; plane < planes; plane++) {
        const __m512 offset = _mm512_set1_ps(bias ? bias[plane] : 0.0f);
        const float *from = source + plane * plane_stride;
        float *to = target + plane * height * width;
        for (long row = 0; row < height; row++, from += row_stride, to += width) {
            for (long column = 0; column < width; column += 16) {
                const __mmask16 lanes = first_lanes(width - column);
                const __m512 values = _mm512_maskz_loadu_ps(lanes, from + column);
                _mm512_mask_storeu_ps(to + column, lanes, bias ? _mm512_add_ps(values, offset) : values);
            }
        }
    }
}
#endif
