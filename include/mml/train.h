/* mml/train.h: supervised training and evaluation of a classifier on tensors.
 *
 * Deterministic: the same seed and thread count give bit-identical losses
 * (the shuffle, the validation split and dropout draw from seeded generators;
 * every kernel splits work by a fixed rule). */
#ifndef MML_TRAIN_H
#define MML_TRAIN_H

#include <stdio.h>

#include "mml/metrics.h"
#include "mml/model.h"
#include "mml/optim.h"

typedef struct mml_train_options {
    int epochs;
    int64_t batch_size;
    mml_optim_config optim;
    mml_lr_schedule schedule; /* base_lr from optim.lr; cosine total_steps 0 = whole run */
    float clip_norm;          /* 0: no clipping */
    float label_smoothing;
    int patience;             /* early stopping on validation loss; 0: off */
    double val_fraction;      /* held out of the training data; 0: no validation */
    uint64_t seed;
    FILE *log;                /* JSONL, one object per epoch; NULL: none */
    bool progress;            /* a bar (terminal) or log lines on stderr */
    const char *checkpoint;   /* written after every epoch (temp name, then renamed); NULL: none */
    const char *resume;       /* a checkpoint to continue from exactly; NULL: start afresh */
    float modality_dropout;   /* multimodal: drop each modality of a sample with this probability */
} mml_train_options;

mml_train_options mml_train_defaults(void);
/* Reads the "train" node of a config (docs/config.md); epochs/seed >= 0 override it. */
mml_status mml_train_options_read(const mml_cfg_node *root, int64_t epochs, int64_t seed, mml_train_options *o);

typedef struct mml_train_result {
    int epochs_run, best_epoch;
    double train_seconds, samples_per_second;
    double last_train_loss, best_val_loss, best_val_accuracy;
} mml_train_result;

/* x: F32 [N, input...], y: I32 [N] in [0, n_classes). */
mml_status mml_train_classifier(mml_model *m, const mml_tensor *x, const mml_tensor *y, int n_classes,
                                const mml_train_options *opt, mml_train_result *res);

/* Mean cross-entropy and the confusion matrix (initialised by the caller)
 * over rows[0..n) (all rows when rows is NULL); probabilities of each row
 * into probs [n, n_classes] when probs is not NULL. */
mml_status mml_evaluate_classifier(mml_model *m, const mml_tensor *x, const mml_tensor *y, const int64_t *rows,
                                   int64_t n, int64_t batch, double *loss, mml_confusion *cm, float *probs);

#endif
