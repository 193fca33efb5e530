/* BPE training on CLIP's byte symbols. Pair counts are kept incrementally:
 * each pair knows the words it occurs in, a merge rewrites only those words
 * and adjusts the counts of the pairs around each occurrence, and a max-heap
 * with lazy re-validation finds the next most frequent pair. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml/alloc.h"
#include "mml/text.h"
#include "modal/text_internal.h"

typedef struct pair {
    int32_t left, right;
    int64_t count;
    int32_t *words, n_words, cap_words; /* may hold words that no longer contain the pair */
    int32_t touched;                    /* merge step that last raised its count */
} pair;

typedef struct heap_entry {
    int64_t count;
    int32_t pair;
} heap_entry;

typedef struct trainer {
    strtab syms;           /* symbol string -> id; equal strings share an id */
    strtab words;          /* pre-token bytes -> count */
    int32_t **seq, *len;   /* word -> its symbols */
    int32_t *word_stamp;   /* word -> merge step that last rewrote it */
    pair *pairs;
    int32_t n_pairs, cap_pairs;
    int32_t *slots; /* pair hash: index + 1 */
    size_t nslots;
    heap_entry *heap;
    int32_t n_heap, cap_heap;
    int32_t *changed, n_changed; /* pairs raised in this step */
    int32_t step;
} trainer;

static uint64_t pair_hash(int32_t a, int32_t b)
{
    uint64_t h = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
}

static size_t pair_slot(const trainer *t, int32_t a, int32_t b)
{
    size_t i = pair_hash(a, b) & (t->nslots - 1);
    for (int32_t s; (s = t->slots[i]) != 0; i = (i + 1) & (t->nslots - 1))
        if (t->pairs[s - 1].left == a && t->pairs[s - 1].right == b) break;
    return i;
}

static mml_status grow_pairs(trainer *t)
{
    int32_t cap = t->cap_pairs ? 2 * t->cap_pairs : 1024;
    pair *p = mml_realloc(t->pairs, (size_t)cap * sizeof *p);
    if (p) t->pairs = p;
    int32_t *slots = p ? mml_calloc(4 * (size_t)cap, sizeof *slots) : NULL;
    int32_t *changed = slots ? mml_realloc(t->changed, (size_t)cap * sizeof *changed) : NULL;
    if (!changed) {
        mml_free(slots);
        return mml_error(MML_ERR_NOMEM, "BPE training: out of memory at %d pairs", (int)cap);
    }
    t->changed = changed;
    mml_free(t->slots);
    t->slots = slots;
    t->nslots = 4 * (size_t)cap;
    t->cap_pairs = cap;
    for (int32_t i = 0; i < t->n_pairs; i++) t->slots[pair_slot(t, t->pairs[i].left, t->pairs[i].right)] = i + 1;
    return MML_OK;
}

/* Adds cnt occurrences of (a, b) in word w (cnt < 0 removes them). */
static mml_status pair_add(trainer *t, int32_t a, int32_t b, int64_t cnt, int32_t w)
{
    if (t->n_pairs == t->cap_pairs && grow_pairs(t) != MML_OK) return mml_last_status();
    size_t slot = pair_slot(t, a, b);
    if (!t->slots[slot]) {
        t->pairs[t->n_pairs] = (pair){ .left = a, .right = b, .touched = -2 };
        t->slots[slot] = ++t->n_pairs;
    }
    pair *p = &t->pairs[t->slots[slot] - 1];
    p->count += cnt;
    if (cnt <= 0) return MML_OK;
    if (p->touched != t->step) {
        p->touched = t->step;
        t->changed[t->n_changed++] = t->slots[slot] - 1;
    }
    if (p->n_words && p->words[p->n_words - 1] == w) return MML_OK;
    if (p->n_words == p->cap_words) {
        int32_t cap = p->cap_words ? 2 * p->cap_words : 4;
        int32_t *v = mml_realloc(p->words, (size_t)cap * sizeof *v);
        if (!v) return mml_error(MML_ERR_NOMEM, "BPE training: out of memory");
        p->words = v;
        p->cap_words = cap;
    }
    p->words[p->n_words++] = w;
    return MML_OK;
}

/* Heap order: higher count first, then first symbol, then second, bytewise. */
static bool heap_before(const trainer *t, heap_entry x, heap_entry y)
{
    if (x.count != y.count) return x.count > y.count;
    const pair *p = &t->pairs[x.pair], *q = &t->pairs[y.pair];
    int c = strcmp(t->syms.keys[p->left], t->syms.keys[q->left]);
    if (c) return c < 0;
    return strcmp(t->syms.keys[p->right], t->syms.keys[q->right]) < 0;
}

static mml_status heap_push(trainer *t, heap_entry e)
{
    if (t->n_heap == t->cap_heap) {
        int32_t cap = t->cap_heap ? 2 * t->cap_heap : 1024;
        heap_entry *h = mml_realloc(t->heap, (size_t)cap * sizeof *h);
        if (!h) return mml_error(MML_ERR_NOMEM, "BPE training: out of memory");
        t->heap = h;
        t->cap_heap = cap;
    }
    int32_t i = t->n_heap++;
    while (i > 0 && heap_before(t, e, t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = e;
    return MML_OK;
}

static heap_entry heap_pop(trainer *t)
{
    heap_entry top = t->heap[0], last = t->heap[--t->n_heap];
    int32_t i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= t->n_heap) break;
        if (c + 1 < t->n_heap && heap_before(t, t->heap[c + 1], t->heap[c])) c++;
        if (!heap_before(t, t->heap[c], last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->n_heap) t->heap[i] = last;
    return top;
}

/* The most frequent pair now, or -1 when none is left. A stale entry (its
 * pair's count fell since) goes back in with the current count. */
static int32_t best_pair(trainer *t)
{
    while (t->n_heap) {
        heap_entry e = heap_pop(t);
        int64_t cur = t->pairs[e.pair].count;
        if (cur == e.count && cur > 0) return e.pair;
        if (cur > 0 && e.count > cur && heap_push(t, (heap_entry){ cur, e.pair }) != MML_OK) return -2;
    }
    return -1;
}

static mml_status push_changed(trainer *t)
{
    mml_status rc = MML_OK;
    for (int32_t i = 0; i < t->n_changed && rc == MML_OK; i++) {
        int32_t p = t->changed[i];
        if (t->pairs[p].count > 0) rc = heap_push(t, (heap_entry){ t->pairs[p].count, p });
    }
    t->n_changed = 0;
    return rc;
}

/* Merges every (a, b) into c, left to right within each word. */
static mml_status merge(trainer *t, int32_t pi, int32_t c)
{
    int32_t a = t->pairs[pi].left, b = t->pairs[pi].right;
    mml_status rc = MML_OK;
    /* New pairs all contain c, so this pair's word list does not move. */
    const int32_t *list = t->pairs[pi].words;
    int32_t n_list = t->pairs[pi].n_words;
    for (int32_t k = 0; k < n_list && rc == MML_OK; k++) {
        int32_t w = list[k];
        if (t->word_stamp[w] == t->step) continue;
        t->word_stamp[w] = t->step;
        int32_t *s = t->seq[w];
        int64_t wc = t->words.counts[w];
        for (int32_t i = 0; i + 1 < t->len[w] && rc == MML_OK; i++) {
            if (s[i] != a || s[i + 1] != b) continue;
            rc = pair_add(t, a, b, -wc, w);
            if (rc == MML_OK && i > 0) {
                rc = pair_add(t, s[i - 1], a, -wc, w);
                if (rc == MML_OK) rc = pair_add(t, s[i - 1], c, wc, w);
            }
            if (rc == MML_OK && i + 2 < t->len[w]) {
                rc = pair_add(t, b, s[i + 2], -wc, w);
                if (rc == MML_OK) rc = pair_add(t, c, s[i + 2], wc, w);
            }
            s[i] = c;
            memmove(s + i + 1, s + i + 2, (size_t)(t->len[w] - i - 2) * sizeof *s);
            t->len[w]--;
        }
    }
    return rc;
}

static void trainer_free(trainer *t)
{
    for (int32_t i = 0; i < t->words.n && t->seq; i++) mml_free(t->seq[i]);
    for (int32_t i = 0; i < t->n_pairs; i++) mml_free(t->pairs[i].words);
    mml_free(t->seq);
    mml_free(t->len);
    mml_free(t->word_stamp);
    mml_free(t->pairs);
    mml_free(t->slots);
    mml_free(t->heap);
    mml_free(t->changed);
    strtab_free(&t->syms);
    strtab_free(&t->words);
}

/* Words as symbol ids, and the initial pair counts. */
static mml_status trainer_start(trainer *t)
{
    char byte_sym[256][4], sym[16];
    int order[256];
    int32_t base[256][2];
    clip_byte_table(byte_sym, order);
    mml_status rc = MML_OK;
    for (int c = 0; c < 256 && rc == MML_OK; c++)
        for (int last = 0; last < 2 && rc == MML_OK; last++) {
            int n = snprintf(sym, sizeof sym, "%s%s", byte_sym[c], last ? "</w>" : "");
            rc = strtab_add(&t->syms, sym, (size_t)n, 0, &base[c][last]);
        }
    int32_t nw = t->words.n;
    t->seq = rc == MML_OK ? mml_calloc((size_t)nw, sizeof *t->seq) : NULL;
    t->len = t->seq ? mml_calloc((size_t)nw, sizeof *t->len) : NULL;
    t->word_stamp = t->len ? mml_calloc((size_t)nw, sizeof *t->word_stamp) : NULL;
    if (!t->word_stamp) return mml_error(MML_ERR_NOMEM, "BPE training: out of memory for %d words", (int)nw);
    t->step = -1;
    for (int32_t w = 0; w < nw && rc == MML_OK; w++) {
        const unsigned char *word = (const unsigned char *)t->words.keys[w];
        int32_t n = (int32_t)strlen((const char *)word);
        if (!(t->seq[w] = mml_malloc((size_t)n * sizeof(int32_t)))) return mml_error(MML_ERR_NOMEM, "BPE training: out of memory");
        for (int32_t i = 0; i < n; i++) t->seq[w][i] = base[word[i]][i + 1 == n];
        t->len[w] = n;
        t->word_stamp[w] = -1;
        for (int32_t i = 0; i + 1 < n && rc == MML_OK; i++) rc = pair_add(t, t->seq[w][i], t->seq[w][i + 1], t->words.counts[w], w);
    }
    return rc == MML_OK ? push_changed(t) : rc;
}

typedef struct out_buf {
    char *s;
    size_t n, cap;
} out_buf;

static mml_status put(out_buf *o, const char *s)
{
    size_t n = strlen(s);
    if (o->n + n + 1 > o->cap) {
        size_t cap = 2 * (o->n + n + 1) + 4096;
        char *v = mml_realloc(o->s, cap);
        if (!v) return mml_error(MML_ERR_NOMEM, "BPE training: out of memory for the merges");
        o->s = v;
        o->cap = cap;
    }
    memcpy(o->s + o->n, s, n + 1);
    o->n += n;
    return MML_OK;
}

static mml_status train(trainer *t, int n_merges, char **merges, int *done)
{
    *merges = NULL;
    if (done) *done = 0;
    if (n_merges < 1) return mml_error(MML_ERR_ARG, "BPE training: the number of merges must be at least 1");
    if (!t->words.n) return mml_error(MML_ERR_ARG, "BPE training: the corpus has no words");
    out_buf o = { 0 };
    mml_status rc = trainer_start(t);
    if (rc == MML_OK) rc = put(&o, "#version: 0.2\n");
    int made = 0;
    for (; made < n_merges && rc == MML_OK; made++) {
        t->step = made;
        int32_t pi = best_pair(t);
        if (pi == -2) rc = mml_last_status();
        if (pi < 0) break;
        const char *l = t->syms.keys[t->pairs[pi].left], *r = t->syms.keys[t->pairs[pi].right];
        size_t ll = strlen(l), lr = strlen(r);
        char *cat = mml_malloc(ll + lr + 2);
        if (!cat) rc = mml_error(MML_ERR_NOMEM, "BPE training: out of memory");
        int32_t c = -1;
        if (rc == MML_OK) {
            memcpy(cat, l, ll);
            cat[ll] = ' ';
            memcpy(cat + ll + 1, r, lr + 1);
            if ((rc = put(&o, cat)) == MML_OK) rc = put(&o, "\n");
            memmove(cat + ll, cat + ll + 1, lr + 1);
            if (rc == MML_OK) rc = strtab_add(&t->syms, cat, ll + lr, 0, &c);
        }
        mml_free(cat);
        if (rc == MML_OK) rc = merge(t, pi, c);
        if (rc == MML_OK) rc = push_changed(t);
    }
    if (rc != MML_OK) {
        mml_free(o.s);
        return rc;
    }
    *merges = o.s;
    if (done) *done = made;
    return MML_OK;
}

/* Counts CLIP's pre-tokens of one text (special-token strings are skipped). */
static mml_status count_words(strtab *words, const char *text)
{
    char *clean = clip_clean(text);
    if (!clean) return mml_error(MML_ERR_NOMEM, "BPE training: out of memory");
    size_t len = strlen(clean);
    mml_status rc = MML_OK;
    for (size_t pos = 0; pos < len && rc == MML_OK;) {
        int32_t special;
        size_t n = clip_pretoken(clean, pos, len, &special);
        if (n == 0) n = 1;
        else if (special < 0) rc = strtab_add(words, clean + pos, n, 1, NULL);
        pos += n;
    }
    mml_free(clean);
    return rc;
}

static mml_status count_line(char *line, size_t len, const char *path, int64_t lineno, void *user)
{
    (void)len, (void)path, (void)lineno;
    return count_words(user, line);
}

mml_status mml_bpe_train_texts(const char *const *texts, int n, int n_merges, char **merges, int *done)
{
    trainer t = { 0 };
    mml_status rc = MML_OK;
    for (int i = 0; i < n && rc == MML_OK; i++) {
        char what[32];
        snprintf(what, sizeof what, "text %d", i);
        rc = mml_text_validate(texts[i], strlen(texts[i]), what);
        if (rc == MML_OK) rc = count_words(&t.words, texts[i]);
    }
    if (rc == MML_OK) rc = train(&t, n_merges, merges, done);
    trainer_free(&t);
    return rc;
}

mml_status mml_bpe_train_file(const char *corpus, int n_merges, const char *out_path, int *done)
{
    trainer t = { 0 };
    char *merges = NULL;
    mml_status rc = corpus_for_each_line(corpus, count_line, &t.words);
    if (rc == MML_OK && !t.words.n) rc = mml_error(MML_ERR_FORMAT, "%s: the corpus has no words", corpus);
    if (rc == MML_OK) rc = train(&t, n_merges, &merges, done);
    trainer_free(&t);
    if (rc == MML_OK) rc = text_write_file(out_path, merges, strlen(merges));
    mml_free(merges);
    return rc;
}
