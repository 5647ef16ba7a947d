/*
 * allocations.c — checks that warmed-up training steps and inference calls make no heap
 * allocation, through the C ABI of the release library (the "no allocation on the step
 * or infer hot path after warm-up"). Linked with the benchmark's malloc counter
 * (bench/Sources/MallocCounter), which defines malloc and its siblings in the executable: that
 * interposes them for every library in the process (libreparo, the Swift runtime, OpenBLAS),
 * and every call from every thread is counted.
 *
 * Workloads (batch 64, the engine's default threads: every core the process may use):
 *   VGG-16 pruned 0.7: a compact step; expanded ×4 with chain_mode auto (online chains and
 *   unrolled ones); inference at batch 1 and 64, BN folded after collapse;
 *   ResNet-20 pruned 0.5: a compact step (stride-2 convs, residual blocks); expanded online.
 * Each: 2 untimed warm-up calls, then 2 counted calls, which must allocate nothing.
 *
 *   cc -O2 -pthread -I include -I bench/Sources/MallocCounter/include reliability/allocations.c \
 *      bench/Sources/MallocCounter/malloc_counter.c -L <libdir> -lreparo -Wl,-rpath,<libdir>
 *   ./allocations
 * Exit status 0 and "allocations: 0 in every workload" when no counted call allocated.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "malloc_counter.h"
#include "reparo.h"

#define BATCH 64
#define PIXELS (3 * 32 * 32)
#define CLASSES 10

static float images[BATCH * PIXELS];
static int32_t labels[BATCH];
static float logits[BATCH * CLASSES];
static int failures;

static void die(const char *what) {
    fprintf(stderr, "allocations: %s failed: %s\n", what, reparo_last_error());
    exit(1);
}

#define CHECK(call) \
    do { if ((call) != REPARO_OK) die(#call); } while (0)

/* Heap allocations made by `calls` calls of `step` after 2 warm-up calls; reports them. */
static void check(const char *workload, reparo_status (*step)(void *, int32_t), void *subject, int32_t batch) {
    for (int i = 0; i < 2; i++) {
        if (step(subject, batch) != REPARO_OK) die(workload);
    }
    uint64_t before = reparo_bench_allocation_count();
    for (int i = 0; i < 2; i++) {
        if (step(subject, batch) != REPARO_OK) die(workload);
    }
    uint64_t made = reparo_bench_allocation_count() - before;
    printf("%-48s %llu allocations in 2 calls\n", workload, (unsigned long long)made);
    if (made != 0) failures++;
}

static reparo_status train(void *trainer, int32_t batch) {
    return reparo_trainer_step(trainer, images, labels, batch, NULL);
}

static reparo_status infer(void *model, int32_t batch) {
    return reparo_infer(model, images, batch, logits, BATCH * CLASSES);
}

static void train_check(const char *workload, reparo_model *model, const char *options) {
    reparo_trainer *trainer = NULL;
    CHECK(reparo_trainer_create(model, NULL, options, &trainer));
    check(workload, train, trainer, BATCH);
    reparo_trainer_free(trainer);
}

/* A preset, pruned with `prune_options`, and a copy of that expanded ×4. */
static void build(const char *spec, const char *prune_options, reparo_model **pruned, reparo_model **expanded) {
    reparo_model *dense = NULL;
    CHECK(reparo_model_create(spec, 1, &dense));
    CHECK(reparo_prune(dense, prune_options, pruned));
    CHECK(reparo_model_clone(*pruned, expanded));
    CHECK(reparo_expand(*expanded, "{\"rate\":4}"));
    reparo_model_free(dense);
}

int main(void) {
    uint64_t state = 12345;
    for (int i = 0; i < BATCH * PIXELS; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        images[i] = (float)((state >> 40) & 0xFFFF) / 65536.0f - 0.5f;
    }
    for (int i = 0; i < BATCH; i++) labels[i] = i % CLASSES;
    const char *sgd = "{\"lr\":0.001,\"momentum\":0.9,\"weight_decay\":5e-4}";
    const char *online = "{\"lr\":0.001,\"momentum\":0.9,\"weight_decay\":5e-4,\"chain_mode\":\"online\"}";

    reparo_model *pruned = NULL, *expanded = NULL;
    build("{\"preset\":\"vgg16\"}", "{\"ratio\":0.7}", &pruned, &expanded);
    train_check("VGG-16 pruned 0.7: training step", pruned, sgd);
    train_check("VGG-16 pruned 0.7 expanded: training step (auto)", expanded, sgd);
    CHECK(reparo_collapse(expanded, "{\"fold_batchnorm\":true}"));
    check("VGG-16 pruned 0.7 collapsed: inference, batch 1", infer, expanded, 1);
    check("VGG-16 pruned 0.7 collapsed: inference, batch 64", infer, expanded, BATCH);
    reparo_model_free(expanded);
    reparo_model_free(pruned);

    build("{\"preset\":\"resnet20\"}", "{\"ratio\":0.5}", &pruned, &expanded);
    train_check("ResNet-20 pruned 0.5: training step", pruned, sgd);
    train_check("ResNet-20 pruned 0.5 expanded: training step (online)", expanded, online);
    reparo_model_free(expanded);
    reparo_model_free(pruned);

    if (failures) {
        printf("allocations: %d workload(s) allocated after warm-up\n", failures);
        return 1;
    }
    printf("allocations: 0 in every workload\n");
    return 0;
}
