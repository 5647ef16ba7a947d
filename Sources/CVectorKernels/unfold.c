// im2col / col2im for stride-1 convolutions with masked AVX-512 loads and stores (see the
// header). A column row holds, for each image and output row oh, the input line
// ih = oh − padding + u read from iw = ow − padding + v: a contiguous run of the line with
// zeros where iw falls outside it. A masked load with the lanes of the valid run enabled reads
// exactly that run and zeroes the rest (disabled lanes are never accessed, so reading "before"
// the line is safe), and a masked store writes the row's width: two instructions per 16
// outputs instead of a memset + memcpy + memset call per row. Planes at most 8 wide put
// several rows in one vector (`rows_per_vector`): a 4×4 plane is one load and one store per tap.
#if defined(__x86_64__)
#include "kernel_levels.h"

#include <immintrin.h>
#include <stdint.h>

/// Lanes [lower, upper) of a 16-lane chunk (bounds relative to the chunk, clamped to 0…16).
static inline __mmask16 lanes_between(long lower, long upper) {
    if (lower < 0) lower = 0;
    if (upper > 16) upper = 16;
    if (upper <= lower) return 0;
    return (__mmask16)(((1u << (upper - lower)) - 1) << lower);
}

/// The first `lanes` lanes.
static inline __mmask16 first_lanes(long lanes) {
    return lanes >= 16 ? (__mmask16)0xFFFF : lanes <= 0 ? (__mmask16)0 : (__mmask16)((1u << lanes) - 1);
}

/// Output rows one vector holds: 16/W for planes at most 8 wide whose output is as wide as the
/// input (so input lines and output rows have the same stride), else 1.
static inline long rows_per_vector(const struct unfold_geometry *g) {
    return g->output_width == g->input_width && g->output_width <= 8 ? 16 / g->output_width : 1;
}

/// For `count` output rows from `oh` packed in one vector (`rows_per_vector`): `row_lanes`
/// repeated at each row whose input line oh + j − padding + u lies inside the image.
static inline __mmask16 lanes_of_rows(const struct unfold_geometry *g, long oh, long count, long u,
                                      __mmask16 row_lanes) {
    __mmask16 lanes = 0;
    for (long j = 0; j < count; j++) {
        const long ih = oh + j - g->padding + u;
        if (ih >= 0 && ih < g->input_height) lanes |= (__mmask16)(row_lanes << (j * g->output_width));
    }
    return lanes;
}

/// The address of `line[offset]` for a possibly negative offset, computed on integers: lanes
/// outside the line are masked off and never dereferenced.
static inline const float *shifted(const float *line, long offset) {
    return (const float *)((uintptr_t)line + (uintptr_t)(offset * (long)sizeof(float)));
}
static inline float *shifted_mutable(float *line, long offset) {
    return (float *)((uintptr_t)line + (uintptr_t)(offset * (long)sizeof(float)));
}

__attribute__((target("avx512f")))
void unfold_row_stride1_avx512(const float *x, const struct unfold_geometry *g, long row, long first_image,
                        long image_count, float *out) {
    const long kernel_area = g->kernel_height * g->kernel_width;
    const long channel = row / kernel_area;
    const long u = (row % kernel_area) / g->kernel_width, v = row % g->kernel_width;
    const long plane = g->input_height * g->input_width;
    // Output columns [lower, upper) read inside the line (column ow reads iw = ow + shift).
    const long shift = v - g->padding;
    long lower = -shift, upper = g->input_width - shift;
    if (lower < 0) lower = 0;
    if (upper > g->output_width) upper = g->output_width;
    if (rows_per_vector(g) > 1) {
        // Narrow planes (W ≤ 8, output as wide as the input): R = 16/W output rows per vector.
        // Input lines follow each other like output rows, so one masked load covers R of them;
        // the mask repeats the row's valid lanes for each row inside the image.
        const long rows = rows_per_vector(g), w = g->output_width;
        const __mmask16 row_lanes = lanes_between(lower, upper);
        for (long n = first_image; n < first_image + image_count; n++) {
            const float *channel_plane = x + (n * g->input_channels + channel) * plane;
            for (long oh = 0; oh < g->output_height; oh += rows) {
                const long count = g->output_height - oh < rows ? g->output_height - oh : rows;
                const __mmask16 load = lanes_of_rows(g, oh, count, u, row_lanes);
                const float *lines = shifted(channel_plane, (oh - g->padding + u) * w + shift);
                _mm512_mask_storeu_ps(out, first_lanes(count * w), _mm512_maskz_loadu_ps(load, lines));
                out += count * w;
            }
        }
        return;
    }
    for (long n = first_image; n < first_image + image_count; n++) {
        const float *channel_plane = x + (n * g->input_channels + channel) * plane;
        for (long oh = 0; oh < g->output_height; oh++, out += g->output_width) {
            const long ih = oh - g->padding + u;
            const int inside = ih >= 0 && ih < g->input_height;
            const float *line = shifted(channel_plane, ih * g->input_width);
            for (long ow = 0; ow < g->output_width; ow += 16) {
                const __mmask16 store = lanes_between(0, g->output_width - ow);
                const __mmask16 load = inside ? lanes_between(lower - ow, upper - ow) : 0;
                const __m512 values = _mm512_maskz_loadu_ps(load, shifted(line, ow + shift));
                _mm512_mask_storeu_ps(out + ow, store, values);
            }
        }
    }
}

__attribute__((target("avx512f")))
void fold_channel_stride1_avx512(const float *columns, const struct unfold_geometry *g, long channel, long first_image,
                          long image_count, float *dx) {
    const long kernel_area = g->kernel_height * g->kernel_width;
    const long plane = g->input_height * g->input_width;
    const long row_length = image_count * g->output_height * g->output_width;
    for (long n = first_image; n < first_image + image_count; n++) {
        float *target = dx + (n * g->input_channels + channel) * plane;
        for (long i = 0; i < plane; i++) target[i] = 0;
    }
    for (long k = 0; k < kernel_area; k++) {
        const long u = k / g->kernel_width, v = k % g->kernel_width;
        const long shift = v - g->padding;
        long lower = -shift, upper = g->input_width - shift;
        if (lower < 0) lower = 0;
        if (upper > g->output_width) upper = g->output_width;
        const float *source = columns + (channel * kernel_area + k) * row_length;
        if (rows_per_vector(g) > 1) {
            // R rows per vector, as in unfold_row_stride1; the lanes of one vector are distinct
            // elements of dx, and each element still receives its taps in the same order.
            const long rows = rows_per_vector(g), w = g->output_width;
            const __mmask16 row_lanes = lanes_between(lower, upper);
            for (long n = first_image; n < first_image + image_count; n++) {
                float *channel_plane = dx + (n * g->input_channels + channel) * plane;
                for (long oh = 0; oh < g->output_height; oh += rows) {
                    const long count = g->output_height - oh < rows ? g->output_height - oh : rows;
                    const __mmask16 lanes = lanes_of_rows(g, oh, count, u, row_lanes);
                    float *lines = shifted_mutable(channel_plane, (oh - g->padding + u) * w + shift);
                    const __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, lines),
                                                     _mm512_maskz_loadu_ps(lanes, source));
                    _mm512_mask_storeu_ps(lines, lanes, sum);
                    source += count * w;
                }
            }
            continue;
        }
        for (long n = first_image; n < first_image + image_count; n++) {
            float *channel_plane = dx + (n * g->input_channels + channel) * plane;
            for (long oh = 0; oh < g->output_height; oh++, source += g->output_width) {
                const long ih = oh - g->padding + u;
                if (ih < 0 || ih >= g->input_height) continue;
                float *line = channel_plane + ih * g->input_width;
                for (long ow = 0; ow < g->output_width; ow += 16) {
                    const __mmask16 lanes = lanes_between(lower - ow, upper - ow);
                    if (!lanes) continue;
                    float *target = shifted_mutable(line, ow + shift);
                    const __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, target),
                                                     _mm512_maskz_loadu_ps(lanes, source + ow));
                    _mm512_mask_storeu_ps(target, lanes, sum);
                }
            }
        }
    }
}
#endif
