/*
 * threads.c — reparo.h promises that a model may be read by many threads at once. This
 * checks it: 8 pthreads share one model and call reparo_infer for a fixed number of rounds
 * (with batch sizes 1, 3 and 8 interleaved, so the per-batch workspace pool is contended),
 * plus reparo_model_describe, reparo_model_clone and reparo_evaluate from the same threads.
 * Every logit must be bit-identical to the single-threaded run of the same batch: inference
 * is deterministic and a data race would show as a difference (or as a ThreadSanitizer
 * report when the library is built with -sanitize=thread, see reliability/run.sh tsan).
 *
 * Models: resnet20 at width 0.25, pruned (ratio 0.5) and collapsed after expansion; and the
 * same pruned model left expanded (rate 4), whose chains run as three factors.
 *
 * A ninth thread meanwhile trains a model of its own (trainer create, step, free), which the
 * contract allows alongside inference on other models; the trainers it creates run on their
 * own compute threads ("threads" option: 1, then 2), which once were process-wide.
 *
 *   cc -O2 -pthread -I include reliability/threads.c -L <libdir> -lreparo -Wl,-rpath,<libdir>
 *   ./threads [rounds] [infer-only]   (default 40 rounds per thread; "infer-only" leaves out
 *                                     the training thread)
 * Exit status 0 and a line "threads: N passed, 0 failed" when every call matched.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reparo.h"

#define THREADS 8
#define MAX_BATCH 8
#define CLASSES 10
#define PIXELS (3 * 32 * 32)

static const int batches[] = {1, 3, 8};
#define BATCH_KINDS (int)(sizeof batches / sizeof batches[0])

typedef struct {
    const char *name;
    reparo_model *model;
    float reference[BATCH_KINDS][MAX_BATCH * CLASSES];
    float accuracy, loss;
} subject;

static float images[MAX_BATCH * PIXELS];
static int32_t labels[MAX_BATCH];
static subject subjects[2];
static int rounds = 40;
static int with_trainer = 1;
static pthread_barrier_t start_line;

static void die(const char *what, reparo_status status) {
    fprintf(stderr, "threads: %s failed: %s: %s\n", what, reparo_status_name(status), reparo_last_error());
    exit(1);
}

#define CHECK(call)                               \
    do {                                          \
        reparo_status status_ = (call);           \
        if (status_ != REPARO_OK) die(#call, status_); \
    } while (0)

typedef struct {
    int index;
    long passed, failed;
} worker_result;

static void *worker(void *argument) {
    worker_result *result = argument;
    float logits[MAX_BATCH * CLASSES];
    char description[64];
    pthread_barrier_wait(&start_line);
    for (int round = 0; round < rounds; round++) {
        for (int s = 0; s < 2; s++) {
            subject *subject = &subjects[s];
            /* Each thread starts at a different batch size, so all three sizes overlap. */
            int kind = (round + result->index) % BATCH_KINDS;
            int batch = batches[kind];
            memset(logits, 0xFF, sizeof logits);
            reparo_status status = reparo_infer(subject->model, images, batch, logits, MAX_BATCH * CLASSES);
            if (status != REPARO_OK ||
                memcmp(logits, subject->reference[kind], (size_t)batch * CLASSES * sizeof(float)) != 0) {
                fprintf(stderr, "threads: thread %d round %d %s batch %d: %s\n", result->index, round,
                        subject->name, batch, status == REPARO_OK ? "logits differ" : reparo_last_error());
                result->failed++;
            } else {
                result->passed++;
            }
            /* Other read-only calls of the thread-safety promise, less often. */
            if (round % 8 == result->index % 8) {
                size_t length = 0;
                float accuracy = -1, loss = -1;
                reparo_model *copy = NULL;
                int ok = reparo_model_describe(subject->model, description, sizeof description, &length) == REPARO_OK &&
                         length > 0 &&
                         reparo_evaluate(subject->model, images, labels, MAX_BATCH, &accuracy, &loss) == REPARO_OK &&
                         accuracy == subject->accuracy && loss == subject->loss &&
                         reparo_model_clone(subject->model, &copy) == REPARO_OK &&
                         reparo_infer(copy, images, 1, logits, CLASSES) == REPARO_OK &&
                         memcmp(logits, subject->reference[0], CLASSES * sizeof(float)) == 0;
                reparo_model_free(copy);
                if (ok) {
                    result->passed++;
                } else {
                    fprintf(stderr, "threads: thread %d round %d %s: describe/evaluate/clone: %s\n", result->index,
                            round, subject->name, reparo_last_error());
                    result->failed++;
                }
            }
        }
    }
    return NULL;
}

/* Trains a private model while the workers infer on the shared ones. */
static void *trainer_loop(void *argument) {
    worker_result *result = argument;
    reparo_model *own = NULL;
    if (reparo_model_create("{\"preset\":\"resnet20\",\"width\":0.125,\"classes\":10}", 3, &own) != REPARO_OK) {
        fprintf(stderr, "threads: trainer thread: %s\n", reparo_last_error());
        result->failed++;
        return NULL;
    }
    pthread_barrier_wait(&start_line);
    for (int round = 0; round < rounds; round++) {
        reparo_trainer *trainer = NULL;
        const char *options = round % 2 ? "{\"lr\":0.01,\"threads\":2}" : "{\"lr\":0.01,\"threads\":1}";
        if (reparo_trainer_create(own, NULL, options, &trainer) == REPARO_OK &&
            reparo_trainer_step(trainer, images, labels, 2, NULL) == REPARO_OK) {
            result->passed++;
        } else {
            fprintf(stderr, "threads: trainer thread round %d: %s\n", round, reparo_last_error());
            result->failed++;
        }
        reparo_trainer_free(trainer);
    }
    reparo_model_free(own);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = atoi(argv[1]);
    if (rounds < 1) rounds = 1;
    if (argc > 2 && strcmp(argv[2], "infer-only") == 0) with_trainer = 0;

    /* Deterministic inputs in [-1, 1). */
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < MAX_BATCH * PIXELS; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        images[i] = (float)((state >> 40) & 0xFFFF) / 32768.0f - 1.0f;
    }
    for (int i = 0; i < MAX_BATCH; i++) labels[i] = i % CLASSES;

    reparo_model *dense = NULL, *pruned = NULL, *expanded = NULL;
    CHECK(reparo_model_create("{\"preset\":\"resnet20\",\"width\":0.25}", 7, &dense));
    CHECK(reparo_prune(dense, "{\"ratio\":0.5}", &pruned));
    CHECK(reparo_model_clone(pruned, &expanded));
    CHECK(reparo_expand(expanded, "{\"rate\":4,\"seed\":1}"));
    CHECK(reparo_expand(pruned, "{\"rate\":4,\"seed\":1}"));
    CHECK(reparo_collapse(pruned, NULL));
    reparo_model_free(dense);
    subjects[0].name = "pruned+collapsed resnet20";
    subjects[0].model = pruned;
    subjects[1].name = "expanded resnet20";
    subjects[1].model = expanded;

    /* Single-threaded references. */
    for (int s = 0; s < 2; s++) {
        for (int kind = 0; kind < BATCH_KINDS; kind++) {
            CHECK(reparo_infer(subjects[s].model, images, batches[kind], subjects[s].reference[kind],
                               MAX_BATCH * CLASSES));
        }
        CHECK(reparo_evaluate(subjects[s].model, images, labels, MAX_BATCH, &subjects[s].accuracy, &subjects[s].loss));
    }

    pthread_t threads[THREADS + 1];
    worker_result results[THREADS + 1];
    int count = THREADS + with_trainer;
    pthread_barrier_init(&start_line, NULL, (unsigned)count);
    for (int i = 0; i < count; i++) {
        results[i] = (worker_result){.index = i};
        if (pthread_create(&threads[i], NULL, i < THREADS ? worker : trainer_loop, &results[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    long passed = 0, failed = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(threads[i], NULL);
        passed += results[i].passed;
        failed += results[i].failed;
    }
    pthread_barrier_destroy(&start_line);

    /* A freed handle is rejected, not dereferenced. */
    reparo_model_free(expanded);
    float logits[CLASSES];
    if (reparo_infer(expanded, images, 1, logits, CLASSES) == REPARO_ERR_INVALID_ARGUMENT) {
        passed++;
    } else {
        fprintf(stderr, "threads: a freed model was not rejected\n");
        failed++;
    }
    reparo_model_free(pruned);

    printf("threads: %d inference threads x %d rounds x 2 models, %d training thread\n", THREADS, rounds, with_trainer);
    printf("threads: %ld passed, %ld failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
