/* mml/manifest.h: multimodal datasets as JSONL manifests.
 *
 * One sample per line, a JSON object with any subset of
 *   "id" (string), "image" (path), "audio" (path), "text" (string),
 *   "label" (int or class name), "split" (string),
 * plus any other string or integer fields (e.g. "speaker"), kept as named
 * attributes that tasks may use as targets. Paths are relative to the
 * manifest's directory. A missing or null modality field is a missing
 * modality: has[m] is false for that sample, never silently zero-filled.
 *
 *     mml_manifest *m;
 *     if (mml_manifest_load("data/train.jsonl", &m) != MML_OK) ... // "train.jsonl:12: ..."
 *     for (int64_t i = 0; i < m->n; i++) ... m->samples[i].path[MML_MOD_IMAGE] ...
 *     mml_manifest_free(m);
 */
#ifndef MML_MANIFEST_H
#define MML_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mml/error.h"

typedef enum mml_modality { MML_MOD_IMAGE = 0, MML_MOD_AUDIO, MML_MOD_TEXT, MML_MOD_COUNT } mml_modality;

const char *mml_modality_name(mml_modality m);   /* "image", "audio", "text" */
int mml_modality_from_name(const char *name);    /* -1 if unknown */

typedef struct mml_attr {
    const char *key;
    const char *value; /* integers are kept in their decimal spelling */
} mml_attr;

typedef struct mml_sample {
    const char *id;
    const char *split;                /* NULL when absent */
    const char *path[MML_MOD_COUNT];  /* resolved image/audio paths; text: NULL */
    const char *text;
    bool has[MML_MOD_COUNT];
    const char *label;                /* as written (int spelled in decimal, or a name) */
    int line;                         /* 1-based line in the manifest */
    mml_attr *attrs;                  /* other fields */
    int n_attrs;
} mml_sample;

typedef struct mml_manifest {
    char *path;
    char *dir;                        /* directory the paths are relative to */
    mml_sample *samples;
    int64_t n;
    void *pool_;                      /* internal string storage */
} mml_manifest;

mml_status mml_manifest_load(const char *path, mml_manifest **out);
/* Same from memory; `path` names it in errors and anchors relative paths. */
mml_status mml_manifest_parse(const char *text, size_t len, const char *path, mml_manifest **out);
void mml_manifest_free(mml_manifest *m);
/* A manifest of n samples, each with one modality: values[i] is a text, or
 * an image or audio path (relative to the current directory); ids are the
 * values themselves. For queries given on a command line. */
mml_status mml_manifest_of_values(mml_modality mo, const char *const *values, int n, mml_manifest **out);

/* Value of a field for a sample: "label", "id", "split", "text" or an attribute. */
const char *mml_sample_field(const mml_sample *s, const char *key);

/* Class list for a target field across samples: integer labels sort
 * numerically, names alphabetically. names receives heap strings (free with
 * mml_classes_free). Returns the count, or -1 with an error (a sample without
 * the field, or integer and name labels mixed). */
int mml_manifest_classes(const mml_manifest *m, const char *field, char ***names);
void mml_classes_free(char **names, int n);
/* Index of a sample's target in names, or -1 (with an error naming manifest and line). */
int mml_manifest_class_of(const mml_manifest *m, const mml_sample *s, const char *field,
                          char *const *names, int n_names);

#endif
