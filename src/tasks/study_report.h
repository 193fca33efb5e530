/* Internal to mml compare: the study's results and their write-up. */
#ifndef MML_TASKS_STUDY_REPORT_H
#define MML_TASKS_STUDY_REPORT_H

#include "mml/config.h"
#include "mml/manifest.h"
#include "mml/multimodal.h"

#define MML_STUDY_MAX_VARIANTS 32
#define MML_STUDY_MAX_SEEDS 10
#define MML_STUDY_MAX_LEVELS 16
#define MML_STUDY_MAX_EPOCHS 256

typedef struct run_result {
    double accuracy, macro_f1, loss, train_seconds, infer_ms, train_mb;
    int epochs;
    double val_curve[MML_STUDY_MAX_EPOCHS], loss_curve[MML_STUDY_MAX_EPOCHS];
    double noise_acc[MML_MOD_COUNT][MML_STUDY_MAX_LEVELS];
    double missing_acc[MML_MOD_COUNT][MML_STUDY_MAX_LEVELS];
    double weights[MML_MOD_COUNT];
    bool has_weights;
    double task_accuracy[MML_MM_MAX_TASKS];
    int64_t *cm; /* [n_classes^2] */
} run_result;

typedef struct stat2 {
    double mean, std;
} stat2;

typedef struct variant {
    char name[64], fusion[32];
    mml_config *cfg; /* base merged with the patch */
    bool mods[MML_MOD_COUNT];
    /* a cross-modal variant ("task": "retrieval"): a classifier on `from`
     * embeddings tested on `to` ones; -1 for the classification variants */
    int from, to;
    char **prompts; /* "transfer.prompts": zero-shot classes from text (from is text), else NULL */
    int n_prompts;
    int64_t params;
    run_result runs[MML_STUDY_MAX_SEEDS];
    /* over seeds */
    stat2 accuracy, macro_f1, train_seconds, infer_ms, train_mb, task_accuracy[MML_MM_MAX_TASKS];
    double val_curve[MML_STUDY_MAX_EPOCHS];
    int epochs;
    double noise_acc[MML_MOD_COUNT][MML_STUDY_MAX_LEVELS], missing_acc[MML_MOD_COUNT][MML_STUDY_MAX_LEVELS];
    double relative_robustness[MML_MOD_COUNT], effective_robustness[MML_MOD_COUNT];
    double weights[MML_MOD_COUNT];
    bool has_weights;
} variant;

typedef struct study {
    mml_config *cfg, *base_cfg; /* base_cfg: a base given as a file name */
    char name[128];
    int seeds, n_variants, reference;
    variant variants[MML_STUDY_MAX_VARIANTS];
    bool mods[MML_MOD_COUNT]; /* used by any variant */
    bool noisy[MML_MOD_COUNT]; /* float features, so Gaussian noise applies (not token ids) */
    double noise[MML_STUDY_MAX_LEVELS], missing[MML_STUDY_MAX_LEVELS];
    int n_noise, n_missing;
    const char *task_names[MML_MM_MAX_TASKS]; /* extra tasks of any variant (model.tasks); not owned */
    int n_tasks;
    char **classes; /* not owned */
    int n_classes;
    int64_t n_train, n_test, n_skipped;
} study;

void study_summarise(study *s);
/* results.json, results.md and report.html into dir. */
mml_status study_write(const study *s, const char *dir);

#endif
