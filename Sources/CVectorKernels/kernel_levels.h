// The kernels of each level under their level's name (`narrow_sgemm_avx512`,
// `narrow_sgemm_avx2`, `narrow_sgemm_portable`, …), for kernel_dispatch.c, which exposes them
// through the unsuffixed entry points and `vector_kernels_table_for`. Same contracts as the
// entry points in vector_kernels.h. The avx512 and avx2 ones exist on x86-64 only.
#ifndef REPARO_KERNEL_LEVELS_H
#define REPARO_KERNEL_LEVELS_H

#include "vector_kernels.h"

#define DECLARE_KERNELS(LEVEL)                                                                                    \
    void narrow_sgemm_##LEVEL(int transpose_a, long m, long n, long k, const float *a, long lda, const float *b,  \
                              long ldb, int accumulate, float *c, long ldc);                                     \
    void narrow_sgemm_gathered_##LEVEL(long m, long n, long k, const float *a, long lda, const float *b,          \
                                       const long *b_rows, int accumulate, float *c, long ldc);                  \
    void narrow_sgemm_abt_##LEVEL(long m, long n, long k, const float *a, long lda, const float *b, long ldb,      \
                                  int accumulate, float *c, long ldc);                                           \
    void narrow_sgemm_abt_gathered_##LEVEL(long m, long n, long k, const float *a, long lda, const float *b,       \
                                           const long *b_rows, long segments, long a_step, long b_step,          \
                                           int accumulate, float *c, long ldc);                                  \
    void unfold_row_stride1_##LEVEL(const float *x, const struct unfold_geometry *g, long row, long first_image,  \
                                    long image_count, float *out);                                               \
    void fold_channel_stride1_##LEVEL(const float *columns, const struct unfold_geometry *g, long channel,        \
                                      long first_image, long image_count, float *dx);                            \
    void pad_planes_##LEVEL(const float *source, long planes, long height, long width, long padding,             \
                            float *padded);                                                                      \
    void crop_planes_##LEVEL(const float *source, long planes, long height, long width, long row_stride,          \
                             long plane_stride, const float *bias, float *target);                               \
    void max_pool_2x2_##LEVEL(const float *x, long planes, long height, long width, float *y, int *argmax);

DECLARE_KERNELS(portable)
#if defined(__x86_64__)
DECLARE_KERNELS(avx2)
DECLARE_KERNELS(avx512)
#endif

#endif
