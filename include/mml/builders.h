/* mml/builders.h: dataset builders (`mml data NAME --out DIR`). Each writes
 * its files, train.jsonl / val.jsonl / test.jsonl manifests and a README with
 * provenance into DIR.tmp and renames it to DIR when complete; the same seed
 * gives the same bytes. */
#ifndef MML_BUILDERS_H
#define MML_BUILDERS_H

#include <stdbool.h>
#include <stdint.h>

#include "mml/error.h"

typedef struct mml_avdigits_options {
    const char *out_dir;
    const char *datasets_dir;       /* holds mnist-t10k/ and fsdd/recordings/ */
    uint64_t seed;
    double image_energy_removed;    /* 0: none; 0.75 as AV-MNIST (PCA) */
    double audio_snr_db;            /* white noise at this SNR; NAN: none */
    const char *holdout_speaker;    /* all of this speaker for test, none in train/val; NULL: FSDD's split */
    bool progress;
} mml_avdigits_options;

/* AV-MNIST-style pairs: MNIST test-set digits (7,000 train, 1,000 val, 2,000
 * test by seed) with a Free Spoken Digit recording of the same digit (FSDD's
 * official split: recordings 0-4 test, 5-49 train) and the digit's word. */
mml_status mml_build_avdigits(const mml_avdigits_options *opt);

typedef struct mml_fashion_speech_options {
    const char *out_dir;
    const char *fashion_dir;        /* /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist) */
    uint64_t seed;
    int64_t n_train, n_val, n_test; /* 6,000 / 1,000 / 2,000 by default */
    bool few_voices;                /* 2 training and 1 test voice per class (quick builds for tests) */
    bool progress;
} mml_fashion_speech_options;

/* Fashion-MNIST images with the class name spoken by espeak-ng (16 kHz WAV;
 * the test split's voices are not heard in training) and a templated text
 * description. Splits are balanced by class; labels are "<id>-<name>"
 * ("0-t-shirt" ... "9-ankle-boot") so that sorted names follow Fashion-MNIST's
 * ids; "voice" and "source" (IDX file:row) fields record provenance. Needs the
 * espeak-ng program (checked first); runs syntheses on the thread pool, so
 * call it from one thread at a time (threads.h). */
mml_status mml_build_fashion_speech(const mml_fashion_speech_options *opt);

#endif
