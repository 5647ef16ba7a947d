// AVX2+FMA version of narrow_gemm_abt.c (C = A·Bᵀ, the summed dimension contiguous; see the
// header and that file). A tile of 3 rows of A × 4 rows of B keeps 12 ymm accumulators of 8
// partial sums each; per 8 values of k it loads 3 + 4 vectors for 12 FMAs (16 registers in
// all). Each C element is an 8-lane partial sum over k in ascending order, reduced in a fixed
// order (`sum_lanes`): splitting C does not change results (they differ from the AVX-512
// version's 16-lane sums in the last bits).
#if defined(__x86_64__)
#include "avx2_lanes.h"
#include "kernel_levels.h"

enum { a_rows = 3, b_rows = 4 };

/// The 8 lanes of v summed in a fixed order: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1.
__attribute__((target("avx2"))) static inline float sum_lanes(__m256 v) {
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    half = _mm_add_ss(half, _mm_movehdup_ps(half));
    return _mm_cvtss_f32(half);
}

/// One tile, C[rows_a × rows_b] (+)= Σ_segments A·Bᵀ; `rows_a`, `rows_b` are constants at
/// every call site (see `dot_tile_for`).
__attribute__((target("avx2,fma"), always_inline))
static inline void dot_tile(const int rows_a, const int rows_b, long k, const float *restrict a_first, long lda,
                            const float *const *restrict b_first, long segments, long a_step, long b_step,
                            int accumulate, float *restrict c, long ldc) {
    __m256 sums[a_rows][b_rows];
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows_a; i++)
        _Pragma("clang loop unroll(full)")
        for (int j = 0; j < rows_b; j++) sums[i][j] = _mm256_setzero_ps();
    const __m256i tail = lane_vector(first_lanes8(k % 8));
    for (long segment = 0; segment < segments; segment++) {
        const float *a = a_first + segment * a_step;
        const float *b[b_rows];
        _Pragma("clang loop unroll(full)")
        for (int j = 0; j < rows_b; j++) b[j] = b_first[j] + segment * b_step;
        long p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 a_values[a_rows];
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < rows_a; i++) a_values[i] = _mm256_loadu_ps(a + i * lda + p);
            _Pragma("clang loop unroll(full)")
            for (int j = 0; j < rows_b; j++) {
                const __m256 b_values = _mm256_loadu_ps(b[j] + p);
                _Pragma("clang loop unroll(full)")
                for (int i = 0; i < rows_a; i++) sums[i][j] = _mm256_fmadd_ps(a_values[i], b_values, sums[i][j]);
            }
        }
        if (p < k) {
            // The last k − p (< 8) values: masked loads, the other lanes read as zero.
            __m256 a_values[a_rows];
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < rows_a; i++) a_values[i] = _mm256_maskload_ps(a + i * lda + p, tail);
            _Pragma("clang loop unroll(full)")
            for (int j = 0; j < rows_b; j++) {
                const __m256 b_values = _mm256_maskload_ps(b[j] + p, tail);
                _Pragma("clang loop unroll(full)")
                for (int i = 0; i < rows_a; i++) sums[i][j] = _mm256_fmadd_ps(a_values[i], b_values, sums[i][j]);
            }
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < rows_a; i++) {
        _Pragma("clang loop unroll(full)")
        for (int j = 0; j < rows_b; j++) {
            const float sum = sum_lanes(sums[i][j]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
    }
}

#define B_ROWS_CASE(A_ROWS, B_ROWS) \
    case B_ROWS: dot_tile(A_ROWS, B_ROWS, k, a, lda, b_rows, segments, a_step, b_step, accumulate, c, ldc); break;
#define A_ROWS_CASE(A_ROWS)                                                                                    \
    case A_ROWS:                                                                                               \
        switch (rows_b) {                                                                                      \
            B_ROWS_CASE(A_ROWS, 4) B_ROWS_CASE(A_ROWS, 3) B_ROWS_CASE(A_ROWS, 2) default: B_ROWS_CASE(A_ROWS, 1) \
        }                                                                                                      \
        break;

/// `dot_tile` with its tile shape turned into constants.
__attribute__((target("avx2,fma")))
static void dot_tile_for(int rows_a, int rows_b, long k, const float *a, long lda, const float *const *b_rows,
                         long segments, long a_step, long b_step, int accumulate, float *c, long ldc) {
    switch (rows_a) {
        A_ROWS_CASE(3) A_ROWS_CASE(2)
        default: A_ROWS_CASE(1)
    }
}

/// C = A·Bᵀ by tiles, as `multiply_transposed` in narrow_gemm_abt.c.
__attribute__((target("avx2,fma")))
static void multiply_transposed(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                                const long *b_row_offsets, long segments, long a_step, long b_step, int accumulate,
                                float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
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

void narrow_sgemm_abt_avx2(long m, long n, long k, const float *a, long lda, const float *b, long ldb, int accumulate,
                           float *c, long ldc) {
    multiply_transposed(m, n, k, a, lda, b, ldb, 0, 1, 0, 0, accumulate, c, ldc);
}

void narrow_sgemm_abt_gathered_avx2(long m, long n, long k, const float *a, long lda, const float *b,
                                    const long *b_row_offsets, long segments, long a_step, long b_step, int accumulate,
                                    float *c, long ldc) {
    multiply_transposed(m, n, k, a, lda, b, 0, b_row_offsets, segments, a_step, b_step, accumulate, c, ldc);
}
#endif
