// AVX2 version of padded_planes.c (compact planes ↔ padded-width layouts; see the header):
// rows copied with masked 8-float vectors.
#if defined(__x86_64__)
#include "avx2_lanes.h"
#include "kernel_levels.h"

__attribute__((target("avx2")))
void pad_planes_avx2(const float *source, long planes, long height, long width, long padding, float *padded) {
    const long padded_width = width + 2 * padding;
    const long padded_plane = (height + 2 * padding) * padded_width;
    for (long plane = 0; plane < planes; plane++) {
        const float *from = source + plane * height * width;
        float *to = padded + plane * padded_plane + padding * padded_width + padding;
        for (long row = 0; row < height; row++, from += width, to += padded_width) {
            for (long column = 0; column < width; column += 8) {
                const unsigned lanes = first_lanes8(width - column);
                store_lanes(to + column, lanes, load_lanes(from + column, lanes));
            }
        }
    }
}

__attribute__((target("avx2")))
void crop_planes_avx2(const float *source, long planes, long height, long width, long row_stride, long plane_stride,
                      const float *bias, float *target) {
    for (long plane = 0; plane < planes; plane++) {
        const __m256 offset = _mm256_set1_ps(bias ? bias[plane] : 0.0f);
        const float *from = source + plane * plane_stride;
        float *to = target + plane * height * width;
        for (long row = 0; row < height; row++, from += row_stride, to += width) {
            for (long column = 0; column < width; column += 8) {
                const unsigned lanes = first_lanes8(width - column);
                const __m256 values = load_lanes(from + column, lanes);
                store_lanes(to + column, lanes, bias ? _mm256_add_ps(values, offset) : values);
            }
        }
    }
}
#endif
