/* mml/multimodal.h: the multimodal classification task: per-modality
 * encoders (mml/encoder.h), a fusion method (mml/fusion.h) and a classifier
 * head, trained on JSONL manifests (docs/config.md, "task": "multimodal").
 *
 *     mml_mm_data d;
 *     mml_mm_data_open(&data_node, config_dir, mods, &dopt, &d);   // features once, cached
 *     mml_mm_model *m;
 *     mml_mm_model_build(&model_node, &d, seed, &m);
 *     mml_mm_train(m, &d, &train_options, &history);
 *     mml_mm_evaluate(m, &d, MML_SPLIT_TEST, NULL, &eval);
 *
 * Modalities used are the keys of "model.encoders"; a unimodal model is one
 * encoder. Test-time robustness is a perturbation of the evaluation, not a
 * different config: Gaussian noise of a given strength (relative to the
 * modality's feature standard deviation over the training split) and a
 * fraction of samples with the modality removed.
 *
 * Thread safety: a model is used by one thread at a time; data are read-only
 * once opened and may be shared by several models. */
#ifndef MML_MULTIMODAL_H
#define MML_MULTIMODAL_H

#include "mml/dataset.h"
#include "mml/featurize.h"
#include "mml/fusion.h"
#include "mml/metrics.h"
#include "mml/train.h"

typedef enum mml_data_split { MML_SPLIT_TRAIN = 0, MML_SPLIT_VAL, MML_SPLIT_TEST, MML_SPLIT_COUNT } mml_data_split;

#define MML_MM_MAX_TASKS 4

/* Labels of an extra classification task (a manifest field). A model trains
 * the ones its "model.tasks" names ([{"label": "speaker", "weight": 0.5}]),
 * each with its own head on the fused representation. */
typedef struct mml_mm_task {
    char field[64];
    char **classes;
    int n_classes;
    int32_t *label[3];  /* per split, per kept sample */
} mml_mm_task;

typedef struct mml_mm_data {
    mml_manifest *manifest[MML_SPLIT_COUNT]; /* val may be NULL */
    mml_dataset *ds[MML_SPLIT_COUNT];
    mml_feature_config fc;
    mml_featurizer fz;
    char params[512];
    mml_bpe *bpe;
    mml_transforms *transforms; /* data.image.transforms, applied once at extraction */
    char **classes;
    int n_classes;
    float feat_std[MML_MOD_COUNT];           /* over the training split, for noise */
    mml_mm_task tasks[MML_MM_MAX_TASKS];
    int n_tasks;
    int64_t n_skipped;
    char dir[1024]; /* the config's directory: other files it names are relative to it */
} mml_mm_data;

typedef struct mml_mm_data_options {
    mml_on_error on_error;
    bool progress;
    const char *datasets_dir; /* for the default CLIP BPE file; NULL: MML_DATASETS or ../shared/datasets */
    const char *const *task_fields; /* extra task labels to read (mml_mm_task_fields) */
    int n_task_fields;
} mml_mm_data_options;

/* "data": {"train": F, "val": F, "test": F, "label": "label", "cache": DIR,
 *          "image": {...}, "audio": {...}, "text": {...}}; paths relative to
 * config_dir. Only the modalities in use (mods[m]) are extracted. */
mml_status mml_mm_data_open(const mml_cfg_node *data, const char *config_dir, const bool *mods,
                            const mml_mm_data_options *opt, mml_mm_data *out);
/* Only the featurizer of a "data" node (no split is read), for data outside
 * the config's splits: a manifest to embed, a query. */
mml_status mml_mm_data_open_features(const mml_cfg_node *data, const char *config_dir, const bool *mods,
                                     const mml_mm_data_options *opt, mml_mm_data *out);
/* Features of any manifest's samples through d's featurizer, without labels
 * (uses opt's on_error and progress). */
mml_status mml_mm_data_features_of(const mml_mm_data *d, const mml_manifest *m, const mml_mm_data_options *opt,
                                   mml_dataset **out);
void mml_mm_data_close(mml_mm_data *d);
/* Which modalities a "model" node's encoders use. */
mml_status mml_mm_modalities(const mml_cfg_node *model, bool *mods);
/* Adds the labels of a "model" node's tasks to fields[0..n) (no duplicates);
 * returns the new count, or -1 with an error. */
int mml_mm_task_fields(const mml_cfg_node *model, const char **fields, int n, int cap);
/* Index of an extra task in d, or -1. */
int mml_mm_data_task(const mml_mm_data *d, const char *field);

typedef struct mml_mm_model mml_mm_model;

mml_status mml_mm_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed, mml_mm_model **out);
void mml_mm_model_free(mml_mm_model *m);
mml_params *mml_mm_model_params(mml_mm_model *m);
int mml_mm_model_modalities(const mml_mm_model *m, mml_modality *mods); /* returns how many */
const char *mml_mm_model_fusion(const mml_mm_model *m);                /* "none" when unimodal */

/* Augmentation of training batches, on the extracted features (they are
 * computed once, so this is where per-epoch variety comes from):
 *   "train": {"augment": {"audio": {"time_mask": 10, "freq_mask": 8, "time_shift": 8, "noise": 0.1},
 *                         "image": {"shift": 2, "noise": 0.1}}}
 * time_mask / freq_mask: one SpecAugment mask of up to that many frames / mel
 * bins per sample (filled with the sample's mean, as torchaudio's masking on
 * normalised features); time_shift: a circular shift of up to that many
 * frames either way; shift: an image translation of up to that many pixels
 * (zero fill); noise: Gaussian, in feature standard deviations. */
typedef struct mml_mm_augment {
    int time_mask, freq_mask, time_shift, image_shift;
    float audio_noise, image_noise;
} mml_mm_augment;

/* Reads "augment" from a "train" node into the model (absent: none). */
mml_status mml_mm_model_set_augment(mml_mm_model *m, const mml_cfg_node *train);

typedef struct mml_mm_history {
    int epochs;
    double train_loss[256], val_accuracy[256];
    double train_seconds, samples_per_second;
    /* Training state: weights, gradients, optimizer slots and the step
     * arena's peak (the process adds the data and the code). */
    double train_bytes;
} mml_mm_history;

/* Uses epochs, batch_size, optim, schedule, clip_norm, label_smoothing, seed,
 * modality_dropout, progress and log of the options. */
mml_status mml_mm_train(mml_mm_model *m, const mml_mm_data *d, const mml_train_options *o, mml_mm_history *h);

typedef struct mml_mm_perturb {
    float noise[MML_MOD_COUNT];    /* Gaussian noise std, in feature standard deviations */
    float missing[MML_MOD_COUNT];  /* fraction of samples with the modality removed */
    uint64_t seed;
} mml_mm_perturb;

/* Applies p to modalities mods[0..n) of a batch: a removed modality has
 * presence 0 and zero features. */
void mml_mm_perturb_batch(const mml_mm_data *d, const mml_batch *b, const mml_modality *mods, int n,
                          const mml_mm_perturb *p, mml_rng *r);

typedef struct mml_mm_eval {
    mml_confusion cm;              /* initialised by mml_mm_evaluate; free with mml_confusion_free */
    mml_metrics metrics;
    double loss;
    double modality_weight[MML_MOD_COUNT]; /* mean fusion weights (attention, gmu, learned late), else 0 */
    bool has_weights;
    double seconds;
    double task_accuracy[MML_MM_MAX_TASKS]; /* per data task; NAN for those the model does not train */
} mml_mm_eval;

mml_status mml_mm_evaluate(mml_mm_model *m, const mml_mm_data *d, mml_data_split split, const mml_mm_perturb *p,
                           mml_mm_eval *out);

/* Logits [B, classes] of the main task for a batch, the forward pass of
 * mml_mm_evaluate without its bookkeeping (an imputer, if any, fills missing
 * modalities first). Grad and training mode are the caller's settings of ctx.
 * NULL on failure, with the error set. */
mml_tensor *mml_mm_model_forward(mml_ctx *ctx, mml_mm_model *m, const mml_batch *b);

/* Saves the model with its config and classes (mml/model.h's format). */
mml_status mml_mm_model_save(mml_mm_model *m, const char *path, const char *config_json, const char *classes_json);

#endif
