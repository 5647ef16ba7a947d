/*
 * pipeline.c — the Reparo method step by step on the bundled digits:
 *
 *   1. train a dense CNN                       reparo_trainer_* (cross-entropy)
 *   2. prune half of every conv's filters      reparo_prune {"ratio":0.5}
 *   3. expand each conv into 3 linear factors  reparo_expand (same function, more parameters)
 *   4. fine-tune with SP-KD, teacher = dense   reparo_trainer_create(student, dense, kd_weight)
 *   5. collapse back to the pruned shape       reparo_collapse (same function, compact)
 *   6. evaluate and save                       reparo_evaluate, reparo_model_save
 *
 *   pipeline [OUT_DIR]      (default /tmp) receives reparo_pipeline_{dense,pruned}.safetensors
 *
 * Prints accuracies and the parameter counts from reparo_model_describe. Exit status 0 only
 * if every call succeeds, expand and collapse keep the logits within 1e-4 relative, and the
 * dense model reaches 0.9 test accuracy.
 */
#include <reparo.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                              \
    do {                                                                                         \
        reparo_status status_ = (call);                                                          \
        if (status_ != REPARO_OK) {                                                              \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,             \
                    reparo_status_name(status_), reparo_last_error());                           \
            goto fail;                                                                           \
        }                                                                                        \
    } while (0)

static const char *const SPEC =
    "{\"input\":[1,8,8],\"classes\":10,\"layers\":["
    "{\"type\":\"conv\",\"name\":\"conv1\",\"out\":16,\"kernel\":3,\"padding\":1},"
    "{\"type\":\"batchnorm\",\"name\":\"bn1\"},{\"type\":\"relu\",\"name\":\"relu1\"},"
    "{\"type\":\"maxpool\",\"kernel\":2},"
    "{\"type\":\"conv\",\"name\":\"conv2\",\"out\":32,\"kernel\":3,\"padding\":1},"
    "{\"type\":\"batchnorm\",\"name\":\"bn2\"},{\"type\":\"relu\",\"name\":\"relu2\"},"
    "{\"type\":\"avgpool\"},{\"type\":\"flatten\"},{\"type\":\"linear\",\"name\":\"fc\",\"out\":10}]}";

/* Expand and collapse are exact up to float32 rounding (~1e-6 relative). */
static const double EXACTNESS = 1e-4;

typedef struct {
    const float *images;
    const int32_t *labels;
    int64_t count;
    size_t sample;
} split;

static uint64_t lcg_state = 7;
static uint32_t lcg_next(void) {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg_state >> 32);
}

/* `epochs` epochs of shuffled mini-batches of 32; prints the mean losses of each epoch. */
static reparo_status train(reparo_trainer *trainer, const split *data, int epochs, const char *stage) {
    enum { BATCH = 32 };
    int64_t *order = malloc((size_t)data->count * sizeof *order), i, start;
    float *images = malloc(BATCH * data->sample * sizeof *images);
    int32_t labels[BATCH];
    reparo_status status = REPARO_ERR_OUT_OF_MEMORY;
    int epoch;
    if (!order || !images) goto done;
    for (i = 0; i < data->count; i++) order[i] = i;
    for (epoch = 1; epoch <= epochs; epoch++) {
        double loss = 0, ce = 0, kd = 0;
        for (i = data->count - 1; i > 0; i--) {
            int64_t j = (int64_t)(lcg_next() % (uint32_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (start = 0; start < data->count; start += BATCH) {
            int32_t size = (int32_t)(data->count - start < BATCH ? data->count - start : BATCH), b;
            reparo_step_result result;
            for (b = 0; b < size; b++) {
                memcpy(images + (size_t)b * data->sample, data->images + (size_t)order[start + b] * data->sample,
                       data->sample * sizeof(float));
                labels[b] = data->labels[order[start + b]];
            }
            status = reparo_trainer_step(trainer, images, labels, size, &result);
            if (status != REPARO_OK) goto done;
            loss += (double)result.loss * size;
            ce += (double)result.ce_loss * size;
            kd += (double)result.kd_loss * size;
        }
        printf("  %s epoch %d: loss %.4f (cross-entropy %.4f, SP-KD %.5f)\n", stage, epoch,
               loss / (double)data->count, ce / (double)data->count, kd / (double)data->count);
    }
    status = REPARO_OK;
done:
    free(order);
    free(images);
    return status;
}

/* The model's description JSON (malloc'd; the caller frees it), or NULL on failure. */
static char *describe(const reparo_model *model) {
    size_t length = 0;
    char *text;
    if (reparo_model_describe(model, NULL, 0, &length) != REPARO_OK) return NULL;
    text = malloc(length + 1);
    if (text && reparo_model_describe(model, text, length + 1, NULL) != REPARO_OK) {
        free(text);
        return NULL;
    }
    return text;
}

/* Prints state and parameter count from describe(); returns the count (-1 on failure). */
static long long report(const char *stage, const reparo_model *model, const split *test) {
    char *text = describe(model);
    const char *state, *parameters;
    char state_name[32] = "?";
    long long count = -1;
    float accuracy = 0, loss = 0;
    if (!text) {
        fprintf(stderr, "reparo_model_describe failed: %s\n", reparo_last_error());
        return -1;
    }
    state = strstr(text, "\"state\":\"");
    parameters = strstr(text, "\"parameters\":");
    if (state) sscanf(state + 9, "%31[^\"]", state_name);
    if (parameters) count = strtoll(parameters + 13, NULL, 10);
    free(text);
    if (reparo_evaluate(model, test->images, test->labels, test->count, &accuracy, &loss) != REPARO_OK) {
        fprintf(stderr, "reparo_evaluate failed: %s\n", reparo_last_error());
        return -1;
    }
    printf("%-10s state %-9s parameters %7lld  test accuracy %.4f  loss %.4f\n", stage, state_name, count,
           accuracy, loss);
    return count;
}

/* max |a − b| / max |b| */
static double relative_error(const float *a, const float *b, size_t count) {
    double difference = 0, scale = 1e-30;
    size_t i;
    for (i = 0; i < count; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > difference) difference = d;
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    return difference / scale;
}

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "/tmp";
    char path[4096];
    reparo_dataset *train_set = NULL, *test_set = NULL;
    reparo_model *dense = NULL, *student = NULL;
    reparo_trainer *trainer = NULL;
    split train_data, test_data;
    int32_t channels = 0, height = 0, width = 0, classes = 0;
    float *before = NULL, *after = NULL, dense_accuracy = 0;
    size_t logits_count;
    double error;
    long long dense_parameters, pruned_parameters, expanded_parameters, collapsed_parameters;
    int ok = 0;

    CHECK(reparo_dataset_load("digits", NULL, "train", &train_set));
    CHECK(reparo_dataset_load("digits", NULL, "test", &test_set));
    CHECK(reparo_dataset_info(train_set, &train_data.count, &channels, &height, &width, &classes));
    CHECK(reparo_dataset_info(test_set, &test_data.count, NULL, NULL, NULL, NULL));
    CHECK(reparo_dataset_data(train_set, &train_data.images, &train_data.labels));
    CHECK(reparo_dataset_data(test_set, &test_data.images, &test_data.labels));
    train_data.sample = test_data.sample = (size_t)channels * (size_t)height * (size_t)width;
    logits_count = (size_t)test_data.count * (size_t)classes;
    before = malloc(logits_count * sizeof *before);
    after = malloc(logits_count * sizeof *after);
    if (!before || !after) goto fail;

    printf("1. train the dense model\n");
    CHECK(reparo_model_create(SPEC, 1, &dense));
    CHECK(reparo_trainer_create(dense, NULL, "{\"lr\":0.05,\"momentum\":0.9,\"weight_decay\":5e-4}", &trainer));
    CHECK(train(trainer, &train_data, 6, "dense"));
    reparo_trainer_free(trainer);
    trainer = NULL;
    if ((dense_parameters = report("dense", dense, &test_data)) < 0) goto fail;
    CHECK(reparo_evaluate(dense, test_data.images, test_data.labels, test_data.count, &dense_accuracy, NULL));
    snprintf(path, sizeof path, "%s/reparo_pipeline_dense.safetensors", out);
    CHECK(reparo_model_save(dense, path));

    printf("2. prune half of the filters of every conv (L1 norm)\n");
    CHECK(reparo_prune(dense, "{\"ratio\":0.5,\"criterion\":\"l1\"}", &student));
    if ((pruned_parameters = report("pruned", student, &test_data)) < 0) goto fail;

    printf("3. expand every conv into 1x1 -> 3x3 -> 1x1 factors (rate 4)\n");
    CHECK(reparo_infer(student, test_data.images, (int32_t)test_data.count, before, logits_count));
    CHECK(reparo_expand(student, "{\"rate\":4}"));
    CHECK(reparo_infer(student, test_data.images, (int32_t)test_data.count, after, logits_count));
    if ((expanded_parameters = report("expanded", student, &test_data)) < 0) goto fail;
    error = relative_error(after, before, logits_count);
    printf("  logits change by %.2e relative (must be <= %.0e)\n", error, EXACTNESS);
    if (error > EXACTNESS) goto fail;

    printf("4. fine-tune the expanded student with SP-KD, teacher = the dense model\n");
    CHECK(reparo_trainer_create(student, dense, "{\"lr\":0.02,\"momentum\":0.9,\"kd_weight\":300,\"kd_layers\":\"pruned\"}",
                                &trainer));
    CHECK(train(trainer, &train_data, 3, "fine-tune"));
    reparo_trainer_free(trainer); /* the student must have no trainer before collapse */
    trainer = NULL;
    if (report("finetuned", student, &test_data) < 0) goto fail;

    printf("5. collapse the chains back into compact convs\n");
    CHECK(reparo_infer(student, test_data.images, (int32_t)test_data.count, before, logits_count));
    CHECK(reparo_collapse(student, NULL));
    CHECK(reparo_infer(student, test_data.images, (int32_t)test_data.count, after, logits_count));
    if ((collapsed_parameters = report("collapsed", student, &test_data)) < 0) goto fail;
    error = relative_error(after, before, logits_count);
    printf("  logits change by %.2e relative (must be <= %.0e)\n", error, EXACTNESS);
    if (error > EXACTNESS) goto fail;

    printf("6. save\n");
    snprintf(path, sizeof path, "%s/reparo_pipeline_pruned.safetensors", out);
    CHECK(reparo_model_save(student, path));
    printf("  %s\n", path);
    printf("parameters: dense %lld -> pruned %lld -> expanded %lld -> collapsed %lld\n", dense_parameters,
           pruned_parameters, expanded_parameters, collapsed_parameters);
    if (collapsed_parameters != pruned_parameters || expanded_parameters <= pruned_parameters) {
        fprintf(stderr, "unexpected parameter counts\n");
        goto fail;
    }
    if (dense_accuracy < 0.9f) {
        fprintf(stderr, "dense test accuracy %.4f is below 0.9\n", dense_accuracy);
        goto fail;
    }
    ok = 1;

fail:
    free(before);
    free(after);
    reparo_trainer_free(trainer);
    reparo_model_free(student);
    reparo_model_free(dense);
    reparo_dataset_free(test_set);
    reparo_dataset_free(train_set);
    return ok ? 0 : 1;
}
