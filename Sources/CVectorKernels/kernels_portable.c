// Plain-C versions of every kernel (vector_kernels.h), for any CPU: the `portable` level's
// table and what the entry points run on non-x86 targets. The engine does not call the kernels
// at the portable level (OpenBLAS and its Swift loops are faster than these scalar loops), so
// they are written for clarity; they keep the documented semantics (GEMMs sum each C element
// over k in ascending order, per block of 256 for op(A)·B; col2im adds each element's taps in
// the same order as the other levels), and the kernel tests check them like the others.
#include "kernel_levels.h"

enum { depth_block = 256 };

void narrow_sgemm_portable(int transpose_a, long m, long n, long k, const float *a, long lda, const float *b,
                           long ldb, int accumulate, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            float total = accumulate ? c[i * ldc + j] : 0.0f;
            for (long p0 = 0; p0 < k; p0 += depth_block) {
                float sum = 0;
                for (long p = p0; p < k && p < p0 + depth_block; p++)
                    sum += (transpose_a ? a[p * lda + i] : a[i * lda + p]) * b[p * ldb + j];
                total = (accumulate || p0 > 0) ? sum + total : sum;
            }
            c[i * ldc + j] = total;
        }
    }
}

void narrow_sgemm_gathered_portable(long m, long n, long k, const float *a, long lda, const float *b,
                                    const long *b_rows, int accumulate, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            float total = accumulate ? c[i * ldc + j] : 0.0f;
            for (long p0 = 0; p0 < k; p0 += depth_block) {
                float sum = 0;
                for (long p = p0; p < k && p < p0 + depth_block; p++) sum += a[i * lda + p] * b[b_rows[p] + j];
                total = (accumulate || p0 > 0) ? sum + total : sum;
            }
            c[i * ldc + j] = total;
        }
    }
}

void narrow_sgemm_abt_gathered_portable(long m, long n, long k, const float *a, long lda, const float *b,
                                        const long *b_rows, long segments, long a_step, long b_step, int accumulate,
                                        float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            float sum = 0;
            for (long s = 0; s < segments; s++) {
                const float *row_a = a + s * a_step + i * lda, *row_b = b + b_rows[j] + s * b_step;
                for (long p = 0; p < k; p++) sum += row_a[p] * row_b[p];
            }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
    }
}

void narrow_sgemm_abt_portable(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                               int accumulate, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            float sum = 0;
            for (long p = 0; p < k; p++) sum += a[i * lda + p] * b[j * ldb + p];
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
    }
}

void unfold_row_stride1_portable(const float *x, const struct unfold_geometry *g, long row, long first_image,
                                 long image_count, float *out) {
    const long kernel_area = g->kernel_height * g->kernel_width;
    const long channel = row / kernel_area;
    const long u = (row % kernel_area) / g->kernel_width, v = row % g->kernel_width;
    for (long n = first_image; n < first_image + image_count; n++) {
        const float *plane = x + (n * g->input_channels + channel) * g->input_height * g->input_width;
        for (long oh = 0; oh < g->output_height; oh++) {
            const long ih = oh - g->padding + u;
            for (long ow = 0; ow < g->output_width; ow++, out++) {
                const long iw = ow - g->padding + v;
                const int inside = ih >= 0 && ih < g->input_height && iw >= 0 && iw < g->input_width;
                *out = inside ? plane[ih * g->input_width + iw] : 0.0f;
            }
        }
    }
}

void fold_channel_stride1_portable(const float *columns, const struct unfold_geometry *g, long channel,
                                   long first_image, long image_count, float *dx) {
    const long kernel_area = g->kernel_height * g->kernel_width;
    const long plane = g->input_height * g->input_width;
    const long row_length = image_count * g->output_height * g->output_width;
    for (long n = first_image; n < first_image + image_count; n++) {
        float *target = dx + (n * g->input_channels + channel) * plane;
        for (long i = 0; i < plane; i++) target[i] = 0;
    }
    for (long k = 0; k < kernel_area; k++) {
        const long u = k / g->kernel_width, v = k % g->kernel_width;
        const float *source = columns + (channel * kernel_area + k) * row_length;
        for (long n = first_image; n < first_image + image_count; n++) {
            float *target = dx + (n * g->input_channels + channel) * plane;
            for (long oh = 0; oh < g->output_height; oh++) {
                const long ih = oh - g->padding + u;
                for (long ow = 0; ow < g->output_width; ow++, source++) {
                    const long iw = ow - g->padding + v;
                    if (ih >= 0 && ih < g->input_height && iw >= 0 && iw < g->input_width)
                        target[ih * g->input_width + iw] += *source;
                }
            }
        }
    }
}

void pad_planes_portable(const float *source, long planes, long height, long width, long padding, float *padded) {
    const long padded_width = width + 2 * padding;
    const long padded_plane = (height + 2 * padding) * padded_width;
    for (long plane = 0; plane < planes; plane++) {
        for (long row = 0; row < height; row++) {
            const float *from = source + (plane * height + row) * width;
            float *to = padded + plane * padded_plane + (padding + row) * padded_width + padding;
            for (long column = 0; column < width; column++) to[column] = from[column];
        }
    }
}

void crop_planes_portable(const float *source, long planes, long height, long width, long row_stride,
                          long plane_stride, const float *bias, float *target) {
    for (long plane = 0; plane < planes; plane++) {
        for (long row = 0; row < height; row++) {
            const float *from = source + plane * plane_stride + row * row_stride;
            float *to = target + (plane * height + row) * width;
            for (long column = 0; column < width; column++) to[column] = bias ? from[column] + bias[plane] : from[column];
        }
    }
}

void max_pool_2x2_portable(const float *x, long planes, long height, long width, float *y, int *argmax) {
    const long output_height = height / 2, output_width = width / 2;
    const long offsets[4] = {0, 1, width, width + 1};
    for (long plane = 0; plane < planes; plane++) {
        const float *source = x + plane * height * width;
        for (long row = 0; row < output_height; row++) {
            for (long column = 0; column < output_width; column++) {
                const long corner = 2 * row * width + 2 * column;
                float best = source[corner];
                long where = 0;
                for (int candidate = 1; candidate < 4; candidate++) {
                    const float value = source[corner + offsets[candidate]];
                    // Greater, or the first NaN (NaN compares false, so it is tested apart).
                    if (value > best || (value != value && best == best)) {
                        best = value;
                        where = offsets[candidate];
                    }
                }
                const long output = (plane * output_height + row) * output_width + column;
                y[output] = best;
                if (argmax) argmax[output] = (int)(corner + where);
            }
        }
    }
}
