#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "mml/alloc.h"
#include "mml/manifest.h"

#define MAX_LINE ((size_t)1 << 24)

static const char *g_mod_names[MML_MOD_COUNT] = { "image", "audio", "text" };

const char *mml_modality_name(mml_modality m) { return m < MML_MOD_COUNT ? g_mod_names[m] : "?"; }

int mml_modality_from_name(const char *name)
{
    for (int i = 0; i < MML_MOD_COUNT; i++)
        if (!strcmp(name, g_mod_names[i])) return i;
    return -1;
}

/* All strings of a manifest live in one growable list of blocks. */
typedef struct strpool {
    char **blocks;
    int n, cap;
} strpool;

static const char *pool_add(strpool *p, const char *s)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 256;
        char **b = mml_realloc(p->blocks, (size_t)cap * sizeof *b);
        if (!b) return NULL;
        p->blocks = b;
        p->cap = cap;
    }
    char *d = mml_strdup(s);
    if (d) p->blocks[p->n++] = d;
    return d;
}

static void pool_free(strpool *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) mml_free(p->blocks[i]);
    mml_free(p->blocks);
    mml_free(p);
}

void mml_manifest_free(mml_manifest *m)
{
    if (!m) return;
    for (int64_t i = 0; i < m->n; i++) mml_free(m->samples[i].attrs);
    mml_free(m->samples);
    pool_free(m->pool_);
    mml_free(m->path);
    mml_free(m->dir);
    mml_free(m);
}

static const char *resolve(mml_manifest *m, const char *rel)
{
    if (rel[0] == '/') return pool_add(m->pool_, rel);
    size_t n = strlen(m->dir) + strlen(rel) + 2;
    char *full = mml_malloc(n);
    if (!full) return NULL;
    snprintf(full, n, "%s/%s", m->dir, rel);
    const char *r = pool_add(m->pool_, full);
    mml_free(full);
    return r;
}

static mml_status line_error(const mml_manifest *m, int line, const char *what, const char *key)
{
    return mml_error(MML_ERR_FORMAT, "%s:%d: %s%s%s%s", m->path, line, key ? "field \"" : "",
                     key ? key : "", key ? "\" " : "", what);
}

static const char *scalar_text(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(buf, cap, "%lld", (long long)v->valuedouble);
        return buf;
    }
    return NULL;
}

static mml_status parse_sample(mml_manifest *m, mml_sample *s, const cJSON *obj, int line)
{
    strpool *p = m->pool_;
    char num[32], idbuf[32];
    memset(s, 0, sizeof *s);
    s->line = line;
    for (const cJSON *f = obj->child; f; f = f->next) {
        const char *k = f->string;
        if (cJSON_IsNull(f)) continue; /* null: missing modality / absent field */
        int mod = mml_modality_from_name(k);
        if (mod >= 0) {
            if (!cJSON_IsString(f) || !f->valuestring[0])
                return line_error(m, line, "must be a non-empty string or null", k);
            s->has[mod] = true;
            if (mod == MML_MOD_TEXT) s->text = pool_add(p, f->valuestring);
            else s->path[mod] = resolve(m, f->valuestring);
            continue;
        }
        const char *v = scalar_text(f, num, sizeof num);
        if (!v) return line_error(m, line, "must be a string or an integer", k);
        if (!strcmp(k, "id")) s->id = pool_add(p, v);
        else if (!strcmp(k, "split")) s->split = pool_add(p, v);
        else if (!strcmp(k, "label")) s->label = pool_add(p, v);
        else {
            mml_attr *a = mml_realloc(s->attrs, (size_t)(s->n_attrs + 1) * sizeof *a);
            if (!a) return MML_ERR_NOMEM;
            s->attrs = a;
            a[s->n_attrs].key = pool_add(p, k);
            a[s->n_attrs].value = pool_add(p, v);
            s->n_attrs++;
        }
    }
    if (!s->id) {
        snprintf(idbuf, sizeof idbuf, "line%d", line);
        s->id = pool_add(p, idbuf);
    }
    return MML_OK;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return mml_strdup(".");
    size_t n = (size_t)(slash - path);
    char *d = mml_malloc(n + 2);
    if (!d) return NULL;
    memcpy(d, path, n ? n : 1);
    d[n ? n : 1] = '\0';
    return d;
}

static mml_status add_line(mml_manifest *m, int64_t *cap, const char *text, int line)
{
    cJSON *obj = cJSON_Parse(text);
    if (!obj || !cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return line_error(m, line, "is not a JSON object", NULL);
    }
    if (m->n == *cap) {
        int64_t c = *cap ? 2 * *cap : 1024;
        mml_sample *v = mml_realloc(m->samples, (size_t)c * sizeof *v);
        if (!v) {
            cJSON_Delete(obj);
            return MML_ERR_NOMEM;
        }
        m->samples = v;
        *cap = c;
    }
    mml_status rc = parse_sample(m, &m->samples[m->n], obj, line);
    cJSON_Delete(obj);
    if (rc == MML_OK) m->n++;
    else mml_free(m->samples[m->n].attrs);
    return rc;
}

mml_status mml_manifest_parse(const char *text, size_t len, const char *path, mml_manifest **out)
{
    *out = NULL;
    mml_manifest *m = mml_calloc(1, sizeof *m);
    char *line_buf = NULL;
    mml_status rc = MML_OK;
    if (!m || !(m->pool_ = mml_calloc(1, sizeof(strpool))) || !(m->path = mml_strdup(path)) ||
        !(m->dir = dir_of(path))) {
        rc = MML_ERR_NOMEM;
        goto done;
    }
    int64_t scap = 0;
    int line = 0;
    for (size_t pos = 0; pos < len && rc == MML_OK;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        line++;
        if (n > MAX_LINE) rc = line_error(m, line, "is longer than 16 MiB", NULL);
        else if (memchr(text + pos, '\0', n)) rc = line_error(m, line, "contains a NUL byte", NULL);
        else if (!(line_buf = mml_malloc(n + 1))) rc = MML_ERR_NOMEM;
        else {
            memcpy(line_buf, text + pos, n);
            line_buf[n] = '\0';
            const char *t = line_buf + strspn(line_buf, " \t\r");
            if (*t) rc = add_line(m, &scap, t, line);
            mml_free(line_buf);
            line_buf = NULL;
        }
        pos += n + 1;
    }
    if (rc == MML_OK && m->n == 0) rc = mml_error(MML_ERR_FORMAT, "%s: holds no samples", path);
done:
    if (rc != MML_OK) mml_manifest_free(m);
    else *out = m;
    return rc;
}

mml_status mml_manifest_load(const char *path, mml_manifest **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    mml_status rc = mml_file_read(path, (size_t)4 << 30, &buf, &len);
    if (rc != MML_OK) return rc;
    rc = mml_manifest_parse((const char *)buf, len, path, out);
    mml_free(buf);
    return rc;
}

const char *mml_sample_field(const mml_sample *s, const char *key)
{
    if (!strcmp(key, "label")) return s->label;
    if (!strcmp(key, "id")) return s->id;
    if (!strcmp(key, "split")) return s->split;
    if (!strcmp(key, "text")) return s->text;
    for (int i = 0; i < s->n_attrs; i++)
        if (!strcmp(s->attrs[i].key, key)) return s->attrs[i].value;
    return NULL;
}

static bool is_integer(const char *s)
{
    char *end;
    errno = 0;
    strtoll(s, &end, 10);
    return *s && !*end && !errno;
}

static int cmp_int(const void *a, const void *b)
{
    long long x = strtoll(*(char *const *)a, NULL, 10), y = strtoll(*(char *const *)b, NULL, 10);
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void mml_classes_free(char **names, int n)
{
    for (int i = 0; i < n; i++) mml_free(names[i]);
    mml_free(names);
}

int mml_manifest_classes(const mml_manifest *m, const char *field, char ***names)
{
    *names = NULL;
    char **v = NULL;
    int n = 0, cap = 0, ints = -1;
    for (int64_t i = 0; i < m->n; i++) {
        const char *val = mml_sample_field(&m->samples[i], field);
        if (!val) {
            line_error(m, m->samples[i].line, "is missing", field);
            goto fail;
        }
        int is_int = is_integer(val);
        if (ints >= 0 && ints != is_int) {
            line_error(m, m->samples[i].line, "mixes integer and name labels", field);
            goto fail;
        }
        ints = is_int;
        bool seen = false;
        for (int j = 0; j < n && !seen; j++) seen = !strcmp(v[j], val);
        if (seen) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = mml_realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) goto fail;
            v = nv;
        }
        if (!(v[n] = mml_strdup(val))) goto fail;
        n++;
    }
    qsort(v, (size_t)n, sizeof *v, ints == 1 ? cmp_int : cmp_str);
    *names = v;
    return n;
fail:
    mml_classes_free(v, n);
    return -1;
}

int mml_manifest_class_of(const mml_manifest *m, const mml_sample *s, const char *field,
                          char *const *names, int n_names)
{
    const char *val = mml_sample_field(s, field);
    for (int j = 0; val && j < n_names; j++)
        if (!strcmp(names[j], val)) return j;
    line_error(m, s->line, val ? "has a class not in the class list" : "is missing", field);
    return -1;
}

mml_status mml_manifest_of_values(mml_modality mo, const char *const *values, int n, mml_manifest **out)
{
    size_t cap = 16;
    for (int i = 0; i < n; i++) cap += 2 * (strlen(values[i]) * 6 + 16) + 32;
    char *text = mml_malloc(cap), *at = text;
    mml_status rc = text ? MML_OK : MML_ERR_NOMEM;
    for (int i = 0; rc == MML_OK && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", values[i]);
        cJSON_AddStringToObject(o, mml_modality_name(mo), values[i]);
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!line) rc = MML_ERR_NOMEM;
        else at += snprintf(at, cap - (size_t)(at - text), "%s\n", line);
        free(line);
    }
    if (rc == MML_OK) rc = mml_manifest_parse(text, (size_t)(at - text), "./command line", out);
    mml_free(text);
    return rc;
}
