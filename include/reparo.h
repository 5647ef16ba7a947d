/*
 * reparo.h — the C API of Reparo: restore the accuracy of pruned CNNs by linear
 * over-parameterization (Qian et al., arXiv 2204.11444).
 *
 * Workflow: create or load a dense model → train it → reparo_prune → reparo_expand →
 * fine-tune with a reparo_trainer (cross-entropy + similarity-preserving distillation
 * against the dense teacher) → reparo_collapse → reparo_infer / reparo_model_save.
 *
 * Numerics: BatchNorm follows PyTorch (ε = 1e-5, running-average momentum 0.1, unbiased
 * running variance). Saved tensor names follow PyTorch (<layer>.weight, .bias, .running_mean,
 * .running_var); an expanded layer saves <layer>.factors.{0,1,2}.weight and, if it has a
 * bias, <layer>.factors.2.bias. PyTorch's num_batches_tracked is not stored.
 *
 * Conventions
 *  - Every fallible call returns a reparo_status (0 = REPARO_OK). On failure the message is
 *    available from reparo_last_error() on the same thread, and every object passed in is left
 *    exactly as it was.
 *  - Outputs go through the last pointer arguments; they are written only on success.
 *  - Tensors are float32, NCHW, contiguous. Buffer capacities are counted in elements.
 *  - Options are JSON objects (NULL or "" = all defaults). Unknown keys, wrong types and
 *    out-of-range values are rejected with REPARO_ERR_INVALID_ARGUMENT naming the key.
 *  - Handles are opaque tokens, never reused within a process; a freed or foreign handle is
 *    detected and rejected (REPARO_ERR_INVALID_ARGUMENT) rather than dereferenced, even after
 *    newer objects were created. *_free(NULL) is a no-op.
 *  - Thread safety: a model may be read by many threads at once (reparo_infer,
 *    reparo_evaluate, reparo_model_save, reparo_model_export_onnx, reparo_model_clone,
 *    reparo_model_describe, reparo_model_threads; reparo_model_set_threads may also run
 *    alongside them). Calls that change a model (reparo_expand, reparo_collapse,
 *    reparo_trainer_step on a trainer that owns it as student) must not run concurrently
 *    with any other call on that model.
 *    A trainer is used by one thread at a time.
 */
#ifndef REPARO_H
#define REPARO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header, and of the library built from it: the one place the version is
 * written (the Swift engine, the Python package and the Makefile read it from here). */
#define REPARO_VERSION_MAJOR 0
#define REPARO_VERSION_MINOR 1
#define REPARO_VERSION_PATCH 0
#define REPARO_VERSION_STRING "0.1.0" /* MAJOR.MINOR.PATCH, checked by the test suites */

typedef int32_t reparo_status; /* 0 = REPARO_OK; positive codes below */

enum {
    REPARO_OK = 0,
    REPARO_ERR_INVALID_ARGUMENT = 1, /* NULL, size, shape, handle, option or spec field is wrong */
    REPARO_ERR_IO = 2,               /* file missing, unreadable, unwritable, or a directory */
    REPARO_ERR_FORMAT = 3,           /* malformed weights or dataset file */
    REPARO_ERR_STATE = 4,            /* the model is not in a state that allows the call */
    REPARO_ERR_NUMERIC = 5,          /* non-finite loss or gradient; nothing was changed */
    REPARO_ERR_OUT_OF_MEMORY = 6,    /* allocation failed or exceeds the size limits */
    REPARO_ERR_INTERNAL = 7          /* a bug in Reparo: please report it */
};

typedef struct reparo_model reparo_model;     /* opaque */
typedef struct reparo_trainer reparo_trainer; /* opaque */
typedef struct reparo_dataset reparo_dataset; /* opaque */

/* Result of one training step. kd_loss is 0 when distillation is off; accuracy is the
 * fraction of the batch classified correctly (before the update); step counts from 1. */
typedef struct {
    float loss, ce_loss, kd_loss, accuracy, learning_rate;
    int64_t step;
} reparo_step_result;

/* ---------------------------------------------------------------------------------------
 * Library
 * ------------------------------------------------------------------------------------- */

/* Version of the loaded library: its REPARO_VERSION_STRING (a program may compare it with the
 * header it was compiled against). Static storage; never NULL. */
const char *reparo_version(void);

/* Message of this thread's last failed call; "" if none. Valid until this thread's next
 * Reparo call. Never NULL. */
const char *reparo_last_error(void);

/* Name of a status code ("REPARO_ERR_IO", ...). Static storage; never NULL. */
const char *reparo_status_name(reparo_status status);

/* Writes JSON describing what the numbers and speed depend on: {"version", "cpu": {"vendor",
 * "model", "features":["avx2","fma","avx512f",..], "level":"sse"|"avx"|"avx2"|"avx512"},
 * "blas": {"config" (openblas_get_config), "core" (running), "detected_core" (what OpenBLAS
 * chose before Reparo looked), "chooser":"openblas"|"user"|"reparo"|"forced", "reason",
 * "threads"}, "kernels": {"isa"}, "calibration": {"enabled","file","persisted_choices"} (the
 * kernel choices measured once per machine, see README), "threads": {"engine_default",
 * "usable_cpus","online_cpus"},
 * "environment": {"OPENBLAS_CORETYPE","REPARO_BLAS_CORE","OPENBLAS_NUM_THREADS",
 * "OMP_NUM_THREADS"} (null when unset)}. Fixes the OpenBLAS core first if it is still unfixed
 * (see README, "CPU and BLAS"). Same buffer convention as reparo_model_describe. Thread-safe. */
reparo_status reparo_system_info(char *buffer, size_t capacity, size_t *out_length);

/* ---------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------- */

/* Creates a model with freshly initialized weights (Kaiming-normal convs, seeded).
 * spec_json: a preset {"preset":"vgg16"|"resnet20"|"resnet56", "classes":10,
 *   "input":[3,32,32], "width":1.0} or a generic spec {"input":[C,H,W], "classes":K,
 *   "layers":[{"type":"conv","out":16,"kernel":3,"stride":1,"padding":1,"bias":false},
 *   {"type":"batchnorm"}, {"type":"relu"}, {"type":"maxpool","kernel":3,"stride":2,"padding":1},
 *   {"type":"avgpool"} (global when no kernel), {"type":"flatten"},
 *   {"type":"linear","out":K,"bias":true}, {"type":"basic_block","out":32,"stride":2}]}.
 *   Every layer may carry a "name". The last layer's outputs must equal "classes". Pools
 *   default "stride" to "kernel"; a max-pool's "padding" (default 0, at most kernel/2) pads
 *   with -inf as PyTorch's MaxPool2d; an avgpool takes none.
 * Sizes are bounded (at most 2^28 parameters, 2^26 activation floats per image, and 2^27
 * floats = 512 MiB of inference workspace per image, which is allocated here and kept for the
 * first inference); specs beyond them, like any other bad field, give INVALID_ARGUMENT naming
 * the field; OUT_OF_MEMORY only when the machine cannot allocate a model within those bounds.
 * The caller owns *out_model (reparo_model_free). */
reparo_status reparo_model_create(const char *spec_json, uint64_t seed, reparo_model **out_model);

/* Loads a model saved by reparo_model_save (safetensors with the spec and state in its
 * metadata). Errors: IO (missing, directory, unreadable), FORMAT (any defect, including a spec
 * beyond the bounds of reparo_model_create: the file is validated, and its tensors matched
 * to its spec, before anything is allocated for the model). The caller owns *out_model. */
reparo_status reparo_model_load(const char *path, reparo_model **out_model);

/* Saves the model in any state as safetensors (PyTorch tensor names, F32). Atomic: written
 * to a temporary file in the same directory, synced, then renamed over `path`; on failure
 * the previous file at `path` is untouched. Errors: INVALID_ARGUMENT, IO. */
reparo_status reparo_model_save(const reparo_model *model, const char *path);

/* Writes a dense, pruned or collapsed model (BatchNorm folded or not) as an ONNX model
 * (opset 17; input "input" [batch,C,H,W] with a dynamic batch, output "logits" [batch,K],
 * initializers under the model's tensor names) that onnxruntime runs with the same logits.
 * options_json: NULL, "" or {"opset":17} (the only opset written). Atomic like
 * reparo_model_save. Errors: STATE (an expanded model: collapse it first), INVALID_ARGUMENT
 * (bad options, unknown keys named), IO. */
reparo_status reparo_model_export_onnx(const reparo_model *model, const char *path, const char *options_json);

/* Imports an ONNX model of a CNN as a Reparo model (a normal model: prune, expand, train,
 * collapse, save, infer). Reads the graphs torch.onnx.export writes for VGG- and ResNet-style
 * models (either exporter) and those reparo_model_export_onnx writes: default-domain opsets 9
 * to 23; Conv (square kernel, equal strides and pads, group 1, dilation 1), BatchNormalization
 * (inference), Relu, MaxPool, AveragePool (no pads), GlobalAveragePool or ReduceMean over H, W,
 * Flatten / Reshape to [N, features], Gemm, MatMul (+ Add of a bias), Add + Relu of two branches
 * (residual block), Identity, Dropout; FLOAT weights, inside the file or in external data files
 * in its directory (the dynamo exporter's "model.onnx.data"); one input [N, C, H, W], one output
 * [N, classes]; files up to 2 GiB (the table is in the README). Layers are named
 * after the PyTorch modules ("layer1.0.conv1"). options_json: NULL, "" or
 * {"input":[C,H,W] (needed when the graph's C, H or W is symbolic; must agree when fixed),
 *  "state":"dense"|"pruned" (what describe reports; default "dense")}.
 * Errors: INVALID_ARGUMENT (NULL path or out_model, bad options, and a valid ONNX model outside
 * the supported set: the message names the node, its index and op_type, and the op or
 * attribute), IO (missing, unreadable, a directory), FORMAT (not an ONNX model, truncated,
 * malformed or inconsistent: tensors whose dims lie about their data, dangling values, shapes
 * that do not chain). Allocation is bounded by the file's size. The caller owns *out_model. */
reparo_status reparo_model_import_onnx(const char *path, const char *options_json, reparo_model **out_model);

/* Deep copy (weights, BatchNorm statistics, state). The caller owns *out_model. */
reparo_status reparo_model_clone(const reparo_model *model, reparo_model **out_model);

/* Writes a JSON description: {"state","input":[C,H,W],"classes","parameters","flops",
 * "layers":[{"name","type","input":[..],"output":[..],"weight":[..],"chain":[[..],..]},..]}.
 * "flops" counts forward multiply-adds for one image. The text is NUL-terminated and
 * truncated to capacity-1 characters; *out_length receives the full length (without the NUL),
 * so a caller may ask with buffer NULL and capacity 0 first. out_length may be NULL. */
reparo_status reparo_model_describe(const reparo_model *model, char *buffer, size_t capacity,
                                    size_t *out_length);

/* Resolves a spec (a preset or a generic layer list, exactly what reparo_model_create takes)
 * without building the model or allocating its tensors, and writes JSON:
 * {"spec": <the resolved spec, as saved in a model file>,
 *  "layers": [{"name","type","input":[C,H,W],"output":[C,H,W]}, ...],   every layer, depth-first
 *            pre-order: a basic_block's own entry, then its main path, then its shortcut
 *  "tensors": [{"name":"features.0.weight","shape":[16,1,3,3]}, ...]}  every tensor of the model,
 *            in the model's tensor (save) order
 * "type" is the spec's type word (conv, batchnorm, relu, maxpool, avgpool, flatten, linear,
 * basic_block). Same buffer convention as reparo_model_describe. Errors: INVALID_ARGUMENT naming
 * the field, exactly as reparo_model_create would report for the same spec (except the
 * inference-workspace cap, which model creation measures as it allocates). Thread-safe. */
reparo_status reparo_spec_resolve(const char *spec_json, char *buffer, size_t capacity, size_t *out_length);

/* Input shape [C, H, W] and number of classes of the model. Any output pointer may be NULL. */
reparo_status reparo_model_shape(const reparo_model *model, int32_t *out_channels, int32_t *out_height,
                                 int32_t *out_width, int32_t *out_classes);

/* Compute threads of this model's inference (reparo_infer, reparo_evaluate): 0 (the default)
 * = every core the process may use (its affinity mask / taskset), else 1 ... 256. The setting
 * belongs to this model only: other models and trainers keep their own (a trainer's are its
 * "threads" option), and results never depend on it. Thread-safe: may be called at any time,
 * also while other threads infer on the model; a call already running keeps the count it
 * started with. A clone inherits it. Errors: INVALID_ARGUMENT (threads outside 0 ... 256). */
reparo_status reparo_model_set_threads(reparo_model *model, int32_t threads);

/* The model's inference thread setting (0 = every core), as set by reparo_model_set_threads. */
reparo_status reparo_model_threads(const reparo_model *model, int32_t *out_threads);

/* Frees a model. NULL is a no-op. A model must not be freed while a trainer uses it. */
void reparo_model_free(reparo_model *model);

/* ---------------------------------------------------------------------------------------
 * Inference and evaluation (thread-safe on a shared model)
 * ------------------------------------------------------------------------------------- */

/* Eval-mode forward pass. images: batch × C × H × W floats (NCHW). Writes batch × classes
 * logits; out_capacity (floats) must be at least that. batch in 1 ... 65536. */
reparo_status reparo_infer(const reparo_model *model, const float *images, int32_t batch,
                           float *out_logits, size_t out_capacity);

/* Eval-mode accuracy and mean cross-entropy over `count` labelled images, processed in
 * chunks of at most 256. Either output pointer may be NULL. */
reparo_status reparo_evaluate(const reparo_model *model, const float *images, const int32_t *labels,
                              int64_t count, float *out_accuracy, float *out_loss);

/* ---------------------------------------------------------------------------------------
 * Training
 * ------------------------------------------------------------------------------------- */

/* Creates an SGD trainer that updates `student` in place. `teacher` (may be NULL) is the
 * frozen dense model for similarity-preserving distillation; it is only read and must
 * outlive the trainer, as must the student. options_json (NULL = defaults):
 *   "lr": 0.05            base learning rate (> 0)
 *   "momentum": 0.9       in [0, 1)
 *   "nesterov": false
 *   "weight_decay": 5e-4  L2 on conv/linear weights (not on biases or BatchNorm)
 *   "schedule": "constant" | "step" | "cosine"   (default "constant")
 *   "total_steps": 0      steps of the run; required (> 0) for "cosine"
 *   "step_size": 1000, "gamma": 0.1   for "step": lr × gamma every step_size steps
 *   "augment": {"crop_padding": 0, "flip": false}   random crop with zero padding, h-flip
 *   "kd_weight": 300 with a teacher, else 0   weight of the SP-KD loss (averaged over the
 *                         layer pairs; 0 = off); > 0 needs a teacher
 *   "kd_layers": "pruned" | "all" | [names]   student layers paired with the teacher's layer
 *                         of the same name: the ReLU closing each conv (→ BN) → ReLU, or each
 *                         residual block; "pruned" = those whose conv widths differ
 *   "clip_norm": 0        clip the global gradient norm (0 = off)
 *   "seed": 0             augmentation randomness
 *   "threads": 0          compute threads of this trainer's steps, teacher forward included
 *                         (0 = every core the process may use, i.e. its affinity mask / taskset;
 *                         no other model or trainer is affected; OpenBLAS itself runs single-threaded)
 *   "chain_mode": "auto" | "naive" | "online"   how expanded chains are trained: "naive" runs
 *                         the three factors; "online" collapses them once per step, runs one
 *                         compact conv and maps its weight gradient back onto the factors (same
 *                         gradients, far cheaper); "auto" picks per layer by multiply-add count
 * Errors: INVALID_ARGUMENT (options; teacher whose input or classes differ; kd_weight > 0
 * without a teacher or without layer pairs). The caller owns *out_trainer (reparo_trainer_free). */
reparo_status reparo_trainer_create(reparo_model *student, const reparo_model *teacher,
                                    const char *options_json, reparo_trainer **out_trainer);

/* One SGD step on a batch: images batch × C × H × W, labels in [0, classes). Errors:
 * INVALID_ARGUMENT (sizes, labels), NUMERIC (non-finite loss or gradient: weights,
 * BatchNorm statistics and optimizer state are left as they were), STATE (the trainer has
 * taken 2^53 steps, the most it counts). out_result may be NULL. */
reparo_status reparo_trainer_step(reparo_trainer *trainer, const float *images, const int32_t *labels,
                                  int32_t batch, reparo_step_result *out_result);

/* Frees a trainer (not its models). NULL is a no-op. */
void reparo_trainer_free(reparo_trainer *trainer);

/* Saves the trainer's own state (momentum buffers, step count and so the schedule position,
 * augmentation generator) as safetensors, atomically. Together with reparo_model_save of the
 * student it is a checkpoint: a new trainer (same student spec and options) given
 * reparo_trainer_load of this file continues exactly as an uninterrupted run.
 * Errors: INVALID_ARGUMENT, IO. */
reparo_status reparo_trainer_save(const reparo_trainer *trainer, const char *path);

/* Restores a state saved by reparo_trainer_save. The file must come from a trainer whose
 * student had the same spec and state; it is validated fully before anything changes.
 * Errors: INVALID_ARGUMENT (other spec), IO, FORMAT (malformed, or a field out of range,
 * e.g. "step" outside 0 ... 2^53; the message names it). */
reparo_status reparo_trainer_load(reparo_trainer *trainer, const char *path);

/* Progress of reparo_trainer_fit, called after every step with the step's result, the
 * 1-based epoch and batch numbers, and the running mean loss and accuracy of the epoch.
 * Return 0 to continue, non-zero to stop after this step. */
typedef int32_t (*reparo_progress_callback)(const reparo_step_result *result, int32_t epoch, int32_t epochs,
                                            int32_t batch, int32_t batches, float epoch_loss,
                                            float epoch_accuracy, void *user_data);

/* Trains for `epochs` passes over `dataset` in shuffled (seeded) mini-batches of batch_size,
 * the last batch smaller: epoch e takes the samples in the order of reparo_fit_order(count,
 * seed, e), batch_size at a time. progress may be NULL. On an error the steps already taken
 * are kept and the failing step changed nothing. Stopping from the callback is not an error.
 * Errors: as reparo_trainer_step, and INVALID_ARGUMENT when the dataset's image shape differs
 * from the student's input or it has more classes than the student. */
reparo_status reparo_trainer_fit(reparo_trainer *trainer, const reparo_dataset *dataset, int32_t epochs,
                                 int32_t batch_size, uint64_t seed, reparo_progress_callback progress,
                                 void *user_data);

/* The order in which reparo_trainer_fit visits `count` samples in 1-based epoch `epoch` of a
 * run seeded with `seed`: a permutation of 0 ... count-1, written to out_order (out_capacity
 * at least count). A loop of reparo_trainer_step calls that takes batches in this order trains
 * exactly as reparo_trainer_fit does. Takes time proportional to count × epoch (each epoch
 * reshuffles the previous one). Errors: INVALID_ARGUMENT (NULL, count outside 1 ... 2^30,
 * epoch outside 1 ... 1000000, capacity). */
reparo_status reparo_fit_order(int64_t count, uint64_t seed, int32_t epoch, int64_t *out_order,
                               size_t out_capacity);

/* ---------------------------------------------------------------------------------------
 * The method: prune, expand, collapse
 * ------------------------------------------------------------------------------------- */

/* Structured (filter-level) pruning of a dense model into a new, smaller model; `dense` is
 * not changed. options_json: {"ratio":0.5, "criterion":"l1"|"l2"|"bn_gamma"|"random",
 * "seed":0, "layers":{"<conv name>":ratio,...}, "residual":"block"|"coupled"}.
 * The caller owns *out_pruned. Errors: INVALID_ARGUMENT, STATE (already expanded). */
reparo_status reparo_prune(const reparo_model *dense, const char *options_json, reparo_model **out_pruned);

/* Expands each selected conv (and optionally linear) layer, in place, into a chain of three
 * linear factors (1×1 → k×k → 1×1, widths r·Cin and r·Cout) whose product is the original
 * weight, so outputs are unchanged. options_json: {"rate":4, "layers":"conv"|"all"|[names],
 * "seed":0}. Errors: STATE (already expanded), INVALID_ARGUMENT. */
reparo_status reparo_expand(reparo_model *model, const char *options_json);

/* Multiplies every expanded chain back into one layer of the compact shape, in place.
 * options_json: {"fold_batchnorm": false} (true also folds each BatchNorm into the conv
 * before it, for inference). Errors: STATE (nothing to collapse), INVALID_ARGUMENT. */
reparo_status reparo_collapse(reparo_model *model, const char *options_json);

/* ---------------------------------------------------------------------------------------
 * Datasets (the bundled digits, MNIST and Fashion-MNIST IDX, CIFAR-10 binary, or arrays)
 * ------------------------------------------------------------------------------------- */

/* Loads a labelled image set. kind:
 *   "digits"         the bundled UCI digits, 1×8×8; path NULL: $REPARO_DATA, else the data/
 *                    directory found above the working directory, program or library;
 *   "mnist"          1×28×28, path (required) holds the four IDX files;
 *   "fashion-mnist"  1×28×28, the same four file names; path NULL: $REPARO_FASHION_MNIST if
 *                    set and non-empty, else /usr/share/datasets/fashion-mnist (Debian
 *                    package dataset-fashion-mnist);
 *   "cifar10"        3×32×32, path (required) holds the binary batches.
 * IDX files are read as train-images-idx3-ubyte or, when absent, train-images-idx3-ubyte.gz
 * (gzip, inflated while reading), and likewise for the other three. split: "train" or "test".
 * Images are standardized per channel with the training split's mean and std. The caller
 * owns *out_dataset (reparo_dataset_free). Errors: INVALID_ARGUMENT (kind, split, missing
 * path), IO (missing directory or files, named), FORMAT (bad contents, corrupt or truncated
 * gzip data; the message names the file). */
reparo_status reparo_dataset_load(const char *kind, const char *path, const char *split,
                                  reparo_dataset **out_dataset);

/* Makes a dataset from the caller's arrays: images count × channels × height × width floats
 * (NCHW), labels count int32s in [0, classes). Both are copied once into the library (the
 * caller may free its buffers on return) and used as is: no standardization. Every value is
 * checked: count ≥ 1, every dimension and classes ≥ 1, count × C × H × W within the 2^30-float
 * limit (no overflow), every image value finite, every label in range (the error names the
 * first bad sample). Usable with reparo_trainer_fit like a loaded set. Errors:
 * INVALID_ARGUMENT, OUT_OF_MEMORY. The caller owns *out_dataset (reparo_dataset_free). */
reparo_status reparo_dataset_create(const float *images, const int32_t *labels, int64_t count, int32_t channels,
                                    int32_t height, int32_t width, int32_t classes,
                                    reparo_dataset **out_dataset);

/* Number of samples, sample shape and classes. Any output pointer may be NULL. */
reparo_status reparo_dataset_info(const reparo_dataset *dataset, int64_t *out_count, int32_t *out_channels,
                                  int32_t *out_height, int32_t *out_width, int32_t *out_classes);

/* Borrowed pointers to the images (count × C × H × W floats) and labels (count int32s), valid
 * until reparo_dataset_free. Either output pointer may be NULL. */
reparo_status reparo_dataset_data(const reparo_dataset *dataset, const float **out_images,
                                  const int32_t **out_labels);

/* Frees a dataset. NULL is a no-op. */
void reparo_dataset_free(reparo_dataset *dataset);

#ifdef __cplusplus
}
#endif

#endif /* REPARO_H */
