#ifndef REPARO_VECTOR_KERNELS_H
#define REPARO_VECTOR_KERNELS_H

/// AVX-512 kernels for the shapes where OpenBLAS and scalar code lose efficiency: GEMMs with
/// few rows (a pruned conv's 20–96 output channels) against many columns (batch × positions),
/// and im2col / col2im rows built with masked vector loads and stores instead of one memcpy or
/// memset per output row (which dominates on 2×2 … 8×8 feature maps). Internal to the engine
/// (not part of the C API, include/reparo.h); ReparoCore's `BLAS` and `im2col`/`col2im` decide
/// per call whether to use them. Every function here must only be called when
/// `vector_kernels_available()` (or, in tests, `vector_kernels_cpu_supported()`) is 1.

/// Instruction-set levels of the kernels, lowest first. `portable`: none of them run (OpenBLAS
/// and the engine's Swift loops); `avx2`: the 256-bit AVX2+FMA versions; `avx512`: the AVX-512F
/// versions.
enum vector_kernels_level { vector_kernels_portable = 0, vector_kernels_avx2 = 1, vector_kernels_avx512 = 2 };

/// The highest level the CPU and OS support (cpuid; `portable` on non-x86 CPUs).
int vector_kernels_cpu_level(void);

/// The level this process uses, chosen once at first call: REPARO_ISA (avx512, avx2, portable,
/// auto) when set, clamped to `vector_kernels_cpu_level()` with a one-line warning on stderr
/// (an unknown value warns and means auto), else the CPU's level. Always `portable` in a build
/// compiled without optimization (unoptimized, the GEMMs are ~40× slower than OpenBLAS, so
/// debug builds keep OpenBLAS and the Swift loops; the kernels' own tests call them regardless).
/// Thread-safe.
int vector_kernels_level(void);

/// 1 when the kernels may be used: `vector_kernels_level()` is not `portable`.
int vector_kernels_available(void);

/// 1 when the CPU and OS support AVX-512F, whatever the build.
int vector_kernels_cpu_supported(void);

/// The CPU's brand string (cpuid; "" where unknown), NUL-terminated, cut to `capacity` bytes.
void vector_kernels_cpu_name(char *name, int capacity);

/// Row-major C[m×n] = op(A)·B, plus the old C when `accumulate` is nonzero (else C is only
/// written: NaNs in it do not propagate, as with BLAS's beta = 0). op(A) is A [m×k] with row
/// stride `lda`, or, when `transpose_a` is nonzero, the transpose of A [k×m] (stride `lda`).
/// B is [k×n] with row stride `ldb`, C [m×n] with `ldc`. Single-threaded. Each C element is
/// summed over k in ascending order, in blocks of 256, whatever m and n: splitting C into
/// pieces does not change results.
void narrow_sgemm(int transpose_a, long m, long n, long k, const float *a, long lda,
                  const float *b, long ldb, int accumulate, float *c, long ldc);

/// `narrow_sgemm` (A not transposed) with B's rows anywhere: row p of B is the n floats at
/// b + b_rows[p]. An implicit-GEMM convolution passes rows of a padded input plane shifted by
/// each kernel tap, so no im2col matrix is built (see Conv2D's padded-width path).
void narrow_sgemm_gathered(long m, long n, long k, const float *a, long lda, const float *b, const long *b_rows,
                           int accumulate, float *c, long ldc);

/// Row-major C[m×n] = A·Bᵀ (plus the old C when `accumulate` is nonzero), A [m×k] and
/// B [n×k] with row strides `lda`, `ldb`: both operands have the summed dimension contiguous,
/// as in a conv's weight gradient dY·colsᵀ. Single-threaded. Each C element is a 16-lane
/// partial sum over k in ascending order, reduced in a fixed order: splitting C into pieces
/// does not change results.
void narrow_sgemm_abt(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                      int accumulate, float *c, long ldc);

/// `narrow_sgemm_abt` with B's rows anywhere and the sum running over several segments:
/// C (+)= Σ_s A_s·B_sᵀ, where A_s is A advanced by s·a_step floats and row j of B_s is the k
/// floats at b + b_rows[j] + s·b_step, s < segments (a conv's weight gradient over the images of
/// a tile, each image one segment). Each C element is reduced once, after all segments.
void narrow_sgemm_abt_gathered(long m, long n, long k, const float *a, long lda, const float *b,
                               const long *b_rows, long segments, long a_step, long b_step, int accumulate,
                               float *c, long ldc);

/// Shape of a convolution's input and output for `unfold_row_stride1` / `fold_channel_stride1`
/// (stride 1, zero padding `padding` on every side; sizes in elements).
struct unfold_geometry {
    long input_channels, input_height, input_width;
    long kernel_height, kernel_width, padding;
    long output_height, output_width;
};

/// im2col of one row of the column matrix for a stride-1 conv: row = (c, u, v) of
/// Cin·kH·kW; writes `out`[image_count · Hout · Wout], column (n, oh, ow) = x[n, c, oh − p + u,
/// ow − p + v] or 0 outside the image, for images first_image ..< first_image + image_count of
/// x [N, Cin, H, W].
void unfold_row_stride1(const float *x, const struct unfold_geometry *g, long row, long first_image,
                        long image_count, float *out);

/// col2im of one input channel for a stride-1 conv: overwrites channel `channel` of those
/// images of dx [N, Cin, H, W] with the sum of the column entries that im2col read from each
/// element. `columns` is the whole [Cin·kH·kW, image_count · Hout · Wout] column matrix.
void fold_channel_stride1(const float *columns, const struct unfold_geometry *g, long channel, long first_image,
                          long image_count, float *dx);

/// Writes planes [planes, height, width] into the interior of zero-bordered planes
/// [planes, height + 2·padding, width + 2·padding] (the borders are not touched: the caller
/// zeroes them once).
void pad_planes(const float *source, long planes, long height, long width, long padding, float *padded);

/// target[plane, row, column] = source[plane · plane_stride + row · row_stride + column]
/// (+ bias[plane] when bias is not NULL), for the planes [planes, height, width] of target:
/// drops the extra columns of a padded-width result.
void crop_planes(const float *source, long planes, long height, long width, long row_stride, long plane_stride,
                 const float *bias, float *target);

/// 2×2, stride-2 max pooling (floor mode: an odd last row or column is dropped) of planes
/// [planes, height, width] into y [planes, height/2, width/2]. When argmax is not NULL it
/// receives, per output, the index in its input plane of the winner: the first maximum in the
/// order (0,0), (0,1), (1,0), (1,1), or the first NaN, which wins over any number. Indices must
/// fit an int (the caller checks height · width).
void max_pool_2x2(const float *x, long planes, long height, long width, float *y, int *argmax);

/// Every kernel of one level, for tests that call each level directly (the entry points above
/// forward to the table of `vector_kernels_level()`).
struct vector_kernels_table {
    void (*narrow_sgemm)(int transpose_a, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                         int accumulate, float *c, long ldc);
    void (*narrow_sgemm_gathered)(long m, long n, long k, const float *a, long lda, const float *b,
                                  const long *b_rows, int accumulate, float *c, long ldc);
    void (*narrow_sgemm_abt)(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                             int accumulate, float *c, long ldc);
    void (*narrow_sgemm_abt_gathered)(long m, long n, long k, const float *a, long lda, const float *b,
                                      const long *b_rows, long segments, long a_step, long b_step, int accumulate,
                                      float *c, long ldc);
    void (*unfold_row_stride1)(const float *x, const struct unfold_geometry *g, long row, long first_image,
                               long image_count, float *out);
    void (*fold_channel_stride1)(const float *columns, const struct unfold_geometry *g, long channel,
                                 long first_image, long image_count, float *dx);
    void (*pad_planes)(const float *source, long planes, long height, long width, long padding, float *padded);
    void (*crop_planes)(const float *source, long planes, long height, long width, long row_stride,
                        long plane_stride, const float *bias, float *target);
    void (*max_pool_2x2)(const float *x, long planes, long height, long width, float *y, int *argmax);
};

/// The kernels of `level` (a `vector_kernels_level`; `portable`: plain C loops), or NULL when
/// this build has none for it (avx2, avx512 on a non-x86 target). Calling a level above
/// `vector_kernels_cpu_level()` is undefined (illegal instruction).
const struct vector_kernels_table *vector_kernels_table_for(int level);

/// The CPU the calling thread runs on (sched_getcpu; -1 where unknown). The worker pool uses
/// it to notice when it shares a CPU with the thread it waits for.
int vector_kernels_current_cpu(void);

/// How many CPUs this process may run on (its affinity mask: `taskset`, a container's cpuset;
/// 0 where unknown). The engine's default thread count and its worker pool's size come from it,
/// so a process confined to one core does not start threads that fight over that core.
int vector_kernels_usable_cpus(void);

/// The calling thread's affinity mask as `bytes` raw bytes (bit c of byte c/8 = CPU c): read
/// into `mask` (`set` = 0) or applied from it (`set` = 1). 0 on success, -1 where unsupported.
/// For tests of the above.
int vector_kernels_thread_affinity(unsigned char *mask, int bytes, int set);

/// A spin-wait hint (x86 `pause`; nothing elsewhere): the engine's worker pool calls it while
/// it polls for work, so the waiting core yields pipeline resources and power.
static inline void vector_kernels_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
