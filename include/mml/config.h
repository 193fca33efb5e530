/* mml/config.h: reading JSON configuration with errors that name the file and
 * the key path ("study.json: variants[2].fusion.type: unknown value 'tfm'").
 *
 *     mml_config *cfg;
 *     if (mml_config_load("examples/fashion_cnn.json", &cfg) != MML_OK) ...
 *     mml_cfg_node root = mml_config_root(cfg), model;
 *     int64_t epochs;
 *     if (mml_cfg_int(&root, "epochs", 10, &epochs) != MML_OK) ...   // optional, default 10
 *     if (mml_cfg_object(&root, "model", true, &model) != MML_OK) ...
 *     static const char *const keys[] = { "epochs", "model", "data", NULL };
 *     if (mml_cfg_check_keys(&root, keys) != MML_OK) ...  // unknown keys are errors
 *
 * Nodes are views into the config; they live as long as it does. */
#ifndef MML_CONFIG_H
#define MML_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "mml/error.h"

struct cJSON;
typedef struct mml_config mml_config;

typedef struct mml_cfg_node {
    const struct cJSON *json; /* NULL: absent */
    const char *file;
    char path[200];
} mml_cfg_node;

mml_status mml_config_load(const char *path, mml_config **out);
/* From text; `name` is used in messages. Syntax errors give line and column. */
mml_status mml_config_parse(const char *text, const char *name, mml_config **out);
void mml_config_free(mml_config *cfg);
mml_cfg_node mml_config_root(const mml_config *cfg);
/* The whole config as compact JSON (heap; mml_free) for model metadata. */
char *mml_config_dump(const mml_config *cfg);

/* Scalars: absent keys take `def` (use the *_req variants when required).
 * Wrong types are errors naming the key path. */
mml_status mml_cfg_int(const mml_cfg_node *n, const char *key, int64_t def, int64_t *out);
mml_status mml_cfg_int_req(const mml_cfg_node *n, const char *key, int64_t *out);
mml_status mml_cfg_float(const mml_cfg_node *n, const char *key, double def, double *out);
mml_status mml_cfg_bool(const mml_cfg_node *n, const char *key, bool def, bool *out);
mml_status mml_cfg_string(const mml_cfg_node *n, const char *key, const char *def, const char **out);
mml_status mml_cfg_string_req(const mml_cfg_node *n, const char *key, const char **out);
/* One of a set of values: index into `choices` (NULL-terminated). */
mml_status mml_cfg_choice(const mml_cfg_node *n, const char *key, const char *const *choices,
                          int def, int *out);
/* Range checks after reading: error "path.key: must be in [lo, hi], got v". */
mml_status mml_cfg_check_range(const mml_cfg_node *n, const char *key, double v, double lo, double hi);

/* Children. An absent optional child gives a node with json == NULL. */
mml_status mml_cfg_object(const mml_cfg_node *n, const char *key, bool required, mml_cfg_node *out);
mml_status mml_cfg_array(const mml_cfg_node *n, const char *key, bool required, mml_cfg_node *out);
int mml_cfg_len(const mml_cfg_node *array);          /* 0 when absent */
mml_cfg_node mml_cfg_at(const mml_cfg_node *array, int i);
bool mml_cfg_present(const mml_cfg_node *n);
/* Integer or float array items into out[cap]; returns count or -1 (error). */
int mml_cfg_floats(const mml_cfg_node *n, const char *key, double *out, int cap);
int mml_cfg_ints(const mml_cfg_node *n, const char *key, int64_t *out, int cap);

/* Every key of object n must be in allowed (NULL-terminated). */
mml_status mml_cfg_check_keys(const mml_cfg_node *n, const char *const *allowed);
/* Error helper: "file: path.key: message". */
mml_status mml_cfg_error(const mml_cfg_node *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
