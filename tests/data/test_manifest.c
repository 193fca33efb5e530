#include <string.h>

#include "mml/manifest.h"
#include "test.h"

static const char *GOOD =
    "{\"id\": \"a\", \"image\": \"img/a.png\", \"audio\": \"wav/a.wav\", \"text\": \"a shoe\", "
    "\"label\": \"shoe\", \"split\": \"train\", \"speaker\": \"george\"}\n"
    "\n"
    "{\"image\": \"/abs/b.png\", \"audio\": null, \"label\": \"bag\", \"speaker\": 3}\r\n"
    "{\"text\": \"only text\", \"label\": \"shoe\"}";

TEST(manifest_parses_modalities_and_missing)
{
    mml_manifest *m = NULL;
    CHECK_OK(mml_manifest_parse(GOOD, strlen(GOOD), "data/set/train.jsonl", &m));
    if (!m) return;
    CHECK(m->n == 3);
    const mml_sample *a = &m->samples[0], *b = &m->samples[1], *c = &m->samples[2];
    CHECK(!strcmp(a->path[MML_MOD_IMAGE], "data/set/img/a.png"));
    CHECK(!strcmp(a->path[MML_MOD_AUDIO], "data/set/wav/a.wav"));
    CHECK(a->has[MML_MOD_TEXT] && !strcmp(a->text, "a shoe"));
    CHECK(!strcmp(mml_sample_field(a, "speaker"), "george"));
    CHECK(!strcmp(b->path[MML_MOD_IMAGE], "/abs/b.png"));
    CHECK(!b->has[MML_MOD_AUDIO] && !b->has[MML_MOD_TEXT]);
    CHECK(!strcmp(mml_sample_field(b, "speaker"), "3"));
    CHECK(!strcmp(b->id, "line3") && b->line == 3 && c->line == 4);
    CHECK(!c->has[MML_MOD_IMAGE] && c->has[MML_MOD_TEXT]);
    char **names;
    int n = mml_manifest_classes(m, "label", &names);
    CHECK(n == 2 && !strcmp(names[0], "bag") && !strcmp(names[1], "shoe"));
    CHECK(mml_manifest_class_of(m, c, "label", names, n) == 1);
    mml_classes_free(names, n);
    CHECK(mml_manifest_classes(m, "speaker", &names) == -1); /* mixed int and name */
    CHECK(strstr(mml_last_error(), "train.jsonl:") != NULL);
    mml_manifest_free(m);
}

TEST(manifest_integer_labels_sort_numerically)
{
    const char *t = "{\"label\": 10, \"text\": \"x\"}\n{\"label\": 9, \"text\": \"y\"}\n{\"label\": 2, \"text\": \"z\"}\n";
    mml_manifest *m = NULL;
    CHECK_OK(mml_manifest_parse(t, strlen(t), "m.jsonl", &m));
    char **names;
    int n = mml_manifest_classes(m, "label", &names);
    CHECK(n == 3 && !strcmp(names[0], "2") && !strcmp(names[2], "10"));
    mml_classes_free(names, n);
    mml_manifest_free(m);
}

TEST(manifest_errors_name_file_and_line)
{
    struct { const char *text, *want; } cases[] = {
        { "{\"text\": \"ok\"}\n{\"text\": \"broken\"\n", "m.jsonl:2:" },
        { "[1, 2]\n", "m.jsonl:1: is not a JSON object" },
        { "{\"image\": 5}\n", "m.jsonl:1: field \"image\"" },
        { "{\"label\": 1.5, \"text\": \"x\"}\n", "m.jsonl:1: field \"label\"" },
        { "{\"image\": \"\"}\n", "m.jsonl:1: field \"image\"" },
        { "\n\n", "holds no samples" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mml_manifest *m = NULL;
        CHECK(mml_manifest_parse(cases[i].text, strlen(cases[i].text), "m.jsonl", &m) == MML_ERR_FORMAT);
        CHECK_MSG(strstr(mml_last_error(), cases[i].want), "case %zu: got '%s'", i, mml_last_error());
        CHECK(m == NULL);
    }
    mml_manifest *m = NULL;
    CHECK(mml_manifest_load("/nonexistent.jsonl", &m) == MML_ERR_IO);
}
