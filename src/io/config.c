#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/config.h"

#define MAX_CONFIG ((size_t)64 << 20)

struct mml_config {
    cJSON *root;
    char *name;
};

static void key_path(char *buf, size_t cap, const mml_cfg_node *n, const char *key)
{
    if (!key) snprintf(buf, cap, "%s", n->path[0] ? n->path : "(top level)");
    else if (n->path[0]) snprintf(buf, cap, "%s.%s", n->path, key);
    else snprintf(buf, cap, "%s", key);
}

mml_status mml_cfg_error(const mml_cfg_node *n, const char *key, const char *fmt, ...)
{
    char msg[512], path[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    key_path(path, sizeof path, n, key);
    return mml_error(MML_ERR_ARG, "%s: %s: %s", n->file, path, msg);
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else (*col)++;
    }
}

mml_status mml_config_parse(const char *text, const char *name, mml_config **out)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        int line, col;
        line_col(text, at ? at : text, &line, &col);
        return mml_error(MML_ERR_FORMAT, "%s:%d:%d: invalid JSON", name, line, col);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mml_error(MML_ERR_FORMAT, "%s: the configuration must be a JSON object", name);
    }
    mml_config *cfg = mml_calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->name = mml_strdup(name))) {
        cJSON_Delete(root);
        mml_free(cfg);
        return MML_ERR_NOMEM;
    }
    cfg->root = root;
    *out = cfg;
    return MML_OK;
}

mml_status mml_config_load(const char *path, mml_config **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    mml_status rc = mml_file_read(path, MAX_CONFIG, &buf, &len);
    if (rc != MML_OK) return rc;
    if (memchr(buf, '\0', len)) rc = mml_error(MML_ERR_FORMAT, "%s: contains a NUL byte", path);
    else rc = mml_config_parse((const char *)buf, path, out);
    mml_free(buf);
    return rc;
}

void mml_config_free(mml_config *cfg)
{
    if (!cfg) return;
    cJSON_Delete(cfg->root);
    mml_free(cfg->name);
    mml_free(cfg);
}

mml_cfg_node mml_config_root(const mml_config *cfg)
{
    mml_cfg_node n = { .json = cfg->root, .file = cfg->name };
    return n;
}

char *mml_config_dump(const mml_config *cfg)
{
    char *s = cJSON_PrintUnformatted(cfg->root);
    char *copy = s ? mml_strdup(s) : NULL;
    cJSON_free(s);
    return copy;
}

bool mml_cfg_present(const mml_cfg_node *n) { return n->json != NULL; }

static const cJSON *get(const mml_cfg_node *n, const char *key)
{
    if (!n->json || !cJSON_IsObject(n->json)) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(n->json, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static bool is_integer(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15;
}

mml_status mml_cfg_int(const mml_cfg_node *n, const char *key, int64_t def, int64_t *out)
{
    const cJSON *v = get(n, key);
    if (!v) {
        *out = def;
        return MML_OK;
    }
    if (!is_integer(v)) return mml_cfg_error(n, key, "expected an integer");
    *out = (int64_t)v->valuedouble;
    return MML_OK;
}

mml_status mml_cfg_int_req(const mml_cfg_node *n, const char *key, int64_t *out)
{
    if (!get(n, key)) return mml_cfg_error(n, key, "is required");
    return mml_cfg_int(n, key, 0, out);
}

mml_status mml_cfg_float(const mml_cfg_node *n, const char *key, double def, double *out)
{
    const cJSON *v = get(n, key);
    if (!v) {
        *out = def;
        return MML_OK;
    }
    if (!cJSON_IsNumber(v)) return mml_cfg_error(n, key, "expected a number");
    *out = v->valuedouble;
    return MML_OK;
}

mml_status mml_cfg_bool(const mml_cfg_node *n, const char *key, bool def, bool *out)
{
    const cJSON *v = get(n, key);
    if (!v) {
        *out = def;
        return MML_OK;
    }
    if (!cJSON_IsBool(v)) return mml_cfg_error(n, key, "expected true or false");
    *out = cJSON_IsTrue(v);
    return MML_OK;
}

mml_status mml_cfg_string(const mml_cfg_node *n, const char *key, const char *def, const char **out)
{
    const cJSON *v = get(n, key);
    if (!v) {
        *out = def;
        return MML_OK;
    }
    if (!cJSON_IsString(v)) return mml_cfg_error(n, key, "expected a string");
    *out = v->valuestring;
    return MML_OK;
}

mml_status mml_cfg_string_req(const mml_cfg_node *n, const char *key, const char **out)
{
    if (!get(n, key)) return mml_cfg_error(n, key, "is required");
    return mml_cfg_string(n, key, NULL, out);
}

mml_status mml_cfg_choice(const mml_cfg_node *n, const char *key, const char *const *choices,
                          int def, int *out)
{
    const char *s = NULL;
    mml_status rc = mml_cfg_string(n, key, NULL, &s);
    if (rc != MML_OK) return rc;
    if (!s) {
        if (def < 0) return mml_cfg_error(n, key, "is required");
        *out = def;
        return MML_OK;
    }
    for (int i = 0; choices[i]; i++)
        if (!strcmp(s, choices[i])) {
            *out = i;
            return MML_OK;
        }
    char list[400];
    size_t k = 0;
    list[0] = '\0';
    for (int i = 0; choices[i] && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", choices[i]);
    return mml_cfg_error(n, key, "unknown value '%s' (expected one of: %s)", s, list);
}

mml_status mml_cfg_check_range(const mml_cfg_node *n, const char *key, double v, double lo, double hi)
{
    if (v >= lo && v <= hi) return MML_OK;
    return mml_cfg_error(n, key, "must be in [%g, %g], got %g", lo, hi, v);
}

static mml_status child(const mml_cfg_node *n, const char *key, bool required, bool array,
                        mml_cfg_node *out)
{
    memset(out, 0, sizeof *out);
    out->file = n->file;
    key_path(out->path, sizeof out->path, n, key);
    const cJSON *v = get(n, key);
    if (!v) return required ? mml_cfg_error(n, key, "is required") : MML_OK;
    if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v))
        return mml_cfg_error(n, key, array ? "expected an array" : "expected an object");
    out->json = v;
    return MML_OK;
}

mml_status mml_cfg_object(const mml_cfg_node *n, const char *key, bool required, mml_cfg_node *out)
{
    return child(n, key, required, false, out);
}

mml_status mml_cfg_array(const mml_cfg_node *n, const char *key, bool required, mml_cfg_node *out)
{
    return child(n, key, required, true, out);
}

int mml_cfg_len(const mml_cfg_node *a) { return a->json ? cJSON_GetArraySize(a->json) : 0; }

mml_cfg_node mml_cfg_at(const mml_cfg_node *a, int i)
{
    mml_cfg_node out = { .file = a->file };
    int w = snprintf(out.path, sizeof out.path, "%.180s[%d]", a->path, i);
    (void)w;
    out.json = a->json ? cJSON_GetArrayItem(a->json, i) : NULL;
    return out;
}

static int numbers(const mml_cfg_node *n, const char *key, double *f, int64_t *iv, int cap)
{
    mml_cfg_node a;
    if (mml_cfg_array(n, key, false, &a) != MML_OK) return -1;
    int len = mml_cfg_len(&a);
    if (len > cap) {
        mml_cfg_error(n, key, "has %d items (at most %d)", len, cap);
        return -1;
    }
    for (int i = 0; i < len; i++) {
        const cJSON *v = cJSON_GetArrayItem(a.json, i);
        if (iv ? !is_integer(v) : !cJSON_IsNumber(v)) {
            mml_cfg_error(n, key, "item %d: expected %s", i, iv ? "an integer" : "a number");
            return -1;
        }
        if (iv) iv[i] = (int64_t)v->valuedouble;
        else f[i] = v->valuedouble;
    }
    return len;
}

int mml_cfg_floats(const mml_cfg_node *n, const char *key, double *out, int cap)
{
    return numbers(n, key, out, NULL, cap);
}

int mml_cfg_ints(const mml_cfg_node *n, const char *key, int64_t *out, int cap)
{
    return numbers(n, key, NULL, out, cap);
}

mml_status mml_cfg_check_keys(const mml_cfg_node *n, const char *const *allowed)
{
    if (!n->json) return MML_OK;
    for (const cJSON *c = n->json->child; c; c = c->next) {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(c->string, allowed[i]);
        if (ok) continue;
        char list[400];
        size_t k = 0;
        list[0] = '\0';
        for (int i = 0; allowed[i] && k < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", allowed[i]);
        return mml_cfg_error(n, c->string, "unknown key (allowed: %s)", list);
    }
    return MML_OK;
}
