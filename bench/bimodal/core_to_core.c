// Round-trip latency of one cache line between two CPUs (default 0 and 1): thread A on the first
// CPU writes an odd counter, thread B on the second answers with the next even one, 200,000
// times. On this project's 2-vCPU KVM machine it is either ~55–75 ns (the host runs both vCPUs
// close together, sharing a last-level cache) or ~330–380 ns (far apart), and the host moves
// between the two every few seconds; see bench/README.md, "Bimodal timings".
//   cc -O2 -pthread core_to_core.c -o core_to_core && ./core_to_core [cpu_a cpu_b]
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { rounds = 200000 };
static _Atomic long counter __attribute__((aligned(64)));
static int cpu_a = 0, cpu_b = 1;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *answer(void *unused) {
    (void)unused;
    pin(cpu_b);
    for (long i = 0; i < rounds; i++) {
        while (atomic_load_explicit(&counter, memory_order_acquire) != 2 * i + 1) {
        }
        atomic_store_explicit(&counter, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc == 3) {
        cpu_a = atoi(argv[1]);
        cpu_b = atoi(argv[2]);
    }
    pthread_t thread;
    pin(cpu_a);
    pthread_create(&thread, NULL, answer, NULL);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < rounds; i++) {
        atomic_store_explicit(&counter, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&counter, memory_order_acquire) != 2 * i + 2) {
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    pthread_join(thread, NULL);
    double ns = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / rounds;
    printf("%.0f\n", ns);
    return 0;
}
