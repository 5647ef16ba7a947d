/*
 * leaks.c — create/free cycles through the C API, measuring the process's resident set size
 * (RSS, /proc/self/statm). Each cycle creates and frees: a model (reparo_model_create), a
 * clone, a pruned model, a trainer that takes one step, a dataset (the bundled digits), a
 * model loaded from a file, and three failing calls (a malformed spec, a missing file, a
 * freed handle) whose error messages are stored per thread.
 *
 * The first `warmup` cycles let allocators, caches and the Swift runtime reach their steady
 * state; RSS is then sampled every 1,000 cycles. A leak of even 100 bytes a cycle would add
 * ~1 MB over 10,000 cycles; the check fails if RSS grows by more than `limit_kb` after warm-up.
 *
 *   ./leaks [cycles=10000] [limit_kb=4096]   prints "leaks: N passed, M failed"
 * Needs REPARO_DATA or the repository's data/ directory for the digits (run from the root).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reparo.h"

static const char *small_spec =
    "{\"input\":[1,8,8],\"classes\":10,\"layers\":["
    "{\"type\":\"conv\",\"out\":4,\"kernel\":3,\"padding\":1},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"basic_block\",\"out\":4},{\"type\":\"maxpool\",\"kernel\":2},"
    "{\"type\":\"flatten\"},{\"type\":\"linear\",\"out\":10}]}";

static long rss_kb(void) {
    long pages = 0, resident = 0;
    FILE *file = fopen("/proc/self/statm", "r");
    if (!file) return -1;
    if (fscanf(file, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(file);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void die(const char *what, reparo_status status) {
    fprintf(stderr, "leaks: %s failed: %s: %s\n", what, reparo_status_name(status), reparo_last_error());
    exit(1);
}

#define CHECK(call)                                    \
    do {                                               \
        reparo_status status_ = (call);                \
        if (status_ != REPARO_OK) die(#call, status_); \
    } while (0)

static void cycle(const char *saved_path) {
    reparo_model *model = NULL, *copy = NULL, *pruned = NULL, *loaded = NULL;
    reparo_trainer *trainer = NULL;
    reparo_dataset *dataset = NULL;
    CHECK(reparo_model_create(small_spec, 1, &model));
    CHECK(reparo_model_clone(model, &copy));
    CHECK(reparo_prune(copy, "{\"ratio\":0.5}", &pruned));

    CHECK(reparo_dataset_load("digits", NULL, "test", &dataset));
    const float *images = NULL;
    const int32_t *labels = NULL;
    CHECK(reparo_dataset_data(dataset, &images, &labels));
    CHECK(reparo_trainer_create(pruned, copy, "{\"lr\":0.01,\"threads\":1}", &trainer));
    CHECK(reparo_trainer_step(trainer, images, labels, 4, NULL));
    float logits[2 * 10];
    CHECK(reparo_infer(pruned, images, 2, logits, 20));

    CHECK(reparo_model_load(saved_path, &loaded));

    /* Failing calls: each stores a message for this thread. */
    reparo_model *never = NULL;
    if (reparo_model_create("{\"preset\":\"vgg17\"}", 1, &never) == REPARO_OK) die("malformed spec accepted", 0);
    if (reparo_model_load("/nonexistent/reparo.safetensors", &never) == REPARO_OK) die("missing file accepted", 0);

    reparo_trainer_free(trainer);
    reparo_dataset_free(dataset);
    reparo_model_free(loaded);
    reparo_model_free(pruned);
    reparo_model_free(copy);
    reparo_model_free(model);
    /* The handle is now stale: rejected, and the rejection itself must not leak. */
    if (reparo_infer(model, images, 1, logits, 10) != REPARO_ERR_INVALID_ARGUMENT) die("stale handle accepted", 0);
}

int main(int argc, char **argv) {
    long cycles = argc > 1 ? atol(argv[1]) : 10000;
    long limit_kb = argc > 2 ? atol(argv[2]) : 4096;
    long warmup = cycles / 10 < 1000 ? cycles / 10 : 1000;

    char saved_path[] = "/tmp/reparo-leaks-XXXXXX";
    int descriptor = mkstemp(saved_path);
    if (descriptor < 0) { perror("mkstemp"); return 1; }
    close(descriptor);
    reparo_model *model = NULL;
    CHECK(reparo_model_create(small_spec, 3, &model));
    CHECK(reparo_model_save(model, saved_path));
    reparo_model_free(model);

    long start_kb = rss_kb(), warm_kb = 0, peak_kb = 0;
    printf("leaks: RSS %ld KiB before the first cycle\n", start_kb);
    for (long i = 1; i <= cycles; i++) {
        cycle(saved_path);
        long now = rss_kb();
        if (now > peak_kb) peak_kb = now;
        if (i == warmup) warm_kb = now;
        if (i % 1000 == 0 || i == cycles) printf("leaks: cycle %6ld  RSS %ld KiB\n", i, now);
        fflush(stdout);
    }
    unlink(saved_path);
    long end_kb = rss_kb();
    long growth = end_kb - warm_kb;
    printf("leaks: %ld cycles; RSS %ld KiB after %ld warm-up cycles, %ld KiB at the end (peak %ld): "
           "%+ld KiB, %+.1f bytes/cycle\n",
           cycles, warm_kb, warmup, end_kb, peak_kb, growth, growth * 1024.0 / (double)(cycles - warmup));
    int ok = growth <= limit_kb;
    printf("leaks: %d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
