/*
 * handles.c — reparo.h: "a freed or foreign handle is detected and rejected
 * (REPARO_ERR_INVALID_ARGUMENT) rather than dereferenced". Checks a foreign pointer, a handle
 * of another kind, a freed handle, and freed handles after newer objects of the same kind were
 * created (the allocator often reuses the freed address, which an address-keyed registry
 * could not tell apart; the registry's handles are never-reused tokens).
 *
 *   ./handles      prints "handles: N passed, M failed"
 */
#include <stdio.h>
#include <stdlib.h>

#include "reparo.h"

static const char *spec =
    "{\"input\":[1,2,2],\"classes\":2,\"layers\":[{\"type\":\"flatten\"},{\"type\":\"linear\",\"out\":2}]}";
static int passed, failed;

static void expect_rejected(reparo_status status, const char *what) {
    if (status == REPARO_ERR_INVALID_ARGUMENT) {
        passed++;
    } else {
        failed++;
        printf("handles: FAILED: %s gave %s instead of REPARO_ERR_INVALID_ARGUMENT\n", what, reparo_status_name(status));
    }
}

int main(void) {
    int32_t classes = 0;

    /* A pointer Reparo never made. */
    void *foreign = calloc(1, 256);
    expect_rejected(reparo_model_shape((reparo_model *)foreign, NULL, NULL, NULL, &classes), "a foreign pointer");
    free(foreign);

    /* A live handle of another kind. */
    reparo_model *model = NULL;
    if (reparo_model_create(spec, 1, &model) != REPARO_OK) return 1;
    expect_rejected(reparo_dataset_info((reparo_dataset *)model, NULL, NULL, NULL, NULL, NULL), "a model as a dataset");

    /* A freed handle. */
    reparo_model *stale = model;
    reparo_model_free(model);
    expect_rejected(reparo_model_shape(stale, NULL, NULL, NULL, &classes), "a freed model");
    reparo_model_free(stale); /* a second free is a no-op, not a double free */

    /* A freed handle after newer models of the same kind were created, possibly at the freed
     * object's address: handles are never-reused tokens, so each stale one must stay invalid
     * and no new model may get a freed model's handle. */
    reparo_model *kept[64] = {0};
    int reissued = 0;
    for (int i = 0; i < 64; i++) {
        reparo_model *old = NULL;
        if (reparo_model_create(spec, 2, &old) != REPARO_OK) return 1;
        reparo_model_free(old);
        if (reparo_model_create(spec, 3, &kept[i]) != REPARO_OK) return 1;
        if (kept[i] == old) reissued++;
        expect_rejected(reparo_model_shape(old, NULL, NULL, NULL, &classes),
                        "a freed model after a newer one was created");
    }
    if (reissued) {
        failed++;
        printf("handles: FAILED: %d new models got the handle of a freed one\n", reissued);
    } else {
        passed++;
    }
    for (int i = 0; i < 64; i++) reparo_model_free(kept[i]);

    printf("handles: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
