/* Internal: the state of a training run, as checkpoints hold it. */
#ifndef MML_TASKS_CHECKPOINT_H
#define MML_TASKS_CHECKPOINT_H

#include "mml/params.h"
#include "mml/rng.h"

typedef struct mml_train_state {
    mml_params *params;
    mml_rng *shuffle_rng, *model_rng;
    int epoch;            /* epochs completed */
    int64_t step;         /* optimizer steps taken */
    double best_val;
    int since_best, best_epoch;
    float *best;          /* best weights (all parameters and buffers), or NULL */
    int64_t best_numel;
} mml_train_state;

mml_status mml_checkpoint_save(const char *path, const mml_train_state *s);
/* Restores into s (params must already have the model's layout). */
mml_status mml_checkpoint_load(const char *path, mml_train_state *s);

#endif
