// The kernels' entry points (vector_kernels.h): each forwards to the version of the level this
// process uses (`vector_kernels_level()`, chosen once), through one table per level.
#include "kernel_levels.h"

#define TABLE(LEVEL)                                                                                   \
    {                                                                                                  \
        narrow_sgemm_##LEVEL, narrow_sgemm_gathered_##LEVEL, narrow_sgemm_abt_##LEVEL,                 \
        narrow_sgemm_abt_gathered_##LEVEL, unfold_row_stride1_##LEVEL, fold_channel_stride1_##LEVEL,   \
        pad_planes_##LEVEL, crop_planes_##LEVEL, max_pool_2x2_##LEVEL                                  \
    }

static const struct vector_kernels_table portable_table = TABLE(portable);
#if defined(__x86_64__)
static const struct vector_kernels_table avx2_table = TABLE(avx2);
static const struct vector_kernels_table avx512_table = TABLE(avx512);
#endif

const struct vector_kernels_table *vector_kernels_table_for(int level) {
    switch (level) {
    case vector_kernels_portable: return &portable_table;
#if defined(__x86_64__)
    case vector_kernels_avx2: return &avx2_table;
    case vector_kernels_avx512: return &avx512_table;
#endif
    default: return 0;
    }
}

/// The table of the level in use (never NULL: the level is one this build has).
static inline const struct vector_kernels_table *active(void) {
    const struct vector_kernels_table *table = vector_kernels_table_for(vector_kernels_level());
    return table ? table : &portable_table;
}

void narrow_sgemm(int transpose_a, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                  int accumulate, float *c, long ldc) {
    active()->narrow_sgemm(transpose_a, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
}

void narrow_sgemm_gathered(long m, long n, long k, const float *a, long lda, const float *b, const long *b_rows,
                           int accumulate, float *c, long ldc) {
    active()->narrow_sgemm_gathered(m, n, k, a, lda, b, b_rows, accumulate, c, ldc);
}

void narrow_sgemm_abt(long m, long n, long k, const float *a, long lda, const float *b, long ldb, int accumulate,
                      float *c, long ldc) {
    active()->narrow_sgemm_abt(m, n, k, a, lda, b, ldb, accumulate, c, ldc);
}

void narrow_sgemm_abt_gathered(long m, long n, long k, const float *a, long lda, const float *b, const long *b_rows,
                               long segments, long a_step, long b_step, int accumulate, float *c, long ldc) {
    active()->narrow_sgemm_abt_gathered(m, n, k, a, lda, b, b_rows, segments, a_step, b_step, accumulate, c, ldc);
}

void unfold_row_stride1(const float *x, const struct unfold_geometry *g, long row, long first_image, long image_count,
                        float *out) {
    active()->unfold_row_stride1(x, g, row, first_image, image_count, out);
}

void fold_channel_stride1(const float *columns, const struct unfold_geometry *g, long channel, long first_image,
                          long image_count, float *dx) {
    active()->fold_channel_stride1(columns, g, channel, first_image, image_count, dx);
}

void pad_planes(const float *source, long planes, long height, long width, long padding, float *padded) {
    active()->pad_planes(source, planes, height, width, padding, padded);
}

void crop_planes(const float *source, long planes, long height, long width, long row_stride, long plane_stride,
                 const float *bias, float *target) {
    active()->crop_planes(source, planes, height, width, row_stride, plane_stride, bias, target);
}

void max_pool_2x2(const float *x, long planes, long height, long width, float *y, int *argmax) {
    active()->max_pool_2x2(x, planes, height, width, y, argmax);
}
