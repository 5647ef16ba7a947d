#ifndef REPARO_BENCH_MALLOC_COUNTER_H
#define REPARO_BENCH_MALLOC_COUNTER_H
// Counts heap allocations of the whole reparo-bench process (all threads): the executable
// defines malloc, calloc, realloc, posix_memalign and aligned_alloc, which take precedence over
// glibc's for every library the process loads, and forwards them to glibc's __libc_* entry
// points. Used to check that a warmed-up training step or inference allocates nothing.
#include <stdint.h>

/// Allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc) so far.
uint64_t reparo_bench_allocation_count(void);
/// Bytes requested by those calls so far.
uint64_t reparo_bench_allocated_bytes(void);

#endif
