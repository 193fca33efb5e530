#include <string.h>

#include "mml/alloc.h"
#include "mml/params.h"

typedef struct entry {
    mml_tensor *t;
    float *state[MML_PARAM_STATE_SLOTS];
    bool buffer, frozen;
} entry;

struct mml_params {
    entry *v;
    int n, cap;
};

mml_params *mml_params_create(void) { return mml_calloc(1, sizeof(mml_params)); }

void mml_params_free(mml_params *ps)
{
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) {
        mml_free((void *)ps->v[i].t->name);
        mml_tensor_free(ps->v[i].t);
        for (int s = 0; s < MML_PARAM_STATE_SLOTS; s++) mml_free(ps->v[i].state[s]);
    }
    mml_free(ps->v);
    mml_free(ps);
}

static mml_tensor *add(mml_params *ps, const char *name, int ndim, const int64_t *shape,
                       bool buffer)
{
    if (mml_params_find(ps, name)) {
        mml_error(MML_ERR_ARG, "parameter '%s' is defined twice", name);
        return NULL;
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 32;
        entry *v = mml_realloc(ps->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        ps->v = v;
        ps->cap = cap;
    }
    mml_tensor *t = mml_tensor_create(MML_F32, ndim, shape, !buffer);
    char *copy = mml_strdup(name);
    if (!t || !copy) {
        mml_tensor_free(t);
        mml_free(copy);
        mml_error_prefix("parameter '%s': ", name);
        return NULL;
    }
    t->name = copy;
    ps->v[ps->n++] = (entry){ .t = t, .buffer = buffer };
    return t;
}

mml_tensor *mml_params_add(mml_params *ps, const char *name, int ndim, const int64_t *shape)
{
    return add(ps, name, ndim, shape, false);
}

mml_tensor *mml_params_add_buffer(mml_params *ps, const char *name, int ndim,
                                  const int64_t *shape)
{
    return add(ps, name, ndim, shape, true);
}

int mml_params_count(const mml_params *ps) { return ps->n; }
mml_tensor *mml_params_at(const mml_params *ps, int i) { return ps->v[i].t; }
bool mml_params_is_buffer(const mml_params *ps, int i) { return ps->v[i].buffer; }
bool mml_params_frozen(const mml_params *ps, int i) { return ps->v[i].frozen; }

mml_tensor *mml_params_find(const mml_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->v[i].t->name, name)) return ps->v[i].t;
    return NULL;
}

int64_t mml_params_numel(const mml_params *ps)
{
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++)
        if (!ps->v[i].buffer) n += ps->v[i].t->numel;
    return n;
}

int mml_params_freeze(mml_params *ps, const char *prefix, bool frozen)
{
    int changed = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < ps->n; i++) {
        entry *e = &ps->v[i];
        if (e->buffer || strncmp(e->t->name, prefix, len) != 0) continue;
        e->frozen = frozen;
        e->t->requires_grad = !frozen;
        changed++;
    }
    return changed;
}

void mml_params_zero_grad(mml_params *ps)
{
    for (int i = 0; i < ps->n; i++)
        if (ps->v[i].t->grad) memset(ps->v[i].t->grad, 0, (size_t)ps->v[i].t->numel * sizeof(float));
}

float *mml_params_state(mml_params *ps, int i, int slot)
{
    entry *e = &ps->v[i];
    if (!e->state[slot]) e->state[slot] = mml_calloc((size_t)e->t->numel, sizeof(float));
    return e->state[slot];
}

float *mml_params_state_if_used(const mml_params *ps, int i, int slot) { return ps->v[i].state[slot]; }
