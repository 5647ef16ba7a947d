#ifndef REPARO_WINOGRAD_H
#define REPARO_WINOGRAD_H

/// Winograd F(2×2, 3×3) transforms (Lavin & Gray 2016, arXiv:1509.09308, §4.1) for a 3×3,
/// stride-1 convolution with zero padding 0 or 1; the 16 products between them are sgemms
/// run by ReparoCore (`WinogradConvolution`). Plain C (clang vectorizes it; an x86-64 build
/// adds AVX2 and AVX-512 clones chosen at load time), portable to arm64. Internal to the engine.
///
/// Tiles: output tile (th, tw) of image n covers output rows 2th, 2th+1 and columns 2tw, 2tw+1
/// (the last row or column of tiles is cut when the output size is odd); its 4×4 input tile
/// starts at input row 2th − padding, column 2tw − padding, zero outside the image. Tiles are
/// numbered t = (n·tiles_h + th)·tiles_w + tw; a block is the `count` tiles from `first`.
/// Transformed planes are indexed by ξ = 4i + j, the 16 entries of a 4×4 tile.

/// U[ξ][co][ci] = (G·g·Gᵀ)[ξ] of each 3×3 kernel g = w[co][ci] (w is [Cout, Cin, 3, 3]),
/// for co in [co_begin, co_end).
void winograd_f2_weights(const float *w, long output_channels, long input_channels, long co_begin, long co_end,
                         float *u);

/// V[ξ][c][j] = (Bᵀ·d·B)[ξ] of the input tile d of block tile j (j < count) of channel c, for c in
/// [c_begin, c_end); V has `count` floats per (ξ, c) row. x is [N, C, H, W]. `rows` is scratch
/// of `winograd_f2_row_scratch(tiles_w)` floats (the caller's: no allocation here).
void winograd_f2_input(const float *x, long channels, long height, long width, long padding, long tiles_h,
                       long tiles_w, long first, long count, long c_begin, long c_end, float *v, float *rows);

/// Floats of scratch `winograd_f2_input` needs.
long winograd_f2_row_scratch(long tiles_w);

/// y tile = Aᵀ·m·A (+ bias[co]; then max(·, 0) when `rectify`) of block tile j from
/// M[ξ][co][j] (`count` floats per (ξ, co) row), for co in [co_begin, co_end); y is [N, Cout, Ho, Wo].
void winograd_f2_output(const float *m, long output_channels, long output_height, long output_width,
                        long tiles_h, long tiles_w, long first, long count, long co_begin, long co_end,
                        const float *bias, int rectify, float *y);

#endif
