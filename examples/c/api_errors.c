/*
 * api_errors.c — every function of reparo.h called with bad arguments, table-driven.
 *
 *   api_errors [HEADER [SCRATCH_DIR]]     defaults: REPARO_HEADER (set at compile time), /tmp
 *
 * Each case names the reparo.h function it covers, what is wrong, the status reparo.h
 * promises, and optionally a word the message must contain (the offending key or argument).
 * For a failing call it also checks that
 *   - reparo_last_error() is non-empty (and names the key when the case says so),
 *   - outputs were not written (out pointers, logits, accuracy, describe buffer, ...),
 *   - the library still works afterwards (a call on a valid model succeeds).
 * The `_free` functions return nothing: their cases check that NULL, a freed handle, a
 * handle of another kind and a garbage pointer are ignored and the real objects still work.
 *
 * Coverage: the program parses HEADER for every declared `reparo_*(` function (comments
 * stripped) and fails if one has no case, so a new function cannot be added untested.
 * At the end the shared fixtures are checked to be exactly as they were (logits bit-identical,
 * same description), since "every object passed in is left exactly as it was" on failure.
 *
 * The last line is "N passed, M failed"; the exit status is 0 only when M is 0. A case that
 * crashes the process is the one printed last (stdout is flushed before each call).
 */
#include <reparo.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef REPARO_HEADER
#define REPARO_HEADER "include/reparo.h"
#endif

/* ---- fixtures ------------------------------------------------------------------------ */

enum { CLASSES = 10, SAMPLE = 64, BATCH = 4, LOGITS_CAP = 64 * CLASSES, DESCRIBE_CAP = 64 };

#define VALID_SPEC                                                                                 \
    "{\"input\":[1,8,8],\"classes\":10,\"layers\":[{\"type\":\"conv\",\"name\":\"conv1\",\"out\":4,"   \
    "\"padding\":1},{\"type\":\"batchnorm\",\"name\":\"bn1\"},{\"type\":\"relu\",\"name\":\"relu1\"},"   \
    "{\"type\":\"avgpool\"},{\"type\":\"flatten\"},{\"type\":\"linear\",\"name\":\"fc\",\"out\":10}]}"
#define SPEC_5_CLASSES                                                                             \
    "{\"input\":[1,8,8],\"classes\":5,\"layers\":[{\"type\":\"conv\",\"out\":4,\"padding\":1},"        \
    "{\"type\":\"relu\"},{\"type\":\"avgpool\"},{\"type\":\"flatten\"},{\"type\":\"linear\",\"out\":5}]}"
#define SPEC_LAYERS                                                                                \
    "\"layers\":[{\"type\":\"conv\",\"out\":4},{\"type\":\"avgpool\"},{\"type\":\"flatten\"},"          \
    "{\"type\":\"linear\",\"out\":10}]"

static reparo_model *g_model;         /* dense, never changed by any case */
static reparo_model *g_model5;        /* 5 classes: a teacher of the wrong shape */
static reparo_model *g_expanded;      /* expanded clone of g_model */
static reparo_model *g_busy;          /* clone of g_model, the student of g_trainer */
static reparo_trainer *g_trainer;     /* live trainer on g_busy */
static reparo_trainer *g_trainer5;    /* live trainer on g_model5 (5 classes) */
static reparo_dataset *g_dataset;     /* digits test split */
static reparo_model *g_freed_model;   /* created, then freed */
static reparo_trainer *g_freed_trainer;
static reparo_dataset *g_freed_dataset;
static void *g_garbage;               /* malloc'd bytes that were never a Reparo handle */

static float g_images[BATCH * SAMPLE];
static float g_nan_images[BATCH * SAMPLE];
static int32_t g_labels[BATCH];
static const int32_t g_labels_high[BATCH] = {0, 1, CLASSES, 2};
static const int32_t g_labels_negative[BATCH] = {0, -1, 1, 2};
static float g_reference_logits[BATCH * CLASSES];
static char *g_reference_description;
static char g_scratch[1024];
static char g_paths[12][1200];
enum { P_GARBAGE, P_EMPTY, P_TRUNCATED, P_HUGE_HEADER, P_NO_METADATA, P_MISSING, P_NO_DIR, P_SAVED, P_STATE, P_OTHER_STATE, P_ONNX };

/* Outputs, reset to sentinels before each case and checked after each failing case. */
static char g_sentinel_byte;
#define SENTINEL ((void *)&g_sentinel_byte)
static reparo_model *g_out_model;
static reparo_trainer *g_out_trainer;
static reparo_dataset *g_out_dataset;
static float g_logits[LOGITS_CAP];
static float g_accuracy, g_loss;
static reparo_step_result g_result;
static char g_describe[DESCRIBE_CAP];
static size_t g_length;
static int32_t g_c, g_h, g_w, g_k;
static int64_t g_count;
static const float *g_out_images;
static const int32_t *g_out_labels;
static int64_t g_order[BATCH];
static char g_detail[512];        /* why a success-case helper failed */
static char g_saved_message[512]; /* the message, saved by helpers that call Reparo again */

static void reset_outputs(void) {
    size_t i;
    g_out_model = SENTINEL;
    g_out_trainer = SENTINEL;
    g_out_dataset = SENTINEL;
    for (i = 0; i < LOGITS_CAP; i++) g_logits[i] = 777.0f;
    g_accuracy = g_loss = -7.0f;
    memset(&g_result, 0x5A, sizeof g_result);
    memset(g_describe, 'Z', sizeof g_describe);
    g_length = 12345;
    g_c = g_h = g_w = g_k = -5;
    g_count = -5;
    g_out_images = SENTINEL;
    g_out_labels = SENTINEL;
    for (i = 0; i < BATCH; i++) g_order[i] = -7;
    g_detail[0] = '\0';
    g_saved_message[0] = '\0';
}

/* Which output was written by a failing call, or NULL if none. */
static const char *written_output(void) {
    reparo_step_result untouched;
    size_t i;
    memset(&untouched, 0x5A, sizeof untouched);
    if (g_out_model != SENTINEL) return "out_model";
    if (g_out_trainer != SENTINEL) return "out_trainer";
    if (g_out_dataset != SENTINEL) return "out_dataset";
    for (i = 0; i < LOGITS_CAP; i++)
        if (g_logits[i] != 777.0f) return "out_logits";
    if (g_accuracy != -7.0f || g_loss != -7.0f) return "out_accuracy/out_loss";
    if (memcmp(&g_result, &untouched, sizeof g_result) != 0) return "out_result";
    for (i = 0; i < DESCRIBE_CAP; i++)
        if (g_describe[i] != 'Z') return "describe buffer";
    if (g_length != 12345) return "out_length";
    if (g_c != -5 || g_h != -5 || g_w != -5 || g_k != -5 || g_count != -5) return "shape/info outputs";
    if ((const void *)g_out_images != SENTINEL || (const void *)g_out_labels != SENTINEL) return "dataset pointers";
    for (i = 0; i < BATCH; i++)
        if (g_order[i] != -7) return "out_order";
    return NULL;
}

/* ---- helpers for calls that must succeed, or that return void ------------------------- */

#define FAIL_DETAIL(...) (snprintf(g_detail, sizeof g_detail, __VA_ARGS__), REPARO_ERR_INTERNAL)

static reparo_status model_works(const reparo_model *model) {
    int32_t classes = 0;
    reparo_status status = reparo_model_shape(model, NULL, NULL, NULL, &classes);
    if (status != REPARO_OK) return FAIL_DETAIL("the model no longer works: %s", reparo_last_error());
    return REPARO_OK;
}

static reparo_status version_is_static_text(void) {
    const char *version = reparo_version();
    if (!version || !version[0] || version != reparo_version()) return FAIL_DETAIL("bad version string");
    return REPARO_OK;
}

static reparo_status last_error_after_failure(void) {
    const char *message;
    if (reparo_model_load(NULL, &g_out_model) != REPARO_ERR_INVALID_ARGUMENT) return FAIL_DETAIL("load(NULL) did not fail");
    message = reparo_last_error();
    if (!message || !strstr(message, "path")) return FAIL_DETAIL("message does not name `path`: %s", message);
    return REPARO_OK;
}

static reparo_status status_names(void) {
    static const char *const expected[] = {"REPARO_OK", "REPARO_ERR_INVALID_ARGUMENT", "REPARO_ERR_IO",
                                           "REPARO_ERR_FORMAT", "REPARO_ERR_STATE", "REPARO_ERR_NUMERIC",
                                           "REPARO_ERR_OUT_OF_MEMORY", "REPARO_ERR_INTERNAL"};
    static const reparo_status unknown[] = {-1, 8, 1000, INT32_MAX, INT32_MIN};
    size_t i;
    for (i = 0; i < sizeof expected / sizeof *expected; i++) {
        const char *name = reparo_status_name((reparo_status)i);
        if (!name || strcmp(name, expected[i]) != 0) return FAIL_DETAIL("status %u is named %s", (unsigned)i, name);
    }
    for (i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        const char *name = reparo_status_name(unknown[i]);
        if (!name || !name[0]) return FAIL_DETAIL("status %d has no name", (int)unknown[i]);
    }
    return REPARO_OK;
}

/* reparo_system_info: the length alone, then the whole JSON object, then truncated. */
static reparo_status system_info_text(void) {
    static char text[8192];
    size_t length = 0, full = 0;
    reparo_status status = reparo_system_info(NULL, 0, &length);
    if (status != REPARO_OK) return status;
    if (length == 0 || length >= sizeof text) return FAIL_DETAIL("length %zu", length);
    status = reparo_system_info(text, sizeof text, &full);
    if (status != REPARO_OK) return status;
    if (full != length || strlen(text) != length || text[0] != '{' || !strstr(text, "\"blas\":{") ||
        !strstr(text, "\"chooser\":"))
        return FAIL_DETAIL("length %zu then %zu, text %.60s", length, full, text);
    status = reparo_system_info(text, 5, NULL);
    if (status != REPARO_OK) return status;
    if (strlen(text) != 4) return FAIL_DETAIL("not truncated to capacity-1 characters plus NUL");
    return REPARO_OK;
}

static reparo_status describe_length_only(void) {
    reparo_status status = reparo_model_describe(g_model, NULL, 0, &g_length);
    if (status != REPARO_OK) return status;
    if (g_length != strlen(g_reference_description)) return FAIL_DETAIL("length %zu", g_length);
    return reparo_model_describe(g_model, NULL, 0, NULL); /* out_length may be NULL */
}

static reparo_status describe_truncates(void) {
    reparo_status status = reparo_model_describe(g_model, g_describe, 8, &g_length);
    if (status != REPARO_OK) return status;
    if (g_length != strlen(g_reference_description)) return FAIL_DETAIL("out_length %zu is not the full length", g_length);
    if (g_describe[7] != '\0' || strncmp(g_describe, g_reference_description, 7) != 0 || g_describe[8] != 'Z')
        return FAIL_DETAIL("not truncated to capacity-1 characters plus NUL");
    return REPARO_OK;
}

static reparo_status spec_resolve_length_then_text(void) {
    static char text[8192];
    size_t length = 0, full = 0;
    reparo_status status = reparo_spec_resolve(VALID_SPEC, NULL, 0, &length);
    if (status != REPARO_OK) return status;
    if (length == 0 || length >= sizeof text) return FAIL_DETAIL("length %zu", length);
    status = reparo_spec_resolve(VALID_SPEC, text, sizeof text, &full);
    if (status != REPARO_OK) return status;
    if (full != length || strlen(text) != length || !strstr(text, "\"tensors\":["))
        return FAIL_DETAIL("length %zu then %zu, text %.60s", length, full, text);
    return REPARO_OK;
}

static reparo_status shape_null_outputs(void) { return reparo_model_shape(g_model, NULL, NULL, NULL, NULL); }

static reparo_status infer_exact_capacity(void) {
    reparo_status status = reparo_infer(g_model, g_images, BATCH, g_logits, BATCH * CLASSES);
    if (status != REPARO_OK) return status;
    if (g_logits[BATCH * CLASSES] != 777.0f) return FAIL_DETAIL("wrote past batch × classes");
    return REPARO_OK;
}

static reparo_status evaluate_null_outputs(void) {
    return reparo_evaluate(g_model, g_images, g_labels, BATCH, NULL, NULL);
}

static reparo_status model_free_null(void) {
    reparo_model_free(NULL);
    return REPARO_OK;
}
static reparo_status model_free_freed(void) {
    reparo_model_free(g_freed_model);
    return model_works(g_model);
}
static reparo_status model_free_dataset(void) {
    reparo_model_free((reparo_model *)g_dataset);
    return reparo_dataset_info(g_dataset, NULL, NULL, NULL, NULL, NULL);
}
static reparo_status model_free_trainer(void) {
    reparo_model_free((reparo_model *)g_trainer);
    return reparo_trainer_step(g_trainer, g_images, g_labels, BATCH, NULL);
}
static reparo_status model_free_garbage(void) {
    reparo_model_free((reparo_model *)g_garbage);
    return model_works(g_model);
}

static reparo_status trainer_empty_options(void) {
    reparo_trainer *trainer = NULL;
    reparo_status status = reparo_trainer_create(g_model5, NULL, "", &trainer);
    reparo_trainer_free(trainer);
    return status;
}

/* A NaN in the images makes the loss non-finite: NUMERIC, and the model unchanged. */
static reparo_status step_numeric(void) {
    float before[BATCH * CLASSES], after[BATCH * CLASSES];
    reparo_status status, check;
    if (reparo_infer(g_busy, g_images, BATCH, before, BATCH * CLASSES) != REPARO_OK) return FAIL_DETAIL("infer");
    status = reparo_trainer_step(g_trainer, g_nan_images, g_labels, BATCH, &g_result);
    if (status == REPARO_OK) return status;
    /* Keep the message: the check below is another Reparo call, which may replace it. */
    snprintf(g_saved_message, sizeof g_saved_message, "%s", reparo_last_error());
    check = reparo_infer(g_busy, g_images, BATCH, after, BATCH * CLASSES);
    if (check != REPARO_OK || memcmp(before, after, sizeof before) != 0)
        return FAIL_DETAIL("NUMERIC, but the model changed (\"nothing was changed\" is promised)");
    return status;
}

static reparo_status step_null_result(void) {
    return reparo_trainer_step(g_trainer, g_images, g_labels, BATCH, NULL);
}

static reparo_status trainer_free_null(void) {
    reparo_trainer_free(NULL);
    return REPARO_OK;
}
static reparo_status trainer_free_freed(void) {
    reparo_trainer_free(g_freed_trainer);
    return reparo_trainer_step(g_trainer, g_images, g_labels, BATCH, NULL);
}
static reparo_status trainer_free_model(void) {
    reparo_trainer_free((reparo_trainer *)g_model);
    return model_works(g_model);
}
static reparo_status trainer_free_garbage(void) {
    reparo_trainer_free((reparo_trainer *)g_garbage);
    return reparo_trainer_step(g_trainer, g_images, g_labels, BATCH, NULL);
}

/* reparo_trainer_fit's progress callback: counts calls, asks to stop after the first. */
static int32_t stop_at_once(const reparo_step_result *result, int32_t epoch, int32_t epochs, int32_t batch,
                            int32_t batches, float epoch_loss, float epoch_accuracy, void *user_data) {
    (void)epoch, (void)epochs, (void)batch, (void)batches, (void)epoch_loss, (void)epoch_accuracy;
    if (result) ++*(int *)user_data;
    return 1;
}

static reparo_status fit_stopped_by_callback(void) {
    int calls = 0;
    reparo_status status = reparo_trainer_fit(g_trainer, g_dataset, 3, 16, 0, stop_at_once, &calls);
    if (status != REPARO_OK) return status;
    if (calls != 1) return FAIL_DETAIL("the callback ran %d times; it asked to stop after the first step", calls);
    return REPARO_OK;
}

static reparo_status fit_without_progress(void) { return reparo_trainer_fit(g_trainer, g_dataset, 1, 128, 7, NULL, NULL); }

/* reparo_fit_order with valid arguments gives a permutation of 0 ... BATCH-1. */
static reparo_status fit_order_permutation(void) {
    int64_t order[BATCH];
    int seen[BATCH] = {0};
    int i;
    reparo_status status = reparo_fit_order(BATCH, 3, 2, order, BATCH);
    if (status != REPARO_OK) return status;
    for (i = 0; i < BATCH; i++) {
        if (order[i] < 0 || order[i] >= BATCH || seen[order[i]]++)
            return FAIL_DETAIL("order[%d] = %lld is not part of a permutation", i, (long long)order[i]);
    }
    return REPARO_OK;
}

/* reparo_dataset_create with valid arrays: info gives them back; the dataset trains. */
static reparo_status dataset_create_valid(void) {
    reparo_dataset *dataset = NULL;
    int64_t count = 0;
    int32_t c = 0, h = 0, w = 0, k = 0;
    reparo_status status = reparo_dataset_create(g_images, g_labels, BATCH, 1, 8, 8, CLASSES, &dataset);
    if (status != REPARO_OK) return status;
    status = reparo_dataset_info(dataset, &count, &c, &h, &w, &k);
    if (status == REPARO_OK && (count != BATCH || c != 1 || h != 8 || w != 8 || k != CLASSES))
        status = FAIL_DETAIL("info gave %lld × %d × %d × %d, %d classes", (long long)count, c, h, w, k);
    if (status == REPARO_OK) status = reparo_trainer_fit(g_trainer, dataset, 1, 2, 0, NULL, NULL);
    reparo_dataset_free(dataset);
    return status;
}

static reparo_status trainer_load_own_state(void) { return reparo_trainer_load(g_trainer, g_paths[P_STATE]); }

static reparo_status dataset_info_null_outputs(void) {
    return reparo_dataset_info(g_dataset, NULL, NULL, NULL, NULL, NULL);
}
static reparo_status dataset_data_null_outputs(void) { return reparo_dataset_data(g_dataset, NULL, NULL); }

static reparo_status dataset_free_null(void) {
    reparo_dataset_free(NULL);
    return REPARO_OK;
}
static reparo_status dataset_free_freed(void) {
    reparo_dataset_free(g_freed_dataset);
    return reparo_dataset_info(g_dataset, NULL, NULL, NULL, NULL, NULL);
}
static reparo_status dataset_free_model(void) {
    reparo_dataset_free((reparo_dataset *)g_model);
    return model_works(g_model);
}
static reparo_status dataset_free_garbage(void) {
    reparo_dataset_free((reparo_dataset *)g_garbage);
    return reparo_dataset_info(g_dataset, NULL, NULL, NULL, NULL, NULL);
}

/* ---- the table ------------------------------------------------------------------------ */

#define INV REPARO_ERR_INVALID_ARGUMENT
#define IO REPARO_ERR_IO
#define FMT REPARO_ERR_FORMAT
#define STATE REPARO_ERR_STATE
#define OK REPARO_OK
#define M(p) ((reparo_model *)(p))
#define T(p) ((reparo_trainer *)(p))
#define D(p) ((reparo_dataset *)(p))

/* X(id, function covered, what is wrong, expected status, word the message names or NULL, call) */
#define CASES(X)                                                                                              \
    X(version, "reparo_version", "static, non-empty", OK, NULL, version_is_static_text())                      \
    X(last_error, "reparo_last_error", "names the argument of the last failure", OK, NULL,                     \
      last_error_after_failure())                                                                              \
    X(status_name, "reparo_status_name", "known and unknown codes (-1, 8, INT32_MIN/MAX)", OK, NULL,           \
      status_names())                                                                                          \
    X(system_info_null_buffer, "reparo_system_info", "buffer NULL with capacity 10", INV, "buffer",           \
      reparo_system_info(NULL, 10, &g_length))                                                                 \
    X(system_info_text, "reparo_system_info", "length only, the whole text, truncated", OK, NULL,             \
      system_info_text())                                                                                      \
    /* reparo_model_create */                                                                                  \
    X(create_null_spec, "reparo_model_create", "spec_json NULL", INV, "spec_json",                            \
      reparo_model_create(NULL, 0, &g_out_model))                                                              \
    X(create_null_out, "reparo_model_create", "out_model NULL", INV, "out_model",                             \
      reparo_model_create(VALID_SPEC, 0, NULL))                                                                \
    X(create_empty, "reparo_model_create", "empty spec", INV, "spec", reparo_model_create("", 0, &g_out_model)) \
    X(create_malformed, "reparo_model_create", "malformed JSON", INV, "spec",                                 \
      reparo_model_create("{\"input\":[1,8,8],", 0, &g_out_model))                                             \
    X(create_not_object, "reparo_model_create", "JSON array instead of an object", INV, "spec",               \
      reparo_model_create("[1,2,3]", 0, &g_out_model))                                                         \
    X(create_unknown_key, "reparo_model_create", "unknown key", INV, "colour",                                \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":10,\"colour\":1," SPEC_LAYERS "}", 0, &g_out_model)) \
    X(create_duplicate_key, "reparo_model_create", "a key given twice", INV, "classes",                       \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":10,\"classes\":5," SPEC_LAYERS "}", 0, &g_out_model)) \
    X(create_wrong_type, "reparo_model_create", "classes is a string", INV, "classes",                        \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":\"ten\"," SPEC_LAYERS "}", 0, &g_out_model))         \
    X(create_fraction, "reparo_model_create", "classes is 10.5", INV, "classes",                              \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":10.5," SPEC_LAYERS "}", 0, &g_out_model))            \
    X(create_zero_classes, "reparo_model_create", "classes 0", INV, "classes",                                \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":0," SPEC_LAYERS "}", 0, &g_out_model))               \
    X(create_bad_input, "reparo_model_create", "input has two dimensions", INV, "input",                      \
      reparo_model_create("{\"input\":[8,8],\"classes\":10," SPEC_LAYERS "}", 0, &g_out_model))                \
    X(create_negative_input, "reparo_model_create", "input has a negative size", INV, "input",                \
      reparo_model_create("{\"input\":[1,-8,8],\"classes\":10," SPEC_LAYERS "}", 0, &g_out_model))             \
    X(create_layer_type, "reparo_model_create", "unknown layer type", INV, "type",                            \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":10,\"layers\":[{\"type\":\"softmax\"}]}", 0,         \
                          &g_out_model))                                                                       \
    X(create_missing_out, "reparo_model_create", "conv without out", INV, "out",                              \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":10,\"layers\":[{\"type\":\"conv\"}]}", 0,            \
                          &g_out_model))                                                                       \
    X(create_classes_mismatch, "reparo_model_create", "last layer gives 7 outputs, classes 10", INV,          \
      "classes",                                                                                               \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":10,\"layers\":[{\"type\":\"flatten\"},"               \
                          "{\"type\":\"linear\",\"out\":7}]}",                                                 \
                          0, &g_out_model))                                                                    \
    X(create_kernel_too_big, "reparo_model_create", "kernel larger than the input", INV, "kernel",            \
      reparo_model_create("{\"input\":[1,8,8],\"classes\":10,\"layers\":[{\"type\":\"conv\",\"out\":4,"        \
                          "\"kernel\":9},{\"type\":\"flatten\"},{\"type\":\"linear\",\"out\":10}]}",           \
                          0, &g_out_model))                                                                    \
    X(create_deep_json, "reparo_model_create", "JSON nested 100000 levels deep", INV, NULL,                  \
      create_deep_json())                                                                                      \
    X(create_absurd, "reparo_model_create", "absurd size (2.6e11 weights)", INV, "exceeds",   \
      reparo_model_create("{\"input\":[4096,4096,4096],\"classes\":10,\"layers\":[{\"type\":\"conv\","         \
                          "\"out\":65536,\"kernel\":31},{\"type\":\"avgpool\"},{\"type\":\"flatten\"},"        \
                          "{\"type\":\"linear\",\"out\":10}]}",                                                \
                          0, &g_out_model))                                                                    \
    X(create_not_utf8, "reparo_model_create", "spec is not UTF-8", INV, "UTF-8",                              \
      reparo_model_create("{\"input\":\"\xff\xfe\"}", 0, &g_out_model))                                        \
    /* reparo_model_load */                                                                                    \
    X(load_null_path, "reparo_model_load", "path NULL", INV, "path", reparo_model_load(NULL, &g_out_model))   \
    X(load_null_out, "reparo_model_load", "out_model NULL", INV, "out_model",                                 \
      reparo_model_load(g_paths[P_SAVED], NULL))                                                               \
    X(load_missing, "reparo_model_load", "missing file", IO, NULL, reparo_model_load(g_paths[P_MISSING], &g_out_model)) \
    X(load_directory, "reparo_model_load", "a directory", IO, NULL, reparo_model_load(g_scratch, &g_out_model)) \
    X(load_garbage, "reparo_model_load", "random bytes", FMT, NULL,                                           \
      reparo_model_load(g_paths[P_GARBAGE], &g_out_model))                                                     \
    X(load_empty, "reparo_model_load", "empty file", FMT, NULL, reparo_model_load(g_paths[P_EMPTY], &g_out_model)) \
    X(load_truncated, "reparo_model_load", "a saved model cut short", FMT, NULL,                              \
      reparo_model_load(g_paths[P_TRUNCATED], &g_out_model))                                                   \
    X(load_huge_header, "reparo_model_load", "header length 2^63", FMT, NULL,                                 \
      reparo_model_load(g_paths[P_HUGE_HEADER], &g_out_model))                                                 \
    X(load_no_metadata, "reparo_model_load", "valid safetensors without Reparo metadata", FMT, NULL,          \
      reparo_model_load(g_paths[P_NO_METADATA], &g_out_model))                                                 \
    /* reparo_model_save */                                                                                    \
    X(save_null_model, "reparo_model_save", "model NULL", INV, "model", reparo_model_save(NULL, g_paths[P_SAVED])) \
    X(save_null_path, "reparo_model_save", "path NULL", INV, "path", reparo_model_save(g_model, NULL))        \
    X(save_empty_path, "reparo_model_save", "path empty", INV, "path", reparo_model_save(g_model, ""))        \
    X(save_freed, "reparo_model_save", "freed model", INV, "model", reparo_model_save(g_freed_model, g_paths[P_SAVED])) \
    X(save_dataset, "reparo_model_save", "a dataset passed as model", INV, "model",                          \
      reparo_model_save(M(g_dataset), g_paths[P_SAVED]))                                                       \
    X(save_garbage, "reparo_model_save", "garbage pointer", INV, "model",                                     \
      reparo_model_save(M(g_garbage), g_paths[P_SAVED]))                                                       \
    X(save_no_dir, "reparo_model_save", "directory does not exist", IO, NULL,                                 \
      reparo_model_save(g_model, g_paths[P_NO_DIR]))                                                           \
    X(save_to_directory, "reparo_model_save", "path is a directory", IO, NULL, reparo_model_save(g_model, g_scratch)) \
    /* reparo_model_export_onnx */                                                                             \
    X(onnx_null_model, "reparo_model_export_onnx", "model NULL", INV, "model",                                 \
      reparo_model_export_onnx(NULL, g_paths[P_ONNX], NULL))                                                   \
    X(onnx_null_path, "reparo_model_export_onnx", "path NULL", INV, "path",                                    \
      reparo_model_export_onnx(g_model, NULL, NULL))                                                           \
    X(onnx_empty_path, "reparo_model_export_onnx", "path empty", INV, "path",                                  \
      reparo_model_export_onnx(g_model, "", NULL))                                                             \
    X(onnx_freed, "reparo_model_export_onnx", "freed model", INV, "model",                                     \
      reparo_model_export_onnx(g_freed_model, g_paths[P_ONNX], NULL))                                          \
    X(onnx_dataset, "reparo_model_export_onnx", "a dataset passed as model", INV, "model",                     \
      reparo_model_export_onnx(M(g_dataset), g_paths[P_ONNX], NULL))                                           \
    X(onnx_garbage, "reparo_model_export_onnx", "garbage pointer", INV, "model",                               \
      reparo_model_export_onnx(M(g_garbage), g_paths[P_ONNX], NULL))                                           \
    X(onnx_unknown_option, "reparo_model_export_onnx", "unknown option key", INV, "nope",                      \
      reparo_model_export_onnx(g_model, g_paths[P_ONNX], "{\"nope\":1}"))                                      \
    X(onnx_bad_opset, "reparo_model_export_onnx", "opset 13 (only 17)", INV, "opset",                          \
      reparo_model_export_onnx(g_model, g_paths[P_ONNX], "{\"opset\":13}"))                                    \
    X(onnx_expanded, "reparo_model_export_onnx", "an expanded model", STATE, "collapse",                       \
      reparo_model_export_onnx(g_expanded, g_paths[P_ONNX], NULL))                                             \
    X(onnx_no_dir, "reparo_model_export_onnx", "directory does not exist", IO, NULL,                           \
      reparo_model_export_onnx(g_model, g_paths[P_NO_DIR], NULL))                                              \
    X(onnx_to_directory, "reparo_model_export_onnx", "path is a directory", IO, NULL,                          \
      reparo_model_export_onnx(g_model, g_scratch, NULL))                                                      \
    X(onnx_ok, "reparo_model_export_onnx", "a dense model, options {\"opset\":17}", OK, NULL,                  \
      reparo_model_export_onnx(g_model, g_paths[P_ONNX], "{\"opset\":17}"))                                    \
    /* reparo_model_import_onnx (after onnx_ok, which wrote P_ONNX) */                                        \
    X(import_null_path, "reparo_model_import_onnx", "path NULL", INV, "path",                                  \
      reparo_model_import_onnx(NULL, NULL, &g_out_model))                                                      \
    X(import_empty_path, "reparo_model_import_onnx", "path empty", INV, "path",                                \
      reparo_model_import_onnx("", NULL, &g_out_model))                                                        \
    X(import_null_out, "reparo_model_import_onnx", "out_model NULL", INV, "out_model",                         \
      reparo_model_import_onnx(g_paths[P_ONNX], NULL, NULL))                                                   \
    X(import_unknown_option, "reparo_model_import_onnx", "unknown option key", INV, "nope",                    \
      reparo_model_import_onnx(g_paths[P_ONNX], "{\"nope\":1}", &g_out_model))                                \
    X(import_bad_state, "reparo_model_import_onnx", "state collapsed", INV, "state",                           \
      reparo_model_import_onnx(g_paths[P_ONNX], "{\"state\":\"collapsed\"}", &g_out_model))                   \
    X(import_wrong_input, "reparo_model_import_onnx", "input disagrees with the graph", INV, "input",           \
      reparo_model_import_onnx(g_paths[P_ONNX], "{\"input\":[3,8,8]}", &g_out_model))                         \
    X(import_missing, "reparo_model_import_onnx", "missing file", IO, NULL,                                    \
      reparo_model_import_onnx(g_paths[P_MISSING], NULL, &g_out_model))                                        \
    X(import_directory, "reparo_model_import_onnx", "a directory", IO, NULL,                                   \
      reparo_model_import_onnx(g_scratch, NULL, &g_out_model))                                                 \
    X(import_garbage, "reparo_model_import_onnx", "random bytes", FMT, NULL,                                   \
      reparo_model_import_onnx(g_paths[P_GARBAGE], NULL, &g_out_model))                                        \
    X(import_empty, "reparo_model_import_onnx", "empty file", FMT, NULL,                                       \
      reparo_model_import_onnx(g_paths[P_EMPTY], NULL, &g_out_model))                                          \
    X(import_safetensors, "reparo_model_import_onnx", "a safetensors file", FMT, NULL,                         \
      reparo_model_import_onnx(g_paths[P_SAVED], NULL, &g_out_model))                                          \
    X(import_ok, "reparo_model_import_onnx", "the exported model, state pruned", OK, NULL, import_onnx_ok())   \
    /* reparo_model_clone */                                                                                   \
    X(clone_null, "reparo_model_clone", "model NULL", INV, "model", reparo_model_clone(NULL, &g_out_model))   \
    X(clone_null_out, "reparo_model_clone", "out_model NULL", INV, "out_model", reparo_model_clone(g_model, NULL)) \
    X(clone_freed, "reparo_model_clone", "freed model", INV, "model", reparo_model_clone(g_freed_model, &g_out_model)) \
    X(clone_trainer, "reparo_model_clone", "a trainer passed as model", INV, "model",                         \
      reparo_model_clone(M(g_trainer), &g_out_model))                                                          \
    X(clone_garbage, "reparo_model_clone", "garbage pointer", INV, "model",                                   \
      reparo_model_clone(M(g_garbage), &g_out_model))                                                          \
    /* reparo_model_describe */                                                                                \
    X(describe_null, "reparo_model_describe", "model NULL", INV, "model",                                     \
      reparo_model_describe(NULL, g_describe, DESCRIBE_CAP, &g_length))                                        \
    X(describe_null_buffer, "reparo_model_describe", "buffer NULL with capacity 10", INV, "buffer",           \
      reparo_model_describe(g_model, NULL, 10, &g_length))                                                     \
    X(describe_freed, "reparo_model_describe", "freed model", INV, "model",                                   \
      reparo_model_describe(g_freed_model, g_describe, DESCRIBE_CAP, &g_length))                               \
    X(describe_dataset, "reparo_model_describe", "a dataset passed as model", INV, "model",                   \
      reparo_model_describe(M(g_dataset), g_describe, DESCRIBE_CAP, &g_length))                                \
    X(describe_garbage, "reparo_model_describe", "garbage pointer", INV, "model",                             \
      reparo_model_describe(M(g_garbage), g_describe, DESCRIBE_CAP, &g_length))                                \
    X(describe_length, "reparo_model_describe", "buffer NULL, capacity 0: length only", OK, NULL,             \
      describe_length_only())                                                                                  \
    X(describe_small, "reparo_model_describe", "capacity 8: truncated, full length reported", OK, NULL,       \
      describe_truncates())                                                                                    \
    /* reparo_spec_resolve */                                                                                  \
    X(resolve_null_spec, "reparo_spec_resolve", "spec_json NULL", INV, "spec_json",                           \
      reparo_spec_resolve(NULL, g_describe, DESCRIBE_CAP, &g_length))                                          \
    X(resolve_null_buffer, "reparo_spec_resolve", "buffer NULL with capacity 10", INV, "buffer",              \
      reparo_spec_resolve(VALID_SPEC, NULL, 10, &g_length))                                                    \
    X(resolve_kernel_too_big, "reparo_spec_resolve", "kernel larger than the input", INV, "kernel",           \
      reparo_spec_resolve("{\"input\":[1,8,8],\"classes\":10,\"layers\":[{\"type\":\"conv\",\"out\":4,"        \
                          "\"kernel\":9},{\"type\":\"flatten\"},{\"type\":\"linear\",\"out\":10}]}",           \
                          g_describe, DESCRIBE_CAP, &g_length))                                                \
    X(resolve_text, "reparo_spec_resolve", "length only, then the whole text", OK, NULL,                      \
      spec_resolve_length_then_text())                                                                         \
    /* reparo_model_shape */                                                                                   \
    X(shape_null, "reparo_model_shape", "model NULL", INV, "model", reparo_model_shape(NULL, &g_c, &g_h, &g_w, &g_k)) \
    X(shape_freed, "reparo_model_shape", "freed model", INV, "model",                                         \
      reparo_model_shape(g_freed_model, &g_c, &g_h, &g_w, &g_k))                                               \
    X(shape_trainer, "reparo_model_shape", "a trainer passed as model", INV, "model",                         \
      reparo_model_shape(M(g_trainer), &g_c, &g_h, &g_w, &g_k))                                                \
    X(shape_garbage, "reparo_model_shape", "garbage pointer", INV, "model",                                   \
      reparo_model_shape(M(g_garbage), &g_c, &g_h, &g_w, &g_k))                                                \
    X(shape_null_outputs, "reparo_model_shape", "every output NULL", OK, NULL, shape_null_outputs())          \
    /* reparo_model_set_threads, reparo_model_threads */                                                       \
    X(set_threads_null, "reparo_model_set_threads", "model NULL", INV, "model", reparo_model_set_threads(NULL, 1)) \
    X(set_threads_freed, "reparo_model_set_threads", "freed model", INV, "model",                              \
      reparo_model_set_threads(g_freed_model, 1))                                                              \
    X(set_threads_negative, "reparo_model_set_threads", "threads -1", INV, "threads",                          \
      reparo_model_set_threads(g_model, -1))                                                                   \
    X(set_threads_large, "reparo_model_set_threads", "threads 257", INV, "threads",                            \
      reparo_model_set_threads(g_model, 257))                                                                  \
    X(set_threads_default, "reparo_model_set_threads", "threads 0 (every core)", OK, NULL,                     \
      reparo_model_set_threads(g_model, 0))                                                                    \
    X(threads_null, "reparo_model_threads", "model NULL", INV, "model", reparo_model_threads(NULL, &g_k))      \
    X(threads_null_output, "reparo_model_threads", "out_threads NULL", INV, "out_threads",                     \
      reparo_model_threads(g_model, NULL))                                                                     \
    /* reparo_model_free */                                                                                    \
    X(model_free_null, "reparo_model_free", "NULL is a no-op", OK, NULL, model_free_null())                   \
    X(model_free_freed, "reparo_model_free", "double free is ignored", OK, NULL, model_free_freed())           \
    X(model_free_dataset, "reparo_model_free", "a dataset is ignored (and still works)", OK, NULL,            \
      model_free_dataset())                                                                                    \
    X(model_free_trainer, "reparo_model_free", "a trainer is ignored (and still works)", OK, NULL,            \
      model_free_trainer())                                                                                    \
    X(model_free_garbage, "reparo_model_free", "a garbage pointer is ignored", OK, NULL, model_free_garbage()) \
    /* reparo_infer */                                                                                         \
    X(infer_null_model, "reparo_infer", "model NULL", INV, "model",                                           \
      reparo_infer(NULL, g_images, BATCH, g_logits, LOGITS_CAP))                                               \
    X(infer_null_images, "reparo_infer", "images NULL", INV, "images",                                        \
      reparo_infer(g_model, NULL, BATCH, g_logits, LOGITS_CAP))                                                \
    X(infer_null_out, "reparo_infer", "out_logits NULL", INV, "out_logits",                                   \
      reparo_infer(g_model, g_images, BATCH, NULL, LOGITS_CAP))                                                \
    X(infer_batch_zero, "reparo_infer", "batch 0", INV, "batch", reparo_infer(g_model, g_images, 0, g_logits, LOGITS_CAP)) \
    X(infer_batch_negative, "reparo_infer", "batch -1", INV, "batch",                                         \
      reparo_infer(g_model, g_images, -1, g_logits, LOGITS_CAP))                                               \
    X(infer_batch_min, "reparo_infer", "batch INT32_MIN", INV, "batch",                                       \
      reparo_infer(g_model, g_images, INT32_MIN, g_logits, LOGITS_CAP))                                        \
    X(infer_batch_huge, "reparo_infer", "batch 65537", INV, "batch",                                          \
      reparo_infer(g_model, g_images, 65537, g_logits, LOGITS_CAP))                                            \
    X(infer_batch_max, "reparo_infer", "batch INT32_MAX", INV, "batch",                                       \
      reparo_infer(g_model, g_images, INT32_MAX, g_logits, LOGITS_CAP))                                        \
    X(infer_capacity_short, "reparo_infer", "out_capacity one short", INV, "out_capacity",                    \
      reparo_infer(g_model, g_images, BATCH, g_logits, BATCH * CLASSES - 1))                                   \
    X(infer_capacity_zero, "reparo_infer", "out_capacity 0", INV, "out_capacity",                             \
      reparo_infer(g_model, g_images, BATCH, g_logits, 0))                                                     \
    X(infer_freed, "reparo_infer", "freed model", INV, "model",                                               \
      reparo_infer(g_freed_model, g_images, BATCH, g_logits, LOGITS_CAP))                                      \
    X(infer_dataset, "reparo_infer", "a dataset passed as model", INV, "model",                               \
      reparo_infer(M(g_dataset), g_images, BATCH, g_logits, LOGITS_CAP))                                       \
    X(infer_garbage, "reparo_infer", "garbage pointer", INV, "model",                                         \
      reparo_infer(M(g_garbage), g_images, BATCH, g_logits, LOGITS_CAP))                                       \
    X(infer_exact, "reparo_infer", "out_capacity exactly batch × classes", OK, NULL, infer_exact_capacity())  \
    /* reparo_evaluate */                                                                                      \
    X(evaluate_null_model, "reparo_evaluate", "model NULL", INV, "model",                                     \
      reparo_evaluate(NULL, g_images, g_labels, BATCH, &g_accuracy, &g_loss))                                  \
    X(evaluate_null_images, "reparo_evaluate", "images NULL", INV, "images",                                  \
      reparo_evaluate(g_model, NULL, g_labels, BATCH, &g_accuracy, &g_loss))                                   \
    X(evaluate_null_labels, "reparo_evaluate", "labels NULL", INV, "labels",                                  \
      reparo_evaluate(g_model, g_images, NULL, BATCH, &g_accuracy, &g_loss))                                   \
    X(evaluate_count_zero, "reparo_evaluate", "count 0", INV, "count",                                        \
      reparo_evaluate(g_model, g_images, g_labels, 0, &g_accuracy, &g_loss))                                   \
    X(evaluate_count_negative, "reparo_evaluate", "count -1", INV, "count",                                   \
      reparo_evaluate(g_model, g_images, g_labels, -1, &g_accuracy, &g_loss))                                  \
    X(evaluate_count_huge, "reparo_evaluate", "count INT64_MAX", INV, "count",                                \
      reparo_evaluate(g_model, g_images, g_labels, INT64_MAX, &g_accuracy, &g_loss))                           \
    X(evaluate_label_high, "reparo_evaluate", "label 10 of 10 classes", INV, "labels",                        \
      reparo_evaluate(g_model, g_images, g_labels_high, BATCH, &g_accuracy, &g_loss))                          \
    X(evaluate_label_negative, "reparo_evaluate", "label -1", INV, "labels",                                  \
      reparo_evaluate(g_model, g_images, g_labels_negative, BATCH, &g_accuracy, &g_loss))                      \
    X(evaluate_freed, "reparo_evaluate", "freed model", INV, "model",                                         \
      reparo_evaluate(g_freed_model, g_images, g_labels, BATCH, &g_accuracy, &g_loss))                         \
    X(evaluate_trainer, "reparo_evaluate", "a trainer passed as model", INV, "model",                         \
      reparo_evaluate(M(g_trainer), g_images, g_labels, BATCH, &g_accuracy, &g_loss))                          \
    X(evaluate_null_outputs, "reparo_evaluate", "both outputs NULL", OK, NULL, evaluate_null_outputs())       \
    /* reparo_trainer_create */                                                                                \
    X(trainer_null_student, "reparo_trainer_create", "student NULL", INV, "student",                          \
      reparo_trainer_create(NULL, NULL, NULL, &g_out_trainer))                                                 \
    X(trainer_null_out, "reparo_trainer_create", "out_trainer NULL", INV, "out_trainer",                      \
      reparo_trainer_create(g_model, NULL, NULL, NULL))                                                        \
    X(trainer_freed_student, "reparo_trainer_create", "freed student", INV, "student",                        \
      reparo_trainer_create(g_freed_model, NULL, NULL, &g_out_trainer))                                        \
    X(trainer_dataset_student, "reparo_trainer_create", "a dataset passed as student", INV, "student",        \
      reparo_trainer_create(M(g_dataset), NULL, NULL, &g_out_trainer))                                         \
    X(trainer_garbage_student, "reparo_trainer_create", "garbage student", INV, "student",                    \
      reparo_trainer_create(M(g_garbage), NULL, NULL, &g_out_trainer))                                         \
    X(trainer_freed_teacher, "reparo_trainer_create", "freed teacher", INV, "teacher",                        \
      reparo_trainer_create(g_model, g_freed_model, NULL, &g_out_trainer))                                     \
    X(trainer_trainer_teacher, "reparo_trainer_create", "a trainer passed as teacher", INV, "teacher",        \
      reparo_trainer_create(g_model, M(g_trainer), NULL, &g_out_trainer))                                      \
    X(trainer_teacher_classes, "reparo_trainer_create", "teacher with 5 classes, student 10", INV, "teacher", \
      reparo_trainer_create(g_model, g_model5, NULL, &g_out_trainer))                                          \
    X(trainer_malformed, "reparo_trainer_create", "malformed options", INV, "options",                        \
      reparo_trainer_create(g_model, NULL, "{\"lr\":", &g_out_trainer))                                        \
    X(trainer_options_array, "reparo_trainer_create", "options is an array", INV, "options",                  \
      reparo_trainer_create(g_model, NULL, "[0.1]", &g_out_trainer))                                           \
    X(trainer_unknown_key, "reparo_trainer_create", "unknown key", INV, "learning_rate",                      \
      reparo_trainer_create(g_model, NULL, "{\"learning_rate\":0.1}", &g_out_trainer))                         \
    X(trainer_lr_zero, "reparo_trainer_create", "lr 0", INV, "lr",                                            \
      reparo_trainer_create(g_model, NULL, "{\"lr\":0}", &g_out_trainer))                                      \
    X(trainer_lr_negative, "reparo_trainer_create", "lr -1", INV, "lr",                                       \
      reparo_trainer_create(g_model, NULL, "{\"lr\":-1}", &g_out_trainer))                                     \
    X(trainer_lr_string, "reparo_trainer_create", "lr is a string", INV, "lr",                                \
      reparo_trainer_create(g_model, NULL, "{\"lr\":\"fast\"}", &g_out_trainer))                               \
    X(trainer_momentum_one, "reparo_trainer_create", "momentum 1", INV, "momentum",                           \
      reparo_trainer_create(g_model, NULL, "{\"momentum\":1}", &g_out_trainer))                                \
    X(trainer_nesterov_number, "reparo_trainer_create", "nesterov is a number", INV, "nesterov",              \
      reparo_trainer_create(g_model, NULL, "{\"nesterov\":3}", &g_out_trainer))                                \
    X(trainer_schedule, "reparo_trainer_create", "unknown schedule", INV, "schedule",                         \
      reparo_trainer_create(g_model, NULL, "{\"schedule\":\"linear\"}", &g_out_trainer))                       \
    X(trainer_cosine, "reparo_trainer_create", "cosine without total_steps", INV, "total_steps",              \
      reparo_trainer_create(g_model, NULL, "{\"schedule\":\"cosine\"}", &g_out_trainer))                       \
    X(trainer_augment_key, "reparo_trainer_create", "unknown augment key", INV, "rotate",                     \
      reparo_trainer_create(g_model, NULL, "{\"augment\":{\"rotate\":5}}", &g_out_trainer))                    \
    X(trainer_kd_no_teacher, "reparo_trainer_create", "kd_weight without a teacher", INV, "teacher",          \
      reparo_trainer_create(g_model, NULL, "{\"kd_weight\":1}", &g_out_trainer))                               \
    X(trainer_kd_layer, "reparo_trainer_create", "kd_layers names no layer", INV, "nope",                     \
      reparo_trainer_create(g_expanded, g_model, "{\"kd_weight\":1,\"kd_layers\":[\"nope\"]}", &g_out_trainer)) \
    X(trainer_threads, "reparo_trainer_create", "threads 1000", INV, "threads",                               \
      reparo_trainer_create(g_model, NULL, "{\"threads\":1000}", &g_out_trainer))                              \
    X(trainer_empty_options, "reparo_trainer_create", "\"\" means defaults", OK, NULL, trainer_empty_options()) \
    /* reparo_trainer_step */                                                                                  \
    X(step_null_trainer, "reparo_trainer_step", "trainer NULL", INV, "trainer",                               \
      reparo_trainer_step(NULL, g_images, g_labels, BATCH, &g_result))                                         \
    X(step_model, "reparo_trainer_step", "a model passed as trainer", INV, "trainer",                         \
      reparo_trainer_step(T(g_model), g_images, g_labels, BATCH, &g_result))                                   \
    X(step_freed, "reparo_trainer_step", "freed trainer", INV, "trainer",                                     \
      reparo_trainer_step(g_freed_trainer, g_images, g_labels, BATCH, &g_result))                              \
    X(step_garbage, "reparo_trainer_step", "garbage pointer", INV, "trainer",                                 \
      reparo_trainer_step(T(g_garbage), g_images, g_labels, BATCH, &g_result))                                 \
    X(step_null_images, "reparo_trainer_step", "images NULL", INV, "images",                                  \
      reparo_trainer_step(g_trainer, NULL, g_labels, BATCH, &g_result))                                        \
    X(step_null_labels, "reparo_trainer_step", "labels NULL", INV, "labels",                                  \
      reparo_trainer_step(g_trainer, g_images, NULL, BATCH, &g_result))                                        \
    X(step_batch_zero, "reparo_trainer_step", "batch 0", INV, "batch",                                        \
      reparo_trainer_step(g_trainer, g_images, g_labels, 0, &g_result))                                        \
    X(step_batch_negative, "reparo_trainer_step", "batch -1", INV, "batch",                                   \
      reparo_trainer_step(g_trainer, g_images, g_labels, -1, &g_result))                                       \
    X(step_batch_huge, "reparo_trainer_step", "batch 65537", INV, "batch",                                    \
      reparo_trainer_step(g_trainer, g_images, g_labels, 65537, &g_result))                                    \
    X(step_label_high, "reparo_trainer_step", "label 10 of 10 classes", INV, "labels",                        \
      reparo_trainer_step(g_trainer, g_images, g_labels_high, BATCH, &g_result))                               \
    X(step_label_negative, "reparo_trainer_step", "label -1", INV, "labels",                                  \
      reparo_trainer_step(g_trainer, g_images, g_labels_negative, BATCH, &g_result))                           \
    X(step_nan, "reparo_trainer_step", "NaN image: NUMERIC, model unchanged", REPARO_ERR_NUMERIC, NULL,       \
      step_numeric())                                                                                          \
    X(step_null_result, "reparo_trainer_step", "out_result NULL is allowed", OK, NULL, step_null_result())    \
    /* reparo_trainer_free */                                                                                  \
    X(trainer_free_null, "reparo_trainer_free", "NULL is a no-op", OK, NULL, trainer_free_null())             \
    X(trainer_free_freed, "reparo_trainer_free", "double free is ignored", OK, NULL, trainer_free_freed())     \
    X(trainer_free_model, "reparo_trainer_free", "a model is ignored (and still works)", OK, NULL,            \
      trainer_free_model())                                                                                    \
    X(trainer_free_garbage, "reparo_trainer_free", "a garbage pointer is ignored", OK, NULL,                  \
      trainer_free_garbage())                                                                                  \
    /* reparo_trainer_save */                                                                                  \
    X(tsave_null, "reparo_trainer_save", "trainer NULL", INV, "trainer", reparo_trainer_save(NULL, g_paths[P_STATE])) \
    X(tsave_model, "reparo_trainer_save", "a model passed as trainer", INV, "trainer",                        \
      reparo_trainer_save(T(g_model), g_paths[P_STATE]))                                                       \
    X(tsave_freed, "reparo_trainer_save", "freed trainer", INV, "trainer",                                    \
      reparo_trainer_save(g_freed_trainer, g_paths[P_STATE]))                                                  \
    X(tsave_garbage, "reparo_trainer_save", "garbage pointer", INV, "trainer",                                \
      reparo_trainer_save(T(g_garbage), g_paths[P_STATE]))                                                     \
    X(tsave_null_path, "reparo_trainer_save", "path NULL", INV, "path", reparo_trainer_save(g_trainer, NULL)) \
    X(tsave_empty_path, "reparo_trainer_save", "path empty", INV, "path", reparo_trainer_save(g_trainer, "")) \
    X(tsave_no_dir, "reparo_trainer_save", "directory does not exist", IO, NULL,                              \
      reparo_trainer_save(g_trainer, g_paths[P_NO_DIR]))                                                       \
    X(tsave_directory, "reparo_trainer_save", "path is a directory", IO, NULL,                                \
      reparo_trainer_save(g_trainer, g_scratch))                                                               \
    /* reparo_trainer_load */                                                                                  \
    X(tload_null, "reparo_trainer_load", "trainer NULL", INV, "trainer", reparo_trainer_load(NULL, g_paths[P_STATE])) \
    X(tload_dataset, "reparo_trainer_load", "a dataset passed as trainer", INV, "trainer",                    \
      reparo_trainer_load(T(g_dataset), g_paths[P_STATE]))                                                     \
    X(tload_freed, "reparo_trainer_load", "freed trainer", INV, "trainer",                                    \
      reparo_trainer_load(g_freed_trainer, g_paths[P_STATE]))                                                  \
    X(tload_garbage, "reparo_trainer_load", "garbage pointer", INV, "trainer",                                \
      reparo_trainer_load(T(g_garbage), g_paths[P_STATE]))                                                     \
    X(tload_null_path, "reparo_trainer_load", "path NULL", INV, "path", reparo_trainer_load(g_trainer, NULL)) \
    X(tload_missing, "reparo_trainer_load", "missing file", IO, NULL, reparo_trainer_load(g_trainer, g_paths[P_MISSING])) \
    X(tload_directory, "reparo_trainer_load", "a directory", IO, NULL, reparo_trainer_load(g_trainer, g_scratch)) \
    X(tload_garbage_file, "reparo_trainer_load", "random bytes", FMT, NULL,                                   \
      reparo_trainer_load(g_trainer, g_paths[P_GARBAGE]))                                                      \
    X(tload_truncated, "reparo_trainer_load", "a saved model cut short", FMT, NULL,                           \
      reparo_trainer_load(g_trainer, g_paths[P_TRUNCATED]))                                                    \
    X(tload_model_file, "reparo_trainer_load", "a model file, not a trainer state", FMT, NULL,                \
      reparo_trainer_load(g_trainer, g_paths[P_SAVED]))                                                        \
    X(tload_other_spec, "reparo_trainer_load", "state of a trainer whose student has another spec", INV, NULL, \
      reparo_trainer_load(g_trainer, g_paths[P_OTHER_STATE]))                                                  \
    X(tload_own, "reparo_trainer_load", "its own saved state", OK, NULL, trainer_load_own_state())            \
    /* reparo_trainer_fit */                                                                                   \
    X(fit_null_trainer, "reparo_trainer_fit", "trainer NULL", INV, "trainer",                                 \
      reparo_trainer_fit(NULL, g_dataset, 1, 16, 0, NULL, NULL))                                               \
    X(fit_dataset_trainer, "reparo_trainer_fit", "a dataset passed as trainer", INV, "trainer",               \
      reparo_trainer_fit(T(g_dataset), g_dataset, 1, 16, 0, NULL, NULL))                                       \
    X(fit_freed_trainer, "reparo_trainer_fit", "freed trainer", INV, "trainer",                               \
      reparo_trainer_fit(g_freed_trainer, g_dataset, 1, 16, 0, NULL, NULL))                                    \
    X(fit_null_dataset, "reparo_trainer_fit", "dataset NULL", INV, "dataset",                                 \
      reparo_trainer_fit(g_trainer, NULL, 1, 16, 0, NULL, NULL))                                               \
    X(fit_model_dataset, "reparo_trainer_fit", "a model passed as dataset", INV, "dataset",                   \
      reparo_trainer_fit(g_trainer, D(g_model), 1, 16, 0, NULL, NULL))                                         \
    X(fit_freed_dataset, "reparo_trainer_fit", "freed dataset", INV, "dataset",                               \
      reparo_trainer_fit(g_trainer, g_freed_dataset, 1, 16, 0, NULL, NULL))                                    \
    X(fit_garbage_dataset, "reparo_trainer_fit", "garbage dataset", INV, "dataset",                           \
      reparo_trainer_fit(g_trainer, D(g_garbage), 1, 16, 0, NULL, NULL))                                       \
    X(fit_epochs_zero, "reparo_trainer_fit", "epochs 0", INV, "epochs",                                       \
      reparo_trainer_fit(g_trainer, g_dataset, 0, 16, 0, NULL, NULL))                                          \
    X(fit_epochs_negative, "reparo_trainer_fit", "epochs -1", INV, "epochs",                                  \
      reparo_trainer_fit(g_trainer, g_dataset, -1, 16, 0, NULL, NULL))                                         \
    X(fit_batch_zero, "reparo_trainer_fit", "batch_size 0", INV, "batch_size",                                \
      reparo_trainer_fit(g_trainer, g_dataset, 1, 0, 0, NULL, NULL))                                           \
    X(fit_batch_negative, "reparo_trainer_fit", "batch_size -1", INV, "batch_size",                           \
      reparo_trainer_fit(g_trainer, g_dataset, 1, -1, 0, NULL, NULL))                                          \
    X(fit_batch_huge, "reparo_trainer_fit", "batch_size 65537", INV, "batch_size",                            \
      reparo_trainer_fit(g_trainer, g_dataset, 1, 65537, 0, NULL, NULL))                                       \
    X(fit_classes, "reparo_trainer_fit", "10-class dataset, 5-class student", INV, "classes",                 \
      reparo_trainer_fit(g_trainer5, g_dataset, 1, 16, 0, NULL, NULL))                                         \
    X(fit_stop, "reparo_trainer_fit", "the callback stops after one step", OK, NULL, fit_stopped_by_callback()) \
    X(fit_no_progress, "reparo_trainer_fit", "progress NULL", OK, NULL, fit_without_progress())               \
    /* reparo_fit_order */                                                                                     \
    X(order_count_zero, "reparo_fit_order", "count 0", INV, "count", reparo_fit_order(0, 0, 1, g_order, BATCH)) \
    X(order_count_negative, "reparo_fit_order", "count -1", INV, "count",                                      \
      reparo_fit_order(-1, 0, 1, g_order, BATCH))                                                              \
    X(order_epoch_zero, "reparo_fit_order", "epoch 0", INV, "epoch", reparo_fit_order(BATCH, 0, 0, g_order, BATCH)) \
    X(order_null_out, "reparo_fit_order", "out_order NULL", INV, "out_order",                                  \
      reparo_fit_order(BATCH, 0, 1, NULL, BATCH))                                                              \
    X(order_capacity, "reparo_fit_order", "out_capacity below count", INV, "out_capacity",                     \
      reparo_fit_order(BATCH, 0, 1, g_order, BATCH - 1))                                                       \
    X(order_valid, "reparo_fit_order", "a permutation", OK, NULL, fit_order_permutation())                     \
    /* reparo_prune */                                                                                         \
    X(prune_null, "reparo_prune", "dense NULL", INV, "dense", reparo_prune(NULL, NULL, &g_out_model))         \
    X(prune_null_out, "reparo_prune", "out_pruned NULL", INV, "out_pruned", reparo_prune(g_model, NULL, NULL)) \
    X(prune_freed, "reparo_prune", "freed model", INV, "dense", reparo_prune(g_freed_model, NULL, &g_out_model)) \
    X(prune_dataset, "reparo_prune", "a dataset passed as model", INV, "dense",                               \
      reparo_prune(M(g_dataset), NULL, &g_out_model))                                                          \
    X(prune_garbage, "reparo_prune", "garbage pointer", INV, "dense", reparo_prune(M(g_garbage), NULL, &g_out_model)) \
    X(prune_malformed, "reparo_prune", "malformed options", INV, "options",                                   \
      reparo_prune(g_model, "{ratio:0.5}", &g_out_model))                                                      \
    X(prune_unknown_key, "reparo_prune", "unknown key", INV, "colour",                                        \
      reparo_prune(g_model, "{\"colour\":\"red\"}", &g_out_model))                                             \
    X(prune_ratio_high, "reparo_prune", "ratio 2", INV, "ratio", reparo_prune(g_model, "{\"ratio\":2}", &g_out_model)) \
    X(prune_ratio_negative, "reparo_prune", "ratio -0.1", INV, "ratio",                                       \
      reparo_prune(g_model, "{\"ratio\":-0.1}", &g_out_model))                                                 \
    X(prune_ratio_zero, "reparo_prune", "ratio 0 prunes nothing", INV, "prune",                               \
      reparo_prune(g_model, "{\"ratio\":0}", &g_out_model))                                                    \
    X(prune_criterion, "reparo_prune", "unknown criterion", INV, "criterion",                                 \
      reparo_prune(g_model, "{\"criterion\":\"l7\"}", &g_out_model))                                           \
    X(prune_layers, "reparo_prune", "layers names no conv", INV, "nope",                                      \
      reparo_prune(g_model, "{\"layers\":{\"nope\":0.5}}", &g_out_model))                                      \
    X(prune_residual, "reparo_prune", "unknown residual mode", INV, "residual",                               \
      reparo_prune(g_model, "{\"residual\":\"chain\"}", &g_out_model))                                         \
    X(prune_expanded, "reparo_prune", "an expanded model", STATE, NULL, reparo_prune(g_expanded, NULL, &g_out_model)) \
    /* reparo_expand */                                                                                        \
    X(expand_null, "reparo_expand", "model NULL", INV, "model", reparo_expand(NULL, NULL))                    \
    X(expand_freed, "reparo_expand", "freed model", INV, "model", reparo_expand(g_freed_model, NULL))         \
    X(expand_dataset, "reparo_expand", "a dataset passed as model", INV, "model", reparo_expand(M(g_dataset), NULL)) \
    X(expand_garbage, "reparo_expand", "garbage pointer", INV, "model", reparo_expand(M(g_garbage), NULL))    \
    X(expand_malformed, "reparo_expand", "malformed options", INV, "options", reparo_expand(g_model, "{\"rate\"}")) \
    X(expand_unknown_key, "reparo_expand", "unknown key", INV, "speed", reparo_expand(g_model, "{\"speed\":2}")) \
    X(expand_rate_zero, "reparo_expand", "rate 0", INV, "rate", reparo_expand(g_model, "{\"rate\":0}"))       \
    X(expand_rate_huge, "reparo_expand", "rate 17", INV, "rate", reparo_expand(g_model, "{\"rate\":17}"))     \
    X(expand_layers_type, "reparo_expand", "layers is a number", INV, "layers", reparo_expand(g_model, "{\"layers\":5}")) \
    X(expand_layers_name, "reparo_expand", "layers names no layer", INV, "nope",                              \
      reparo_expand(g_model, "{\"layers\":[\"nope\"]}"))                                                       \
    X(expand_twice, "reparo_expand", "already expanded", STATE, NULL, reparo_expand(g_expanded, NULL))        \
    X(expand_busy, "reparo_expand", "the student of a live trainer", STATE, NULL, reparo_expand(g_busy, NULL)) \
    /* reparo_collapse */                                                                                      \
    X(collapse_null, "reparo_collapse", "model NULL", INV, "model", reparo_collapse(NULL, NULL))              \
    X(collapse_freed, "reparo_collapse", "freed model", INV, "model", reparo_collapse(g_freed_model, NULL))   \
    X(collapse_trainer, "reparo_collapse", "a trainer passed as model", INV, "model",                         \
      reparo_collapse(M(g_trainer), NULL))                                                                     \
    X(collapse_garbage, "reparo_collapse", "garbage pointer", INV, "model", reparo_collapse(M(g_garbage), NULL)) \
    X(collapse_dense, "reparo_collapse", "a dense model: nothing to collapse", STATE, NULL,                   \
      reparo_collapse(g_model, NULL))                                                                          \
    X(collapse_malformed, "reparo_collapse", "malformed options", INV, "options",                             \
      reparo_collapse(g_expanded, "{\"fold_batchnorm\":tru}"))                                                 \
    X(collapse_unknown_key, "reparo_collapse", "unknown key", INV, "fold_bn",                                 \
      reparo_collapse(g_expanded, "{\"fold_bn\":true}"))                                                       \
    X(collapse_wrong_type, "reparo_collapse", "fold_batchnorm is a string", INV, "fold_batchnorm",            \
      reparo_collapse(g_expanded, "{\"fold_batchnorm\":\"yes\"}"))                                             \
    /* reparo_dataset_load */                                                                                  \
    X(dataset_null_kind, "reparo_dataset_load", "kind NULL", INV, "kind",                                     \
      reparo_dataset_load(NULL, NULL, "train", &g_out_dataset))                                                \
    X(dataset_null_split, "reparo_dataset_load", "split NULL", INV, "split",                                  \
      reparo_dataset_load("digits", NULL, NULL, &g_out_dataset))                                               \
    X(dataset_null_out, "reparo_dataset_load", "out_dataset NULL", INV, "out_dataset",                        \
      reparo_dataset_load("digits", NULL, "train", NULL))                                                      \
    X(dataset_kind, "reparo_dataset_load", "unknown kind", INV, "imagenet",                                   \
      reparo_dataset_load("imagenet", NULL, "train", &g_out_dataset))                                          \
    X(dataset_split, "reparo_dataset_load", "unknown split", INV, "validation",                               \
      reparo_dataset_load("digits", NULL, "validation", &g_out_dataset))                                       \
    X(dataset_mnist_no_path, "reparo_dataset_load", "mnist without a path", INV, "path",                      \
      reparo_dataset_load("mnist", NULL, "train", &g_out_dataset))                                             \
    X(dataset_mnist_missing, "reparo_dataset_load", "mnist folder without files", IO, NULL,                   \
      reparo_dataset_load("mnist", g_scratch, "train", &g_out_dataset))                                        \
    X(dataset_cifar_missing, "reparo_dataset_load", "cifar10 folder does not exist", IO, NULL,                \
      reparo_dataset_load("cifar10", g_paths[P_MISSING], "test", &g_out_dataset))                              \
    X(dataset_digits_garbage, "reparo_dataset_load", "digits files with bad contents", FMT, NULL,             \
      reparo_dataset_load("digits", g_scratch, "train", &g_out_dataset))                                       \
    /* reparo_dataset_create */                                                                                \
    X(dataset_create_null_images, "reparo_dataset_create", "images NULL", INV, "images",                       \
      reparo_dataset_create(NULL, g_labels, BATCH, 1, 8, 8, CLASSES, &g_out_dataset))                          \
    X(dataset_create_null_labels, "reparo_dataset_create", "labels NULL", INV, "labels",                       \
      reparo_dataset_create(g_images, NULL, BATCH, 1, 8, 8, CLASSES, &g_out_dataset))                          \
    X(dataset_create_null_out, "reparo_dataset_create", "out_dataset NULL", INV, "out_dataset",                \
      reparo_dataset_create(g_images, g_labels, BATCH, 1, 8, 8, CLASSES, NULL))                                \
    X(dataset_create_count_zero, "reparo_dataset_create", "count 0", INV, "count",                             \
      reparo_dataset_create(g_images, g_labels, 0, 1, 8, 8, CLASSES, &g_out_dataset))                          \
    X(dataset_create_channels_zero, "reparo_dataset_create", "channels 0", INV, "channels",                    \
      reparo_dataset_create(g_images, g_labels, BATCH, 0, 8, 8, CLASSES, &g_out_dataset))                      \
    X(dataset_create_classes_negative, "reparo_dataset_create", "classes -1", INV, "classes",                  \
      reparo_dataset_create(g_images, g_labels, BATCH, 1, 8, 8, -1, &g_out_dataset))                           \
    X(dataset_create_overflow, "reparo_dataset_create", "C × H × W overflows", INV, "exceeds",                 \
      reparo_dataset_create(g_images, g_labels, 1, INT32_MAX, INT32_MAX, INT32_MAX, CLASSES, &g_out_dataset))  \
    X(dataset_create_label_high, "reparo_dataset_create", "label = classes", INV, "label",                     \
      reparo_dataset_create(g_images, g_labels_high, BATCH, 1, 8, 8, CLASSES, &g_out_dataset))                 \
    X(dataset_create_label_negative, "reparo_dataset_create", "label -1", INV, "label",                        \
      reparo_dataset_create(g_images, g_labels_negative, BATCH, 1, 8, 8, CLASSES, &g_out_dataset))             \
    X(dataset_create_nan, "reparo_dataset_create", "a NaN pixel", INV, "finite",                               \
      reparo_dataset_create(g_nan_images, g_labels, BATCH, 1, 8, 8, CLASSES, &g_out_dataset))                  \
    X(dataset_create_valid, "reparo_dataset_create", "valid arrays; info gives them back", OK, NULL,        \
      dataset_create_valid())                                                                                  \
    /* reparo_dataset_info */                                                                                  \
    X(info_null, "reparo_dataset_info", "dataset NULL", INV, "dataset",                                       \
      reparo_dataset_info(NULL, &g_count, &g_c, &g_h, &g_w, &g_k))                                             \
    X(info_model, "reparo_dataset_info", "a model passed as dataset", INV, "dataset",                         \
      reparo_dataset_info(D(g_model), &g_count, &g_c, &g_h, &g_w, &g_k))                                       \
    X(info_freed, "reparo_dataset_info", "freed dataset", INV, "dataset",                                     \
      reparo_dataset_info(g_freed_dataset, &g_count, &g_c, &g_h, &g_w, &g_k))                                  \
    X(info_garbage, "reparo_dataset_info", "garbage pointer", INV, "dataset",                                 \
      reparo_dataset_info(D(g_garbage), &g_count, &g_c, &g_h, &g_w, &g_k))                                     \
    X(info_null_outputs, "reparo_dataset_info", "every output NULL", OK, NULL, dataset_info_null_outputs())   \
    /* reparo_dataset_data */                                                                                  \
    X(data_null, "reparo_dataset_data", "dataset NULL", INV, "dataset",                                       \
      reparo_dataset_data(NULL, &g_out_images, &g_out_labels))                                                 \
    X(data_trainer, "reparo_dataset_data", "a trainer passed as dataset", INV, "dataset",                     \
      reparo_dataset_data(D(g_trainer), &g_out_images, &g_out_labels))                                         \
    X(data_freed, "reparo_dataset_data", "freed dataset", INV, "dataset",                                     \
      reparo_dataset_data(g_freed_dataset, &g_out_images, &g_out_labels))                                      \
    X(data_garbage, "reparo_dataset_data", "garbage pointer", INV, "dataset",                                 \
      reparo_dataset_data(D(g_garbage), &g_out_images, &g_out_labels))                                         \
    X(data_null_outputs, "reparo_dataset_data", "both outputs NULL", OK, NULL, dataset_data_null_outputs())   \
    /* reparo_dataset_free */                                                                                  \
    X(dataset_free_null, "reparo_dataset_free", "NULL is a no-op", OK, NULL, dataset_free_null())             \
    X(dataset_free_freed, "reparo_dataset_free", "double free is ignored", OK, NULL, dataset_free_freed())     \
    X(dataset_free_model, "reparo_dataset_free", "a model is ignored (and still works)", OK, NULL,            \
      dataset_free_model())                                                                                    \
    X(dataset_free_garbage, "reparo_dataset_free", "a garbage pointer is ignored", OK, NULL,                  \
      dataset_free_garbage())

/* Imports the model onnx_ok exported (and frees it): must succeed with the state asked for. */
static reparo_status import_onnx_ok(void) {
    reparo_model *model = NULL;
    char text[4096];
    reparo_status status = reparo_model_import_onnx(g_paths[P_ONNX], "{\"state\":\"pruned\"}", &model);
    if (status != REPARO_OK) return status;
    status = reparo_model_describe(model, text, sizeof text, NULL);
    if (status == REPARO_OK && strstr(text, "\"state\":\"pruned\"") == NULL) {
        snprintf(g_detail, sizeof g_detail, "describe gives %.60s", text);
        status = REPARO_ERR_INTERNAL;
    }
    reparo_model_free(model);
    return status;
}

/* A spec of 100000 nested arrays: the parser must refuse it, not overflow its stack. */
static reparo_status create_deep_json(void) {
    enum { DEPTH = 100000 };
    char *text = malloc(DEPTH + 1);
    reparo_status status;
    if (!text) return FAIL_DETAIL("malloc");
    memset(text, '[', DEPTH);
    text[DEPTH] = '\0';
    status = reparo_model_create(text, 0, &g_out_model);
    free(text);
    return status;
}

#define DEFINE_CASE(id, function, label, expected, needle, call) \
    static reparo_status case_##id(void) { return (call); }
CASES(DEFINE_CASE)

typedef struct {
    const char *id;
    const char *function; /* the reparo.h function this case covers */
    const char *label;
    reparo_status expected;
    const char *needle; /* the message must contain this (e.g. the offending key), or NULL */
    reparo_status (*run)(void);
} api_case;

#define TABLE_ENTRY(id, function, label, expected, needle, call) {#id, function, label, expected, needle, case_##id},
static const api_case CASE_TABLE[] = {CASES(TABLE_ENTRY)};
static const size_t CASE_COUNT = sizeof CASE_TABLE / sizeof *CASE_TABLE;

/* ---- header parsing ------------------------------------------------------------------- */

/* Names of the functions declared in the header: identifiers starting with "reparo_" and
 * followed by "(" once comments are removed. Returns the count (at most `capacity`), -1 on
 * failure to read the file. */
static int header_functions(const char *path, char names[][64], int capacity) {
    FILE *file = fopen(path, "rb");
    char *text, *code;
    long size;
    size_t i, j, length;
    int count = 0;
    if (!file) return -1;
    if (fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return -1;
    }
    text = malloc((size_t)size + 1);
    code = malloc((size_t)size + 1);
    if (!text || !code || fread(text, 1, (size_t)size, file) != (size_t)size) {
        fclose(file);
        free(text);
        free(code);
        return -1;
    }
    fclose(file);
    length = (size_t)size;
    for (i = 0, j = 0; i < length; i++) { /* strip comments, keeping a space in their place */
        if (text[i] == '/' && i + 1 < length && text[i + 1] == '*') {
            for (i += 2; i + 1 < length && !(text[i] == '*' && text[i + 1] == '/'); i++) {}
            i++;
            code[j++] = ' ';
        } else if (text[i] == '/' && i + 1 < length && text[i + 1] == '/') {
            while (i < length && text[i] != '\n') i++;
            code[j++] = '\n';
        } else {
            code[j++] = text[i];
        }
    }
    code[j] = '\0';
    for (i = 0; code[i]; i++) {
        size_t start = i, end, k;
        int known = 0, c;
        if (strncmp(code + i, "reparo_", 7) != 0) continue;
        if (i > 0 && (code[i - 1] == '_' || (code[i - 1] >= 'a' && code[i - 1] <= 'z') ||
                      (code[i - 1] >= 'A' && code[i - 1] <= 'Z') || (code[i - 1] >= '0' && code[i - 1] <= '9')))
            continue;
        for (end = i; code[end] == '_' || (code[end] >= 'a' && code[end] <= 'z') || (code[end] >= '0' && code[end] <= '9'); end++) {}
        for (k = end; code[k] == ' ' || code[k] == '\t' || code[k] == '\n' || code[k] == '\r'; k++) {}
        i = end - 1;
        if (code[k] != '(' || end - start >= 64) continue;
        for (c = 0; c < count; c++)
            if (strlen(names[c]) == end - start && strncmp(names[c], code + start, end - start) == 0) known = 1;
        if (!known && count < capacity) {
            memcpy(names[count], code + start, end - start);
            names[count][end - start] = '\0';
            count++;
        }
    }
    free(text);
    free(code);
    return count;
}

/* ---- setup ---------------------------------------------------------------------------- */

static int write_file(const char *path, const void *data, size_t size) {
    FILE *file = fopen(path, "wb");
    int ok = file != NULL && fwrite(data, 1, size, file) == size;
    if (file && fclose(file) != 0) ok = 0;
    return ok;
}

static char *describe_text(const reparo_model *model) {
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

#define SETUP(call)                                                                                        \
    do {                                                                                                   \
        reparo_status status_ = (call);                                                                    \
        if (status_ != REPARO_OK) {                                                                        \
            fprintf(stderr, "setup: %s failed: %s: %s\n", #call, reparo_status_name(status_), reparo_last_error()); \
            return 0;                                                                                      \
        }                                                                                                  \
    } while (0)

static int setup(const char *scratch) {
    const float *images;
    const int32_t *labels;
    unsigned char bytes[4096], huge[10], no_metadata[10];
    static const char *const digits_files[] = {"digits-train-images.idx3-ubyte", "digits-train-labels.idx1-ubyte",
                                               "digits-test-images.idx3-ubyte", "digits-test-labels.idx1-ubyte"};
    uint64_t state = 12345;
    size_t i;
    FILE *file;
    long size;
    char *content;

    snprintf(g_scratch, sizeof g_scratch, "%s", scratch);
    snprintf(g_paths[P_GARBAGE], sizeof g_paths[0], "%s/garbage.safetensors", scratch);
    snprintf(g_paths[P_EMPTY], sizeof g_paths[0], "%s/empty.safetensors", scratch);
    snprintf(g_paths[P_TRUNCATED], sizeof g_paths[0], "%s/truncated.safetensors", scratch);
    snprintf(g_paths[P_HUGE_HEADER], sizeof g_paths[0], "%s/huge-header.safetensors", scratch);
    snprintf(g_paths[P_NO_METADATA], sizeof g_paths[0], "%s/no-metadata.safetensors", scratch);
    snprintf(g_paths[P_MISSING], sizeof g_paths[0], "%s/missing/nothing-here", scratch);
    snprintf(g_paths[P_NO_DIR], sizeof g_paths[0], "%s/no/such/dir/model.safetensors", scratch);
    snprintf(g_paths[P_SAVED], sizeof g_paths[0], "%s/saved.safetensors", scratch);
    snprintf(g_paths[P_ONNX], sizeof g_paths[0], "%s/model.onnx", scratch);
    snprintf(g_paths[P_STATE], sizeof g_paths[0], "%s/trainer-state.safetensors", scratch);
    snprintf(g_paths[P_OTHER_STATE], sizeof g_paths[0], "%s/other-trainer-state.safetensors", scratch);

    SETUP(reparo_model_create(VALID_SPEC, 3, &g_model));
    SETUP(reparo_model_create(SPEC_5_CLASSES, 3, &g_model5));
    SETUP(reparo_model_clone(g_model, &g_expanded));
    SETUP(reparo_expand(g_expanded, "{\"rate\":2}"));
    SETUP(reparo_model_clone(g_model, &g_busy));
    SETUP(reparo_trainer_create(g_busy, NULL, "{\"lr\":0.01}", &g_trainer));
    SETUP(reparo_trainer_create(g_model5, NULL, NULL, &g_trainer5));
    SETUP(reparo_dataset_load("digits", NULL, "test", &g_dataset));
    SETUP(reparo_dataset_data(g_dataset, &images, &labels));
    memcpy(g_images, images, sizeof g_images);
    memcpy(g_labels, labels, sizeof g_labels);
    memcpy(g_nan_images, images, sizeof g_nan_images);
    g_nan_images[SAMPLE + 10] = (float)NAN;
    SETUP(reparo_infer(g_model, g_images, BATCH, g_reference_logits, BATCH * CLASSES));
    if (!(g_reference_description = describe_text(g_model))) return 0;

    SETUP(reparo_model_create(VALID_SPEC, 0, &g_freed_model));
    SETUP(reparo_trainer_create(g_model5, NULL, NULL, &g_freed_trainer));
    SETUP(reparo_dataset_load("digits", NULL, "train", &g_freed_dataset));
    reparo_model_free(g_freed_model);
    reparo_trainer_free(g_freed_trainer);
    reparo_dataset_free(g_freed_dataset);
    if (!(g_garbage = malloc(256))) return 0;
    memset(g_garbage, 0xA5, 256);

    /* Files. */
    for (i = 0; i < sizeof bytes; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        bytes[i] = (unsigned char)(state >> 56);
    }
    memset(huge, 0xFF, 8);
    huge[7] = 0x7F; /* little-endian 2^63 − 1 */
    huge[8] = '{';
    huge[9] = '}';
    memset(no_metadata, 0, 8);
    no_metadata[0] = 2; /* header length 2: "{}", zero tensors */
    no_metadata[8] = '{';
    no_metadata[9] = '}';
    if (!write_file(g_paths[P_GARBAGE], bytes, sizeof bytes) || !write_file(g_paths[P_EMPTY], "", 0) ||
        !write_file(g_paths[P_HUGE_HEADER], huge, sizeof huge) ||
        !write_file(g_paths[P_NO_METADATA], no_metadata, sizeof no_metadata)) {
        fprintf(stderr, "setup: cannot write into %s\n", scratch);
        return 0;
    }
    for (i = 0; i < 4; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", scratch, digits_files[i]);
        if (!write_file(path, bytes, 100)) return 0;
    }
    SETUP(reparo_model_save(g_model, g_paths[P_SAVED]));
    SETUP(reparo_trainer_save(g_trainer, g_paths[P_STATE]));
    SETUP(reparo_trainer_save(g_trainer5, g_paths[P_OTHER_STATE]));
    file = fopen(g_paths[P_SAVED], "rb");
    if (!file || fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 32 || fseek(file, 0, SEEK_SET) != 0) return 0;
    content = malloc((size_t)size);
    if (!content || fread(content, 1, (size_t)size, file) != (size_t)size) return 0;
    fclose(file);
    if (!write_file(g_paths[P_TRUNCATED], content, (size_t)size - 16)) return 0;
    free(content);
    return 1;
}

static void teardown(void) {
    reparo_trainer_free(g_trainer);
    reparo_trainer_free(g_trainer5);
    reparo_model_free(g_busy);
    reparo_model_free(g_expanded);
    reparo_model_free(g_model5);
    reparo_model_free(g_model);
    reparo_dataset_free(g_dataset);
    free(g_garbage);
    free(g_reference_description);
}

/* ---- runner --------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    const char *header = argc > 1 ? argv[1] : REPARO_HEADER;
    const char *scratch = argc > 2 ? argv[2] : "/tmp";
    static char declared[256][64];
    int declared_count, passed = 0, failed = 0, d;
    size_t i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!setup(scratch)) {
        printf("setup failed\n0 passed, 1 failed\n");
        return 1;
    }

    for (i = 0; i < CASE_COUNT; i++) {
        const api_case *c = &CASE_TABLE[i];
        char message[1024];
        const char *problem = NULL, *written;
        reparo_status status;
        reset_outputs();
        printf("... %-22s %-26s %s\n", c->function, c->id, c->label);
        fflush(stdout);
        status = c->run();
        snprintf(message, sizeof message, "%s", g_saved_message[0] ? g_saved_message : reparo_last_error());
        if (status != c->expected) {
            problem = "wrong status";
        } else if (c->expected != REPARO_OK) {
            if (!message[0]) {
                problem = "reparo_last_error() is empty";
            } else if (c->needle && !strstr(message, c->needle)) {
                problem = "the message does not name the culprit";
            } else if ((written = written_output()) != NULL) {
                snprintf(g_detail, sizeof g_detail, "%s was written on failure", written);
                problem = g_detail;
            }
        }
        if (!problem && model_works(g_model) != REPARO_OK) problem = "the library stopped working after the call";
        if (problem) {
            failed++;
            printf("FAIL %s [%s]: %s: expected %s, got %s (%s)%s%s\n", c->function, c->id, problem,
                   reparo_status_name(c->expected), reparo_status_name(status), message,
                   g_detail[0] && problem != g_detail ? "; " : "", problem != g_detail ? g_detail : "");
        } else {
            passed++;
            if (c->expected != REPARO_OK)
                printf("ok   %s [%s] -> %s: %s\n", c->function, c->id, reparo_status_name(status), message);
            else
                printf("ok   %s [%s] -> %s\n", c->function, c->id, reparo_status_name(status));
        }
    }

    /* Every declared function has at least one case; every case names a declared function. */
    declared_count = header_functions(header, declared, 256);
    if (declared_count <= 0) {
        printf("FAIL coverage: cannot read the declarations of %s\n", header);
        failed++;
    } else {
        int uncovered = 0;
        for (d = 0; d < declared_count; d++) {
            int covered = 0;
            for (i = 0; i < CASE_COUNT; i++) covered |= strcmp(CASE_TABLE[i].function, declared[d]) == 0;
            if (covered) {
                passed++;
            } else {
                failed++;
                uncovered++;
                printf("FAIL coverage: %s is declared in %s but has no case in api_errors.c\n", declared[d], header);
            }
        }
        for (i = 0; i < CASE_COUNT; i++) {
            int known = 0;
            for (d = 0; d < declared_count; d++) known |= strcmp(CASE_TABLE[i].function, declared[d]) == 0;
            if (!known) {
                failed++;
                printf("FAIL coverage: case %s covers %s, which %s does not declare\n", CASE_TABLE[i].id,
                       CASE_TABLE[i].function, header);
            }
        }
        printf("coverage: %d functions declared in %s, %d without a case\n", declared_count, header, uncovered);
    }

    /* The shared model went through every failing call: it must be exactly as it was. */
    {
        float logits[BATCH * CLASSES];
        char *description = describe_text(g_model);
        if (reparo_infer(g_model, g_images, BATCH, logits, BATCH * CLASSES) != REPARO_OK ||
            memcmp(logits, g_reference_logits, sizeof logits) != 0 || !description ||
            strcmp(description, g_reference_description) != 0) {
            failed++;
            printf("FAIL integrity: the model changed during the failing calls\n");
        } else {
            passed++;
            printf("ok   integrity: the model's logits and description are unchanged\n");
        }
        free(description);
    }

    teardown();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
