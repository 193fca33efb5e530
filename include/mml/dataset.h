/* mml/dataset.h: a manifest turned into model-ready features, and batches.
 *
 * A featurizer says what each modality becomes (a fixed per-sample shape, or a
 * sequence padded to a maximum length) and extracts it from one sample. The
 * dataset runs it over every sample once, on the thread pool, and keeps the
 * features in memory (sequences without their zero padding), optionally cached in a file keyed by the content of the
 * manifest and every file it names plus the featurizer's parameters, so an
 * epoch never decodes a file again. Batches gather rows into step tensors.
 *
 *     mml_dataset *ds;
 *     mml_dataset_options opt = mml_dataset_options_default();
 *     opt.cache_dir = "cache";
 *     if (mml_dataset_build(manifest, &featurizer, &opt, &ds) != MML_OK) ...
 *     mml_batch b;
 *     mml_dataset_batch(ctx, ds, rows, 64, &b);   // b.x[MML_MOD_AUDIO]: [64, 40, 64]
 *
 * Missing modalities stay visible: present[m] is 0 for a sample whose manifest
 * line lacks the modality (its features are zeros), so fusion models can mask
 * them rather than mistake zeros for data.
 *
 * Thread safety: `extract` is called from several threads at once. */
#ifndef MML_DATASET_H
#define MML_DATASET_H

#include "mml/autograd.h"
#include "mml/manifest.h"
#include "mml/rng.h"

#define MML_FEATURE_MAX_DIMS 4

typedef struct mml_feature_spec {
    bool enabled;
    mml_dtype dtype;                      /* MML_F32 features or MML_I32 token ids */
    int ndim;                             /* per-sample dims */
    int64_t shape[MML_FEATURE_MAX_DIMS];  /* per-sample shape (seq axis: its maximum) */
    int seq_axis;                         /* -1: fixed size; else the axis that varies */
    /* F32 features that are 8-bit values v as v / 255.0f (images without
     * normalisation): the dataset keeps the bytes, a quarter of the memory,
     * and batches get those very floats back. */
    bool stored_u8;
} mml_feature_spec;

typedef struct mml_featurizer {
    mml_feature_spec spec[MML_MOD_COUNT];
    /* Writes modality m of sample s into out (the spec's shape and dtype, or
     * one byte per value when stored_u8; zero-filled beforehand) and its
     * length along the sequence axis into *length.
     * Returns MML_OK or an error naming the file. */
    mml_status (*extract)(void *user, const mml_sample *s, mml_modality m, void *out,
                          int64_t *length);
    void *user;
    /* The parameters that change the features, for the cache key
     * ("logmel n_fft=256 hop=80 n_mels=40 ..."). */
    const char *params;
} mml_featurizer;

typedef enum mml_on_error { MML_ON_ERROR_FAIL = 0, MML_ON_ERROR_SKIP } mml_on_error;

typedef struct mml_dataset_options {
    const char *label_field;   /* "label" by default; NULL: no labels */
    char *const *classes;      /* class list (e.g. the training set's); NULL: from the manifest */
    int n_classes;
    mml_on_error on_error;
    const char *cache_dir;     /* NULL: no cache file */
    bool progress;             /* log lines / a bar on stderr while extracting */
} mml_dataset_options;

mml_dataset_options mml_dataset_options_default(void);

typedef struct mml_dataset {
    int64_t n;                               /* samples kept */
    mml_feature_spec spec[MML_MOD_COUNT];
    int64_t row_numel[MML_MOD_COUNT];        /* elements per sample */
    /* Rows in the spec's dtype (bytes if stored_u8); read them with
     * mml_dataset_row. Sequences are compact: offset[m][r] is where row r
     * starts (n + 1 entries), its steps past the stored ones are zeros.
     * offset[m] NULL: every row has row_numel elements. */
    void *feat[MML_MOD_COUNT];
    int64_t *offset[MML_MOD_COUNT];
    int32_t *length[MML_MOD_COUNT];          /* sequence lengths (seq_axis >= 0) */
    uint8_t *present[MML_MOD_COUNT];
    int32_t *label;                          /* class index, or NULL without labels */
    char **classes;
    int n_classes;
    int64_t *source_row;                     /* manifest row of each kept sample */
    const mml_manifest *manifest;            /* not owned */
    int64_t n_skipped;                       /* with MML_ON_ERROR_SKIP */
    char **skipped;                          /* "id: reason" for each skipped sample */
    bool from_cache;
} mml_dataset;

mml_status mml_dataset_build(const mml_manifest *m, const mml_featurizer *f,
                             const mml_dataset_options *opt, mml_dataset **out);
void mml_dataset_free(mml_dataset *ds);

/* Rows of a subset (e.g. split == "train"); returns how many were written. */
int64_t mml_dataset_rows_where(const mml_dataset *ds, const char *field, const char *value,
                               int64_t *rows);

typedef struct mml_batch {
    int64_t size;
    mml_tensor *x[MML_MOD_COUNT];        /* [B, spec shape...] or NULL when disabled */
    mml_tensor *present[MML_MOD_COUNT];  /* F32 [B]: 1 present, 0 missing */
    mml_tensor *length[MML_MOD_COUNT];   /* I32 [B] for sequences, else NULL */
    mml_tensor *label;                   /* I32 [B] or NULL */
} mml_batch;

/* Gathers rows[0..B) into step tensors of ctx. */
mml_status mml_dataset_batch(mml_ctx *ctx, const mml_dataset *ds, const int64_t *rows, int64_t B,
                             mml_batch *out);

/* Writes row r of modality m, full width in the spec's dtype, to dst. */
void mml_dataset_row(const mml_dataset *ds, mml_modality m, int64_t r, void *dst);

/* Row r of modality m's F32 features: the stored row, or for features stored
 * as bytes or compact, scratch (row_numel[m] floats) filled with them. */
const float *mml_dataset_row_f32(const mml_dataset *ds, mml_modality m, int64_t r, float *scratch);

/* Fills order with rows (identity, or shuffled by rng). */
void mml_dataset_order(int64_t *rows, int64_t n, mml_rng *rng);

#endif
