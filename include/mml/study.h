/* mml/study.h: `mml compare`, the unimodal vs multimodal study. A study file
 * names a base multimodal config and variants as JSON merge patches (RFC 7386)
 * on it; every variant is trained and evaluated over several seeds on the same
 * data (features extracted once), tested under noise and missing modalities,
 * and written up as DIR/results.json, DIR/results.md and DIR/report.html
 * (SVG charts). docs/study.md describes the file and the measures.
 *
 *   {"name": "avdigits", "base": {...multimodal config...}, "seeds": 3,
 *    "robustness": {"noise": [0, 0.1, ...], "missing": [0, 0.5, 1], "reference": "late fusion"},
 *    "variants": [{"name": "image only", "patch": {"model": {"encoders": {"audio": null}, "fusion": null}}}, ...]}
 */
#ifndef MML_STUDY_H
#define MML_STUDY_H

#include <stdbool.h>
#include <stdint.h>

#include "mml/dataset.h"

typedef struct mml_study_options {
    const char *out_dir;
    int seeds;               /* 0: the study's "seeds" */
    int64_t epochs;          /* < 0: each variant's own */
    bool force;              /* replace an existing out_dir */
    bool progress;
    mml_on_error on_error;
    const char *datasets_dir; /* NULL: MML_DATASETS or ../shared/datasets */
    const char *only;         /* comma-separated variant names to run (NULL: all), e.g. to redo one row */
} mml_study_options;

/* Runs the study; the results appear in out_dir only when complete (written
 * to out_dir.tmp, then renamed). */
mml_status mml_study_run(const char *study_path, const mml_study_options *opt);

#endif
