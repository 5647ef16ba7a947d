#ifndef REPARO_CZLIB_SHIM_H
#define REPARO_CZLIB_SHIM_H
// zlib (Debian: zlib1g-dev), for the gzip'd IDX files the dataset readers accept.
#include <zlib.h>

// inflateInit2 is a macro (it passes ZLIB_VERSION and sizeof(z_stream)), which Swift cannot
// call: this is it as a function. 16 + MAX_WBITS: a gzip stream (header and CRC-32 trailer),
// not a raw or zlib-wrapped one.
static inline int reparo_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 16 + MAX_WBITS);
}
#endif
