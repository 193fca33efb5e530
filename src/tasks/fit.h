/* Internal to the tasks: the training loop they share. Each epoch shuffles
 * the training rows (the same permutation for the same seed), runs the
 * task's loss over batches with the optimizer and schedule of the options,
 * then asks the task for its validation figure; a bar or log lines show
 * progress, and a JSONL line per epoch goes to the options' log. */
#ifndef MML_TASKS_FIT_H
#define MML_TASKS_FIT_H

#include "mml/dataset.h"
#include "mml/train.h"

typedef struct fit_task {
    mml_params *ps;
    const mml_dataset *ds;
    const int64_t *rows;  /* the training rows (NULL: all of ds) */
    int64_t n;            /* how many */
    bool full_batches;    /* leave out the last partial batch (in-batch negatives need a full one) */
    /* The batch's loss; rows are the dataset rows of the batch. */
    mml_tensor *(*loss)(mml_ctx *ctx, void *user, const mml_batch *b, const int64_t *rows);
    void (*after_step)(void *user); /* NULL, or a projection after each update */
    double (*validate)(void *user); /* NULL, or the epoch's validation figure */
    const char *val_name;           /* its name in the log and on the bar ("val_accuracy") */
    void *user;
} fit_task;

typedef struct fit_result {
    int epochs;
    double seconds, samples_per_second;
    double train_bytes; /* weights, gradients, optimizer slots and the step arena's peak */
} fit_result;

/* Uses epochs, batch_size, optim, schedule, clip_norm, seed, progress and
 * log. train_loss and val get one value per epoch (cap at most). */
mml_status fit_run(const fit_task *t, const mml_train_options *o, double *train_loss, double *val, int cap,
                   fit_result *res);

#endif
