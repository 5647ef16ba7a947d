// Winograd F(2×2, 3×3) transforms: see include/winograd.h. Only additions and halvings, so
// every clone (AVX-512, AVX2, baseline) gives bit-identical results.
#include "winograd.h"

#if defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define WINOGRAD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WINOGRAD_CLONES
#endif

WINOGRAD_CLONES
void winograd_f2_weights(const float *w, long output_channels, long input_channels, long co_begin, long co_end,
                         float *u) {
    const long plane = output_channels * input_channels;
    for (long co = co_begin; co < co_end; co++) {
        for (long ci = 0; ci < input_channels; ci++) {
            const float *g = w + (co * input_channels + ci) * 9;
            // t = G·g, rows of 3; then u = t·Gᵀ, rows of 4. G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
            float t[4][3];
            for (int v = 0; v < 3; v++) {
                const float a = g[v], b = g[3 + v], c = g[6 + v];
                t[0][v] = a;
                t[1][v] = 0.5f * (a + b + c);
                t[2][v] = 0.5f * (a - b + c);
                t[3][v] = c;
            }
            float *target = u + co * input_channels + ci;
            for (int i = 0; i < 4; i++) {
                const float a = t[i][0], b = t[i][1], c = t[i][2];
                target[(4 * i + 0) * plane] = a;
                target[(4 * i + 1) * plane] = 0.5f * (a + b + c);
                target[(4 * i + 2) * plane] = 0.5f * (a - b + c);
                target[(4 * i + 3) * plane] = c;
            }
        }
    }
}

long winograd_f2_row_scratch(long tiles_w) { return 8 * (2 * tiles_w + 2); }

/// Input row r of a plane, zero-padded: out[k] = plane[r][k − padding], 0 outside, k < wp.
static inline void padded_row(const float *plane, long height, long width, long padding, long r, long wp,
                              float *out) {
    if (r < 0 || r >= height) {
        __builtin_memset(out, 0, (unsigned long)wp * sizeof(float));
        return;
    }
    for (long k = 0; k < padding; k++) out[k] = 0;
    __builtin_memcpy(out + padding, plane + r * width, (unsigned long)width * sizeof(float));
    for (long k = padding + width; k < wp; k++) out[k] = 0;
}

WINOGRAD_CLONES
void winograd_f2_input(const float *x, long channels, long height, long width, long padding, long tiles_h,
                       long tiles_w, long first, long count, long c_begin, long c_end, float *v, float *rows) {
    const long wp = 2 * tiles_w + 2;   // ≥ width + 2·padding: every tile's 4 columns
    const long tiles_per_image = tiles_h * tiles_w;
    const long xi_stride = channels * count;
    float *p0 = rows, *p1 = rows + wp, *p2 = rows + 2 * wp, *p3 = rows + 3 * wp;
    float *t0 = rows + 4 * wp, *t1 = rows + 5 * wp, *t2 = rows + 6 * wp, *t3 = rows + 7 * wp;
    for (long c = c_begin; c < c_end; c++) {
        long tile = first;
        while (tile < first + count) {
            const long n = tile / tiles_per_image, th = (tile % tiles_per_image) / tiles_w, tw = tile % tiles_w;
            const long end = tw + (first + count - tile < tiles_w - tw ? first + count - tile : tiles_w - tw);
            const float *plane = x + (n * channels + c) * height * width;
            const long r = 2 * th - padding;
            padded_row(plane, height, width, padding, r, wp, p0);
            padded_row(plane, height, width, padding, r + 1, wp, p1);
            padded_row(plane, height, width, padding, r + 2, wp, p2);
            padded_row(plane, height, width, padding, r + 3, wp, p3);
            // Bᵀ·d down the columns: Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
            const long k0 = 2 * tw, k1 = 2 * end + 2;
            for (long k = k0; k < k1; k++) {
                t0[k] = p0[k] - p2[k];
                t1[k] = p1[k] + p2[k];
                t2[k] = p2[k] - p1[k];
                t3[k] = p1[k] - p3[k];
            }
            // (Bᵀ·d)·B along each row, tile by tile.
            float *out = v + c * count + (tile - first) - tw;
            const float *ts[4] = {t0, t1, t2, t3};
            for (int i = 0; i < 4; i++) {
                const float *t = ts[i];
                float *o0 = out + (4 * i + 0) * xi_stride, *o1 = out + (4 * i + 1) * xi_stride;
                float *o2 = out + (4 * i + 2) * xi_stride, *o3 = out + (4 * i + 3) * xi_stride;
                for (long j = tw; j < end; j++) {
                    const float a = t[2 * j], b = t[2 * j + 1], cc = t[2 * j + 2], d = t[2 * j + 3];
                    o0[j] = a - cc;
                    o1[j] = b + cc;
                    o2[j] = cc - b;
                    o3[j] = b - d;
                }
            }
            tile += end - tw;
        }
    }
}

/// Output tiles j0 … j0 + L − 1 (L ≤ 16) of one channel: a[q][l] = (Aᵀ·m·A)[q] + bias (rectified when
/// asked) of tile j0 + l, q = y00, y01, y10, y11, from m[ξ·stride + j0 + l], Aᵀ = [1 1 1 0; 0 1 −1 −1].
/// Contiguous runs of 16 so the loops vectorize; a shorter run computes the same sums in the same order.
static inline __attribute__((always_inline)) void output_tiles(const float *restrict m, long stride, long j0, long count,
                                                               float bias, int rectify, float a[4][16]) {
    float r0[4][16], r1[4][16];
    for (int e = 0; e < 4; e++) {
        const float *q0 = m + e * stride + j0, *q1 = m + (4 + e) * stride + j0;
        const float *q2 = m + (8 + e) * stride + j0, *q3 = m + (12 + e) * stride + j0;
        for (long l = 0; l < count; l++) {
            r0[e][l] = q0[l] + q1[l] + q2[l];
            r1[e][l] = q1[l] - q2[l] - q3[l];
        }
    }
    for (long l = 0; l < count; l++) {
        a[0][l] = r0[0][l] + r0[1][l] + r0[2][l] + bias;
        a[1][l] = r0[1][l] - r0[2][l] - r0[3][l] + bias;
        a[2][l] = r1[0][l] + r1[1][l] + r1[2][l] + bias;
        a[3][l] = r1[1][l] - r1[2][l] - r1[3][l] + bias;
    }
    if (rectify) {
        for (int q = 0; q < 4; q++) {
            for (long l = 0; l < count; l++) a[q][l] = a[q][l] > 0 ? a[q][l] : 0;
        }
    }
}

WINOGRAD_CLONES
void winograd_f2_output(const float *m, long output_channels, long output_height, long output_width,
                        long tiles_h, long tiles_w, long first, long count, long co_begin, long co_end,
                        const float *bias, int rectify, float *y) {
    const long tiles_per_image = tiles_h * tiles_w;
    const long xi_stride = output_channels * count;
    const long full_w = output_width / 2;   // tiles with both output columns
    for (long co = co_begin; co < co_end; co++) {
        const float b0 = bias ? bias[co] : 0.0f;
        const float *row = m + co * count;
        long tile = first;
        while (tile < first + count) {
            const long n = tile / tiles_per_image, th = (tile % tiles_per_image) / tiles_w, tw = tile % tiles_w;
            const long end = tw + (first + count - tile < tiles_w - tw ? first + count - tile : tiles_w - tw);
            float *y0 = y + ((n * output_channels + co) * output_height + 2 * th) * output_width;
            float *y1 = y0 + output_width;
            // The last tile of an odd-width row has one output column, of an odd-height plane one row.
            const int second_row = 2 * th + 1 < output_height;
            for (long j0 = tw; j0 < end; j0 += 16) {
                const long count_j = end - j0 < 16 ? end - j0 : 16;
                float a[4][16];
                if (count_j == 16) {
                    output_tiles(row + (tile - first) - tw, xi_stride, j0, 16, b0, rectify, a);
                } else {
                    output_tiles(row + (tile - first) - tw, xi_stride, j0, count_j, b0, rectify, a);
                }
                if (j0 + count_j <= full_w) {
                    for (long l = 0; l < count_j; l++) {
                        y0[2 * (j0 + l)] = a[0][l];
                        y0[2 * (j0 + l) + 1] = a[1][l];
                    }
                    if (second_row) {
                        for (long l = 0; l < count_j; l++) {
                            y1[2 * (j0 + l)] = a[2][l];
                            y1[2 * (j0 + l) + 1] = a[3][l];
                        }
                    }
                } else {
                    for (long l = 0; l < count_j; l++) {
                        const long j = j0 + l;
                        y0[2 * j] = a[0][l];
                        if (j < full_w) y0[2 * j + 1] = a[1][l];
                        if (second_row) {
                            y1[2 * j] = a[2][l];
                            if (j < full_w) y1[2 * j + 1] = a[3][l];
                        }
                    }
                }
            }
            tile += end - tw;
        }
    }
}
