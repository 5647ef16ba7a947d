/*
 * train_digits.c — train a small CNN on the bundled 8×8 digits through the C API.
 *
 *   train_digits [OUT]      OUT: a directory (default /tmp) or a path ending in .safetensors
 *
 * Loads the digits with reparo_dataset_load, trains a conv-BN-ReLU network with shuffled
 * mini-batches (a 64-bit LCG drives the shuffle), evaluates on the test split, saves the
 * model, reloads it and checks that the reloaded model gives bit-identical logits.
 * Exit status 0 only if every call succeeds and test accuracy is at least 0.9.
 */
#include <reparo.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks a status; on failure prints the call, the status name and this thread's message. */
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
    "{\"type\":\"conv\",\"out\":16,\"kernel\":3,\"padding\":1},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"maxpool\",\"kernel\":2},"
    "{\"type\":\"conv\",\"out\":32,\"kernel\":3,\"padding\":1},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"avgpool\"},{\"type\":\"flatten\"},{\"type\":\"linear\",\"out\":10}]}";

enum { EPOCHS = 6, BATCH = 32 };

/* Knuth's MMIX LCG; the high bits are the good ones. */
static uint64_t lcg_state = 42;
static uint32_t lcg_next(void) {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg_state >> 32);
}

static void shuffle(int64_t *order, int64_t count) {
    int64_t i;
    for (i = count - 1; i > 0; i--) {
        int64_t j = (int64_t)(lcg_next() % (uint32_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "/tmp";
    char path[4096];
    reparo_dataset *train = NULL, *test = NULL;
    reparo_model *model = NULL, *reloaded = NULL;
    reparo_trainer *trainer = NULL;
    const float *train_images = NULL, *test_images = NULL;
    const int32_t *train_labels = NULL, *test_labels = NULL;
    int64_t train_count = 0, test_count = 0, *order = NULL;
    int32_t channels = 0, height = 0, width = 0, classes = 0;
    size_t sample = 0, length = strlen(out);
    float *batch_images = NULL, *logits = NULL, *logits_reloaded = NULL;
    int32_t batch_labels[BATCH];
    float accuracy = 0, loss = 0;
    int epoch, ok = 0;

    if (length > 12 && strcmp(out + length - 12, ".safetensors") == 0) {
        snprintf(path, sizeof path, "%s", out);
    } else {
        snprintf(path, sizeof path, "%s/reparo_train_digits.safetensors", out);
    }
    printf("reparo %s\n", reparo_version());

    CHECK(reparo_dataset_load("digits", NULL, "train", &train));
    CHECK(reparo_dataset_load("digits", NULL, "test", &test));
    CHECK(reparo_dataset_info(train, &train_count, &channels, &height, &width, &classes));
    CHECK(reparo_dataset_info(test, &test_count, NULL, NULL, NULL, NULL));
    CHECK(reparo_dataset_data(train, &train_images, &train_labels));
    CHECK(reparo_dataset_data(test, &test_images, &test_labels));
    sample = (size_t)channels * (size_t)height * (size_t)width;
    printf("digits: %lld train, %lld test, %d×%d×%d, %d classes\n", (long long)train_count,
           (long long)test_count, channels, height, width, classes);

    CHECK(reparo_model_create(SPEC, 1, &model));
    CHECK(reparo_trainer_create(model, NULL, "{\"lr\":0.05,\"momentum\":0.9,\"weight_decay\":5e-4}", &trainer));

    order = malloc((size_t)train_count * sizeof *order);
    batch_images = malloc((size_t)BATCH * sample * sizeof *batch_images);
    if (!order || !batch_images) {
        fprintf(stderr, "out of memory\n");
        goto fail;
    }
    {
        int64_t i;
        for (i = 0; i < train_count; i++) order[i] = i;
    }
    for (epoch = 1; epoch <= EPOCHS; epoch++) {
        double loss_sum = 0, correct = 0;
        int64_t start;
        reparo_step_result result;
        memset(&result, 0, sizeof result);
        shuffle(order, train_count);
        for (start = 0; start < train_count; start += BATCH) {
            int32_t size = (int32_t)(train_count - start < BATCH ? train_count - start : BATCH), b;
            for (b = 0; b < size; b++) {
                int64_t index = order[start + b];
                memcpy(batch_images + (size_t)b * sample, train_images + (size_t)index * sample, sample * sizeof(float));
                batch_labels[b] = train_labels[index];
            }
            CHECK(reparo_trainer_step(trainer, batch_images, batch_labels, size, &result));
            loss_sum += (double)result.loss * size;
            correct += (double)result.accuracy * size;
        }
        CHECK(reparo_evaluate(model, test_images, test_labels, test_count, &accuracy, &loss));
        printf("epoch %d: train loss %.4f, train accuracy %.3f, test accuracy %.3f (step %lld)\n", epoch,
               loss_sum / (double)train_count, correct / (double)train_count, accuracy, (long long)result.step);
    }
    reparo_trainer_free(trainer);
    trainer = NULL;

    CHECK(reparo_evaluate(model, test_images, test_labels, test_count, &accuracy, &loss));
    CHECK(reparo_model_save(model, path));
    CHECK(reparo_model_load(path, &reloaded));

    logits = malloc((size_t)test_count * (size_t)classes * sizeof *logits);
    logits_reloaded = malloc((size_t)test_count * (size_t)classes * sizeof *logits_reloaded);
    if (!logits || !logits_reloaded) {
        fprintf(stderr, "out of memory\n");
        goto fail;
    }
    CHECK(reparo_infer(model, test_images, (int32_t)test_count, logits, (size_t)test_count * (size_t)classes));
    CHECK(reparo_infer(reloaded, test_images, (int32_t)test_count, logits_reloaded,
                       (size_t)test_count * (size_t)classes));
    if (memcmp(logits, logits_reloaded, (size_t)test_count * (size_t)classes * sizeof *logits) != 0) {
        fprintf(stderr, "the reloaded model's logits differ from the saved model's\n");
        goto fail;
    }
    printf("saved %s; reloaded logits are bit-identical\n", path);
    printf("test accuracy %.4f, loss %.4f\n", accuracy, loss);
    if (accuracy < 0.9f) {
        fprintf(stderr, "test accuracy %.4f is below 0.9\n", accuracy);
        goto fail;
    }
    ok = 1;

fail:
    free(order);
    free(batch_images);
    free(logits);
    free(logits_reloaded);
    reparo_trainer_free(trainer);
    reparo_model_free(reloaded);
    reparo_model_free(model);
    reparo_dataset_free(test);
    reparo_dataset_free(train);
    return ok ? 0 : 1;
}
