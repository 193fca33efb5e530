/* mml/align.h: cross-modal alignment ("task": "retrieval"): one encoder per
 * modality (mml/encoder.h; dual encoders) or one shared by all (Siamese),
 * each followed by a linear projection into a common space of "embed"
 * dimensions, L2-normalised, and trained so that the modalities of one
 * sample land together (docs/crossmodal.md):
 *
 *   "model": {"encoders": {"image": {...}, "audio": {...}}, "embed": 64,
 *             "shared": false,
 *             "objective": {"type": "info_nce", "temperature": 0.07}}
 *
 * Objectives: "info_nce" (CLIP's symmetric InfoNCE, learnable temperature
 * unless "learn_temperature": false), "hinge" (VSE++ bidirectional ranking,
 * "margin", "hardest"), "cosine" (nn.CosineEmbeddingLoss on matching pairs
 * and on mismatched ones made by rolling the batch, "margin"). With three
 * modalities the loss is the mean over every pair of them. Samples lacking a
 * modality of the model are left out of training (they pair with nothing).
 *
 *     mml_align_model *m;
 *     mml_align_model_build(&model_node, &data, seed, &m);
 *     mml_align_train(m, &data, &train_options, &history);
 *     mml_align_evaluate(m, &data, MML_SPLIT_TEST, &eval);   // every direction
 *
 * Thread safety: a model is used by one thread at a time. */
#ifndef MML_ALIGN_H
#define MML_ALIGN_H

#include "mml/model.h"
#include "mml/multimodal.h"

typedef struct mml_align_model mml_align_model;

mml_status mml_align_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed,
                                 mml_align_model **out);
void mml_align_model_free(mml_align_model *m);
mml_params *mml_align_model_params(mml_align_model *m);
int64_t mml_align_model_dim(const mml_align_model *m);
int mml_align_model_modalities(const mml_align_model *m, mml_modality *mods); /* returns how many */
const char *mml_align_model_objective(const mml_align_model *m);

typedef struct mml_align_history {
    int epochs;
    double train_loss[256];
    double val_recall1[256]; /* category-level Recall@1, mean over directions */
    double train_seconds, samples_per_second;
    double train_bytes;      /* weights, gradients, optimizer slots, step arena peak */
} mml_align_history;

/* Uses epochs, batch_size, optim, schedule, clip_norm, seed, progress and log. */
mml_status mml_align_train(mml_align_model *m, const mml_mm_data *d, const mml_train_options *o,
                           mml_align_history *h);

/* Embeddings [n, dim] of modality mo for every sample of a split (rows
 * lacking mo hold the embedding of zero features: see the dataset's present
 * flags), with the test-time perturbation p applied when not NULL. out:
 * n * dim floats. */
mml_status mml_align_embed(mml_align_model *m, const mml_mm_data *d, mml_data_split split, mml_modality mo,
                           const mml_mm_perturb *p, float *out);

/* The same for any dataset made with d's featurizer (mml_mm_data_features_of). */
mml_status mml_align_embed_dataset(mml_align_model *m, const mml_mm_data *d, const mml_dataset *ds, mml_modality mo,
                                   const mml_mm_perturb *p, float *out);

typedef struct mml_align_direction {
    mml_modality query, gallery;
    mml_retrieval_metrics instance; /* the paired item is the one relevant */
    mml_retrieval_metrics category; /* every gallery item of the query's label is relevant */
} mml_align_direction;

typedef struct mml_align_eval {
    int n;
    mml_align_direction dir[MML_MOD_COUNT * (MML_MOD_COUNT - 1)];
    double seconds;
} mml_align_eval;

/* Retrieval in every ordered pair of the model's modalities: queries are the
 * split's samples with the query modality, the gallery those with the other. */
mml_status mml_align_evaluate(mml_align_model *m, const mml_mm_data *d, mml_data_split split, mml_align_eval *out);

/* Cross-modal transfer: a linear classifier (a "probe") trained on the
 * training split's `from` embeddings only, then applied unchanged to any
 * modality's embeddings. */
mml_status mml_align_probe_fit(mml_align_model *m, const mml_mm_data *d, mml_modality from, uint64_t seed,
                               mml_model **probe);
/* Prompt-based (zero-shot) classification as CLIP does it: class c is the
 * text embedding of prompts[c] (one per class, in class order), an item goes
 * to the class whose prompt is nearest; returned as a probe (a linear layer
 * whose rows are those embeddings). */
mml_status mml_align_prompt_classifier(mml_align_model *m, const mml_mm_data *d, const char *const *prompts, int n,
                                       mml_model **probe);
/* The probe on the test split's `to` embeddings (p: a test-time perturbation
 * of `to`, or NULL); cm is initialised here (mml_confusion_free). Samples
 * lacking `to` are left out unless p removed it. */
mml_status mml_align_probe_evaluate(mml_align_model *m, mml_model *probe, const mml_mm_data *d, mml_modality to,
                                    const mml_mm_perturb *p, mml_confusion *cm);
/* Both at once: accuracy on the test split's `to` (acc_to) and `from` (acc_from). */
mml_status mml_align_transfer(mml_align_model *m, const mml_mm_data *d, mml_modality from, mml_modality to,
                              uint64_t seed, double *acc_to, double *acc_from);

/* Saves the model with its config and classes (mml/model.h's format). */
mml_status mml_align_model_save(mml_align_model *m, const char *path, const char *config_json, const char *classes_json);

/* Rebuilds a model written by mml_align_model_save, with the data of its
 * config in d: its splits too when `splits`, else only the featurizer (close
 * with mml_mm_data_close). */
mml_status mml_align_model_load(const char *path, const mml_mm_data_options *opt, bool splits, mml_align_model **out,
                                mml_mm_data *d);
/* A hash of the weights, 16 hex digits: an index records the model it was
 * made with, so a search with another model is refused. */
void mml_align_model_fingerprint(const mml_align_model *m, char out[17]);

#endif
