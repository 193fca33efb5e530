/* mml/autoencoder.h: a multimodal autoencoder with a shared latent
 * ("task": "autoencoder"), and its use to impute missing modalities.
 *
 *   "model": {"encoders": {"image": {...}, "audio": {...}}, "latent": 64,
 *             "decoder": {"hidden": [256]}}
 *
 * Each modality's encoder (mml/encoder.h) and a linear map give a latent;
 * the shared latent is the mean over the modalities a sample offers (so any
 * subset of them gives one); an MLP decoder per modality reconstructs its
 * features from it. Training feeds each sample a random non-empty subset of
 * its modalities and asks for all of them back (mean squared error over the
 * features, as the featurizer extracts them), so that a modality can be
 * inferred from the others: the multimodal model's
 * "model.impute": "AE.safetensors" fills a missing modality's features with
 * its reconstruction before the encoders see them (docs/crossmodal.md).
 * Float features (images, log-mel audio, padded to their full length) are
 * reconstructed; token ids (text) are an input only. */
#ifndef MML_AUTOENCODER_H
#define MML_AUTOENCODER_H

#include "mml/multimodal.h"

typedef struct mml_ae_model mml_ae_model;

mml_status mml_ae_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed, mml_ae_model **out);
void mml_ae_model_free(mml_ae_model *m);
mml_params *mml_ae_model_params(mml_ae_model *m);
int mml_ae_model_modalities(const mml_ae_model *m, mml_modality *mods); /* returns how many */

typedef struct mml_ae_history {
    int epochs;
    double train_loss[256], val_loss[256]; /* val: from every modality a sample has */
    double train_seconds;
} mml_ae_history;

/* Uses epochs, batch_size, optim, schedule, clip_norm, seed, progress and log. */
mml_status mml_ae_train(mml_ae_model *m, const mml_mm_data *d, const mml_train_options *o, mml_ae_history *h);

/* Reconstruction error on a split: mse[in][out] is the mean squared error of
 * modality `out`'s features reconstructed from modality `in` alone (in <
 * MML_MOD_COUNT) or from all the sample has (in == MML_MOD_COUNT); NAN where
 * the model lacks a modality. baseline[out]: the error of predicting the
 * training mean, for scale. */
typedef struct mml_ae_eval {
    double mse[MML_MOD_COUNT + 1][MML_MOD_COUNT];
    double baseline[MML_MOD_COUNT];
} mml_ae_eval;

mml_status mml_ae_evaluate(mml_ae_model *m, const mml_mm_data *d, mml_data_split split, mml_ae_eval *out);

/* In a batch (features as d's featurizer makes them), replaces each missing
 * modality of a sample (present 0) that the model knows with its
 * reconstruction from the modalities the sample has, and marks it present.
 * Samples with none of the model's modalities are left alone. */
mml_status mml_ae_impute(mml_ae_model *m, mml_ctx *ctx, const mml_batch *b);

/* Cross-modal generation from the shared latent: modality `target` of each
 * sample of a batch, decoded from modality `from` alone, into out
 * (b->size * the target's feature count, as the featurizer lays them out). */
mml_status mml_ae_generate(mml_ae_model *m, mml_ctx *ctx, const mml_batch *b, mml_modality from, mml_modality target,
                           float *out);

mml_status mml_ae_model_save(mml_ae_model *m, const char *path, const char *config_json, const char *classes_json);
/* Loads a model written by mml_ae_model_save for data with the features of
 * d (each of its modalities must have the same shape there), or an error
 * saying which differs. */
mml_status mml_ae_model_load(const char *path, const mml_mm_data *d, mml_ae_model **out);

/* The same with its own config's featurizer in d (mml_mm_data_close). */
mml_status mml_ae_model_open(const char *path, mml_ae_model **out, mml_mm_data *d);

#endif
