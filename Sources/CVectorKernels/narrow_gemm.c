// Register-blocked AVX-512 GEMM for row-major C = op(A)·B with a small op(A) (see the header).
//
// C is cut into tiles of up to 8 rows × 32 columns (two 16-float registers per row: 16
// accumulators, 2 B registers and a broadcast fit the 32 vector registers). The rows are
// split into ⌈m/8⌉ blocks of balanced height (20 rows → 7+7+6, not 8+8+4), so odd channel
// counts do not leave a nearly empty block. For each k, one tile row of B is loaded (masked on
// the last columns) and each A element of the tile's rows is broadcast against it. k runs in
// blocks of 256 so a tile's slice of B (256 × 32 floats, 32 KiB) stays in L1 while every row
// block of A passes over it. Neither operand is packed: A's elements are read in place (with
// m ≤ 160 or a small A, all of it stays in L1/L2) and B's rows are streamed.
//
// Functions carry target("avx512f") rather than the file being compiled with -mavx512f, so
// the library still loads and runs (on OpenBLAS) on CPUs without AVX-512.
#if defined(__x86_64__)
#include "kernel_levels.h"

#include <immintrin.h>

enum { tile_rows = 8, tile_columns = 32, depth_block = 256 };

/// How a tile reads its operands: A [m×k], Aᵀ (A stored [k×m]), or A [m×k] with B's rows at
/// arbitrary offsets (`narrow_sgemm_gathered`).
enum operand_layout { plain = 0, transposed_a = 1, gathered_b = 2 };

/// One tile: C[rows × ≤32] (+)= op(A)[rows × depth] · B[depth × ≤32]; B's row p starts at
/// b + p·ldb, or at b + b_rows[p] when gathered. `rows` and `layout` are constants at every
/// call site (see `tile_for_rows`), so the loops over rows unroll into straight-line FMAs.
__attribute__((target("avx512f"), always_inline))
static inline void tile(const int rows, const enum operand_layout layout, long depth, const float *restrict a,
                        long lda, const float *restrict b, long ldb, const long *restrict b_rows, int accumulate,
                        float *restrict c, long ldc, __mmask16 low_mask, __mmask16 high_mask) {
    const int transposed = layout == transposed_a;
    __m512 low[tile_rows], high[tile_rows];
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows; i++) {
        low[i] = _mm512_setzero_ps();
        high[i] = _mm512_setzero_ps();
    }
    for (long p = 0; p < depth; p++) {
        const float *b_row = layout == gathered_b ? b + b_rows[p] : b + p * ldb;
        const __m512 b_low = _mm512_maskz_loadu_ps(low_mask, b_row);
        const __m512 b_high = _mm512_maskz_loadu_ps(high_mask, b_row + 16);
        _Pragma("clang loop unroll(full)")
        for (int i = 0; i < rows; i++) {
            const __m512 a_broadcast = _mm512_set1_ps(transposed ? a[p * lda + i] : a[i * lda + p]);
            low[i] = _mm512_fmadd_ps(a_broadcast, b_low, low[i]);
            high[i] = _mm512_fmadd_ps(a_broadcast, b_high, high[i]);
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows; i++) {
        float *row = c + i * ldc;
        if (accumulate) {
            low[i] = _mm512_add_ps(low[i], _mm512_maskz_loadu_ps(low_mask, row));
            high[i] = _mm512_add_ps(high[i], _mm512_maskz_loadu_ps(high_mask, row + 16));
        }
        _mm512_mask_storeu_ps(row, low_mask, low[i]);
        _mm512_mask_storeu_ps(row + 16, high_mask, high[i]);
    }
}

#define TILE_CASE(ROWS)                                                                                   \
    case ROWS:                                                                                            \
        switch (layout) {                                                                                 \
        case plain: tile(ROWS, plain, depth, a, lda, b, ldb, b_rows, add, c, ldc, low, high); break;      \
        case transposed_a: tile(ROWS, transposed_a, depth, a, lda, b, ldb, b_rows, add, c, ldc, low, high); break; \
        case gathered_b: tile(ROWS, gathered_b, depth, a, lda, b, ldb, b_rows, add, c, ldc, low, high); break; \
        }                                                                                                 \
        break;

/// `tile` with its row count and operand layout turned into constants.
__attribute__((target("avx512f")))
static void tile_for_rows(int rows, enum operand_layout layout, long depth, const float *a, long lda, const float *b,
                          long ldb, const long *b_rows, int add, float *c, long ldc, __mmask16 low, __mmask16 high) {
    switch (rows) {
        TILE_CASE(8) TILE_CASE(7) TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2)
        default: TILE_CASE(1)
    }
}

static inline __mmask16 lane_mask(long lanes) {
    return lanes >= 16 ? (__mmask16)0xFFFF : lanes <= 0 ? (__mmask16)0 : (__mmask16)((1u << lanes) - 1);
}

/// C = op(A)·B by tiles; see the file comment.
__attribute__((target("avx512f")))
static void multiply(enum operand_layout layout, long m, long n, long k, const float *a, long lda, const float *b,
                     long ldb, const long *b_rows, int accumulate, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    const long row_blocks = (m + tile_rows - 1) / tile_rows;
    if (k <= 0) {
        // An empty sum: C = 0 (or C unchanged when accumulating), as BLAS does.
        if (!accumulate)
            for (long i = 0; i < m; i++)
                for (long j = 0; j < n; j++) c[i * ldc + j] = 0;
        return;
    }
    for (long p0 = 0; p0 < k; p0 += depth_block) {
        const long depth = k - p0 < depth_block ? k - p0 : depth_block;
        const int add = accumulate || p0 > 0;
        // This depth block's rows of B: offsets p0… of the table, or rows p0… of the matrix.
        const float *b_block = layout == gathered_b ? b : b + p0 * ldb;
        const long *rows_block = layout == gathered_b ? b_rows + p0 : b_rows;
        for (long j0 = 0; j0 < n; j0 += tile_columns) {
            const long columns = n - j0 < tile_columns ? n - j0 : tile_columns;
            const __mmask16 low_mask = lane_mask(columns), high_mask = lane_mask(columns - 16);
            for (long block = 0; block < row_blocks; block++) {
                const long first = block * m / row_blocks, end = (block + 1) * m / row_blocks;
                const float *a_block = layout == transposed_a ? a + p0 * lda + first : a + first * lda + p0;
                tile_for_rows((int)(end - first), layout, depth, a_block, lda, b_block + j0, ldb, rows_block, add,
                              c + first * ldc + j0, ldc, low_mask, high_mask);
            }
        }
    }
}

void narrow_sgemm_avx512(int transpose_a, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                  int accumulate, float *c, long ldc) {
    multiply(transpose_a ? transposed_a : plain, m, n, k, a, lda, b, ldb, 0, accumulate, c, ldc);
}

void narrow_sgemm_gathered_avx512(long m, long n, long k, const float *a, long lda, const float *b, const long *b_rows,
                           int accumulate, float *c, long ldc) {
    multiply(gathered_b, m, n, k, a, lda, b, 0, b_rows, accumulate, c, ldc);
}
#endif
