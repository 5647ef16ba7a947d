// AVX2+FMA version of narrow_gemm.c (row-major C = op(A)·B with a small op(A); see the header
// and that file). 16 ymm registers: tiles of up to 6 rows × 16 columns (two 8-float
// registers per row: 12 accumulators, 2 B registers and a broadcast). Rows split into ⌈m/6⌉
// balanced blocks; k in blocks of 256. Each C element is the same FMA chain as in the AVX-512
// version (over k ascending from zero, per depth block, then added to C), so both levels
// give bit-identical results.
#if defined(__x86_64__)
#include "avx2_lanes.h"
#include "kernel_levels.h"

enum { tile_rows = 6, tile_columns = 16, depth_block = 256 };

enum operand_layout { plain = 0, transposed_a = 1, gathered_b = 2 };

/// One tile, C[rows × ≤16] (+)= op(A)[rows × depth] · B[depth × ≤16]; `rows`, `layout` and
/// `full` (all 16 columns present: plain loads) are constants at every call site.
__attribute__((target("avx2,fma"), always_inline))
static inline void tile(const int rows, const enum operand_layout layout, const int full, long depth,
                        const float *restrict a, long lda, const float *restrict b, long ldb,
                        const long *restrict b_rows, int accumulate, float *restrict c, long ldc, unsigned low_lanes,
                        unsigned high_lanes) {
    const int transposed = layout == transposed_a;
    const __m256i low_mask = lane_vector(low_lanes), high_mask = lane_vector(high_lanes);
    __m256 low[tile_rows], high[tile_rows];
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows; i++) {
        low[i] = _mm256_setzero_ps();
        high[i] = _mm256_setzero_ps();
    }
    for (long p = 0; p < depth; p++) {
        const float *b_row = layout == gathered_b ? b + b_rows[p] : b + p * ldb;
        const __m256 b_low = full ? _mm256_loadu_ps(b_row) : _mm256_maskload_ps(b_row, low_mask);
        const __m256 b_high = full ? _mm256_loadu_ps(b_row + 8) : _mm256_maskload_ps(b_row + 8, high_mask);
        _Pragma("clang loop unroll(full)")
        for (int i = 0; i < rows; i++) {
            const __m256 a_broadcast = _mm256_broadcast_ss(transposed ? &a[p * lda + i] : &a[i * lda + p]);
            low[i] = _mm256_fmadd_ps(a_broadcast, b_low, low[i]);
            high[i] = _mm256_fmadd_ps(a_broadcast, b_high, high[i]);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows; i++) {
        float *row = c + i * ldc;
        if (full) {
            if (accumulate) {
                low[i] = _mm256_add_ps(low[i], _mm256_loadu_ps(row));
                high[i] = _mm256_add_ps(high[i], _mm256_loadu_ps(row + 8));
            }
            _mm256_storeu_ps(row, low[i]);
            _mm256_storeu_ps(row + 8, high[i]);
        } else {
            if (accumulate) {
                low[i] = _mm256_add_ps(low[i], _mm256_maskload_ps(row, low_mask));
                high[i] = _mm256_add_ps(high[i], _mm256_maskload_ps(row + 8, high_mask));
            }
            _mm256_maskstore_ps(row, low_mask, low[i]);
            _mm256_maskstore_ps(row + 8, high_mask, high[i]);
        }
    }
}

#define TILE_LAYOUTS(ROWS, FULL)                                                                                \
    switch (layout) {                                                                                           \
    case plain: tile(ROWS, plain, FULL, depth, a, lda, b, ldb, b_rows, add, c, ldc, low, high); break;          \
    case transposed_a: tile(ROWS, transposed_a, FULL, depth, a, lda, b, ldb, b_rows, add, c, ldc, low, high); break; \
    case gathered_b: tile(ROWS, gathered_b, FULL, depth, a, lda, b, ldb, b_rows, add, c, ldc, low, high); break; \
    }
#define TILE_CASE(ROWS)                                  \
    case ROWS:                                           \
        if (low == 0xFF && high == 0xFF) {               \
            TILE_LAYOUTS(ROWS, 1)                        \
        } else {                                         \
            TILE_LAYOUTS(ROWS, 0)                        \
        }                                                \
        break;

/// `tile` with its row count, operand layout and column completeness turned into constants.
__attribute__((target("avx2,fma")))
static void tile_for_rows(int rows, enum operand_layout layout, long depth, const float *a, long lda, const float *b,
                          long ldb, const long *b_rows, int add, float *c, long ldc, unsigned low, unsigned high) {
    switch (rows) {
        TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2)
        default: TILE_CASE(1)
    }
}

/// C = op(A)·B by tiles, as `multiply` in narrow_gemm.c.
__attribute__((target("avx2,fma")))
static void multiply(enum operand_layout layout, long m, long n, long k, const float *a, long lda, const float *b,
                     long ldb, const long *b_rows, int accumulate, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    const long row_blocks = (m + tile_rows - 1) / tile_rows;
    if (k <= 0) {
        if (!accumulate)
            for (long i = 0; i < m; i++)
                for (long j = 0; j < n; j++) c[i * ldc + j] = 0;
        return;
    }
    for (long p0 = 0; p0 < k; p0 += depth_block) {
        const long depth = k - p0 < depth_block ? k - p0 : depth_block;
        const int add = accumulate || p0 > 0;
        const float *b_block = layout == gathered_b ? b : b + p0 * ldb;
        const long *rows_block = layout == gathered_b ? b_rows + p0 : b_rows;
        for (long j0 = 0; j0 < n; j0 += tile_columns) {
            const long columns = n - j0 < tile_columns ? n - j0 : tile_columns;
            const unsigned low = first_lanes8(columns), high = first_lanes8(columns - 8);
            for (long block = 0; block < row_blocks; block++) {
                const long first = block * m / row_blocks, end = (block + 1) * m / row_blocks;
                const float *a_block = layout == transposed_a ? a + p0 * lda + first : a + first * lda + p0;
                tile_for_rows((int)(end - first), layout, depth, a_block, lda, b_block + j0, ldb, rows_block, add,
                              c + first * ldc + j0, ldc, low, high);
            }
        }
    }
}

void narrow_sgemm_avx2(int transpose_a, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                       int accumulate, float *c, long ldc) {
    multiply(transpose_a ? transposed_a : plain, m, n, k, a, lda, b, ldb, 0, accumulate, c, ldc);
}

void narrow_sgemm_gathered_avx2(long m, long n, long k, const float *a, long lda, const float *b, const long *b_rows,
                                int accumulate, float *c, long ldc) {
    multiply(gathered_b, m, n, k, a, lda, b, 0, b_rows, accumulate, c, ldc);
}
#endif
