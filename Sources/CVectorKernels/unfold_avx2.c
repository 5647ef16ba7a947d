// AVX2 version of unfold.c (stride-1 im2col / col2im rows; see the header and that file): the
// same masked-load / masked-store scheme on 8-float vectors, lane sets as bits turned into
// vector masks (avx2_lanes.h). Planes at most 4 wide put 8/W output rows in one vector. The
// copies and the additions (each dx element receives its taps in the same order) are those of
// the Swift loops, so results are bit-identical to them and to the AVX-512 version.
#if defined(__x86_64__)
#include "avx2_lanes.h"
#include "kernel_levels.h"

#include <stdint.h>

/// Output rows one vector holds: 8/W for planes at most 4 wide whose output is as wide as the
/// input, else 1.
static inline long rows_per_vector(const struct unfold_geometry *g) {
    return g->output_width == g->input_width && g->output_width <= 4 ? 8 / g->output_width : 1;
}

/// `row_lanes` repeated at each of `count` packed rows from `oh` whose input line lies inside.
static inline unsigned lanes_of_rows(const struct unfold_geometry *g, long oh, long count, long u, unsigned row_lanes) {
    unsigned lanes = 0;
    for (long j = 0; j < count; j++) {
        const long ih = oh + j - g->padding + u;
        if (ih >= 0 && ih < g->input_height) lanes |= (row_lanes << (j * g->output_width)) & 0xFFu;
    }
    return lanes;
}

/// `line + offset` for a possibly negative offset, on integers (masked lanes are never read).
static inline const float *shifted(const float *line, long offset) {
    return (const float *)((uintptr_t)line + (uintptr_t)(offset * (long)sizeof(float)));
}
static inline float *shifted_mutable(float *line, long offset) {
    return (float *)((uintptr_t)line + (uintptr_t)(offset * (long)sizeof(float)));
}

__attribute__((target("avx2")))
void unfold_row_stride1_avx2(const float *x, const struct unfold_geometry *g, long row, long first_image,
                             long image_count, float *out) {
    const long kernel_area = g->kernel_height * g->kernel_width;
    const long channel = row / kernel_area;
    const long u = (row % kernel_area) / g->kernel_width, v = row % g->kernel_width;
    const long plane = g->input_height * g->input_width;
    const long shift = v - g->padding;
    long lower = -shift, upper = g->input_width - shift;
    if (lower < 0) lower = 0;
    if (upper > g->output_width) upper = g->output_width;
    if (rows_per_vector(g) > 1) {
        const long rows = rows_per_vector(g), w = g->output_width;
        const unsigned row_lanes = lanes_between8(lower, upper);
        for (long n = first_image; n < first_image + image_count; n++) {
            const float *channel_plane = x + (n * g->input_channels + channel) * plane;
            for (long oh = 0; oh < g->output_height; oh += rows) {
                const long count = g->output_height - oh < rows ? g->output_height - oh : rows;
                const unsigned load = lanes_of_rows(g, oh, count, u, row_lanes);
                const float *lines = shifted(channel_plane, (oh - g->padding + u) * w + shift);
                store_lanes(out, first_lanes8(count * w), load_lanes(lines, load));
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
            for (long ow = 0; ow < g->output_width; ow += 8) {
                const unsigned store = lanes_between8(0, g->output_width - ow);
                const unsigned load = inside ? lanes_between8(lower - ow, upper - ow) : 0;
                store_lanes(out + ow, store, load_lanes(shifted(line, ow + shift), load));
            }
        }
    }
}

__attribute__((target("avx2")))
void fold_channel_stride1_avx2(const float *columns, const struct unfold_geometry *g, long channel, long first_image,
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
            const long rows = rows_per_vector(g), w = g->output_width;
            const unsigned row_lanes = lanes_between8(lower, upper);
            for (long n = first_image; n < first_image + image_count; n++) {
                float *channel_plane = dx + (n * g->input_channels + channel) * plane;
                for (long oh = 0; oh < g->output_height; oh += rows) {
                    const long count = g->output_height - oh < rows ? g->output_height - oh : rows;
                    const unsigned lanes = lanes_of_rows(g, oh, count, u, row_lanes);
                    float *lines = shifted_mutable(channel_plane, (oh - g->padding + u) * w + shift);
                    store_lanes(lines, lanes, _mm256_add_ps(load_lanes(lines, lanes), load_lanes(source, lanes)));
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
                for (long ow = 0; ow < g->output_width; ow += 8) {
                    const unsigned lanes = lanes_between8(lower - ow, upper - ow);
                    if (!lanes) continue;
                    float *target = shifted_mutable(line, ow + shift);
                    store_lanes(target, lanes, _mm256_add_ps(load_lanes(target, lanes), load_lanes(source + ow, lanes)));
                }
            }
        }
    }
}
#endif
