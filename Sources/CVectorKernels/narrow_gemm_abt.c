// AVX-512 C = A·Bᵀ with the summed dimension contiguous in both operands (see the header).
//
// Inner-product blocking: a tile of 4 rows of A × 6 rows of B keeps 24 vector accumulators of
// 16 partial sums each; per 16 values of k it loads 4 + 6 vectors for 24 FMAs, then each
// accumulator is reduced to one C element. The loop over A's row blocks is the inner one, so
// each block of 6 rows of B is read from memory once and stays in L1 while all of A (≤ 96 rows
// in the shapes this kernel is chosen for) streams from L2. The row loops carry
// unroll(full): with the segment loop around them clang stopped unrolling them on its own,
// and the spilled accumulators halved the speed.
#if defined(__x86_64__)
#include "kernel_levels.h"

#include <immintrin.h>

enum { a_rows = 4, b_rows = 6 };

/// One tile, C[rows_a × rows_b] (+)= A[rows_a × k] · B[rows_b × k]ᵀ summed over `segments`
/// pairs of operands (segment s: A and B rows advanced by s·a_step, s·b_step floats); `rows_a`
/// and `rows_b` are constants at every call site (see `dot_tile_for`), so the loops unroll
/// onto registers.
__attribute__((target("avx512f"), always_inline))
static inline void dot_tile(const int rows_a, const int rows_b, long k, const float *restrict a_first, long lda,
                            const float *const *restrict b_first, long segments, long a_step, long b_step,
                            int accumulate, float *restrict c, long ldc) {
    __m512 sums[a_rows][b_rows];
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows_a; i++)
        _Pragma("clang loop unroll(full)")
        for (int j = 0; j < rows_b; j++) sums[i][j] = _mm512_setzero_ps();
    for (long segment = 0; segment < segments; segment++) {
        const float *a = a_first + segment * a_step;
        const float *b[b_rows];
        _Pragma("clang loop unroll(full)")
        for (int j = 0; j < rows_b; j++) b[j] = b_first[j] + segment * b_step;
        long p = 0;
        for (; p + 16 <= k; p += 16) {
            __m512 a_values[a_rows];
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < rows_a; i++) a_values[i] = _mm512_loadu_ps(a + i * lda + p);
            _Pragma("clang loop unroll(full)")
            for (int j = 0; j < rows_b; j++) {
                const __m512 b_values = _mm512_loadu_ps(b[j] + p);
                _Pragma("clang loop unroll(full)")
                for (int i = 0; i < rows_a; i++) sums[i][j] = _mm512_fmadd_ps(a_values[i], b_values, sums[i][j]);
            }
        }
        if (p < k) {
            // The last k − p (< 16) values: masked loads, the other lanes read as zero.
            const __mmask16 mask = (__mmask16)((1u << (k - p)) - 1);
            __m512 a_values[a_rows];
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < rows_a; i++) a_values[i] = _mm512_maskz_loadu_ps(mask, a + i * lda + p);
            _Pragma("clang loop unroll(full)")
            for (int j = 0; j < rows_b; j++) {
                const __m512 b_values = _mm512_maskz_loadu_ps(mask, b[j] + p);
                _Pragma("clang loop unroll(full)")
                for (int i = 0; i < rows_a; i++) sums[i][j] = _mm512_fmadd_ps(a_values[i], b_values, sums[i][j]);
            }
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows_a; i++) {
        _Pragma("clang loop unroll(full)")
        for (int j = 0; j < rows_b; j++) {
            const float sum = _mm512_reduce_add_ps(sums[i][j]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
    }
}

#define B_ROWS_CASE(A_ROWS, B_ROWS) \
    case B_ROWS: dot_tile(A_ROWS, B_ROWS, k, a, lda, b_rows, segments, a_step, b_step, accumulate, c, ldc); break;
#define A_ROWS_CASE(A_ROWS)                                                                   \
    case A_ROWS:                                                                              \
        switch (rows_b) {                                                                     \
            B_ROWS_CASE(A_ROWS, 6) B_ROWS_CASE(A_ROWS, 5) B_ROWS_CASE(A_ROWS, 4)              \
            B_ROWS_CASE(A_ROWS, 3) B_ROWS_CASE(A_ROWS, 2) default: B_ROWS_CASE(A_ROWS, 1)     \
        }                                                                                     \
        break;

/// `dot_tile` with its tile shape turned into constants.
__attribute__((target("avx512f")))
static void dot_tile_for(int rows_a, int rows_b, long k, const float *a, long lda, const float *const *b_rows,
                         long segments, long a_step, long b_step, int accumulate, float *c, long ldc) {
    switch (rows_a) {
        A_ROWS_CASE(4) A_ROWS_CASE(3) A_ROWS_CASE(2)
        default: A_ROWS_CASE(1)
    }
}

/// C = A·Bᵀ by tiles, B's row j at b + j·ldb or, with a table, at b + b_row_offsets[j].
__attribute__((target("avx512f")))
static void multiply_transposed(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                                const long *b_row_offsets, long segments, long a_step, long b_step, int accumulate,
                                float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    // Balanced row blocks of A (39 rows → 4,4,…,3 rather than a lone 3 at the end; the same
    // count of tiles either way, but no block smaller than it needs to be).
    const long a_blocks = (m + a_rows - 1) / a_rows;
    for (long j = 0; j < n; j += b_rows) {
        const int rows_b = n - j < b_rows ? (int)(n - j) : b_rows;
        const float *rows[b_rows];
        for (int r = 0; r < rows_b; r++) rows[r] = b + (b_row_offsets ? b_row_offsets[j + r] : (j + r) * ldb);
        for (long block = 0; block < a_blocks; block++) {
            const long first = block * m / a_blocks, end = (block + 1) * m / a_blocks;
            dot_tile_for((int)(end - first), rows_b, k, a + first * lda, lda, rows, segments, a_step, b_step,
                         accumulate, c + first * ldc + j, ldc);
        }
    }
}

void narrow_sgemm_abt_avx512(long m, long n, long k, const float *a, long lda, const float *b, long ldb, int accumulate,
                      float *c, long ldc) {
    multiply_transposed(m, n, k, a, lda, b, ldb, 0, 1, 0, 0, accumulate, c, ldc);
}

void narrow_sgemm_abt_gathered_avx512(long m, long n, long k, const float *a, long lda, const float *b,
                               const long *b_row_offsets, long segments, long a_step, long b_step, int accumulate,
                               float *c, long ldc) {
    multiply_transposed(m, n, k, a, lda, b, 0, b_row_offsets, segments, a_step, b_step, accumulate, c, ldc);
}
#endif
