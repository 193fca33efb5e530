#include <string.h>

#include "mml/alloc.h"
#include "mml/config.h"
#include "test.h"

static const char *CFG =
    "{\n"
    "  \"epochs\": 5,\n"
    "  \"lr\": 0.001,\n"
    "  \"model\": {\"layers\": [{\"type\": \"linear\", \"out\": 10}, {\"type\": \"relu\", \"extra\": 1}]},\n"
    "  \"sizes\": [3, 4.5],\n"
    "  \"name\": \"x\"\n"
    "}\n";

TEST(config_reads_values_and_names_key_paths)
{
    mml_config *cfg = NULL;
    CHECK_OK(mml_config_parse(CFG, "c.json", &cfg));
    if (!cfg) return;
    mml_cfg_node root = mml_config_root(cfg), model, layers;
    int64_t epochs, batch;
    double lr;
    CHECK_OK(mml_cfg_int(&root, "epochs", 1, &epochs));
    CHECK_OK(mml_cfg_int(&root, "batch", 64, &batch));
    CHECK_OK(mml_cfg_float(&root, "lr", 0.1, &lr));
    CHECK(epochs == 5 && batch == 64 && lr == 0.001);
    CHECK(mml_cfg_int(&root, "lr", 1, &epochs) == MML_ERR_ARG);
    CHECK(strstr(mml_last_error(), "c.json: lr: expected an integer"));
    CHECK_OK(mml_cfg_object(&root, "model", true, &model));
    CHECK_OK(mml_cfg_array(&model, "layers", true, &layers));
    CHECK(mml_cfg_len(&layers) == 2);
    mml_cfg_node l1 = mml_cfg_at(&layers, 1);
    static const char *const keys[] = { "type", "out", NULL };
    CHECK(mml_cfg_check_keys(&l1, keys) == MML_ERR_ARG);
    CHECK_MSG(strstr(mml_last_error(), "c.json: model.layers[1].extra: unknown key"), "%s", mml_last_error());
    static const char *const types[] = { "linear", "conv2d", NULL };
    int t;
    CHECK(mml_cfg_choice(&l1, "type", types, -1, &t) == MML_ERR_ARG);
    CHECK(strstr(mml_last_error(), "model.layers[1].type: unknown value 'relu'"));
    mml_cfg_node l0 = mml_cfg_at(&layers, 0);
    CHECK_OK(mml_cfg_choice(&l0, "type", types, -1, &t));
    CHECK(t == 0);
    double sizes[4];
    int64_t isz[4];
    CHECK(mml_cfg_floats(&root, "sizes", sizes, 4) == 2 && sizes[1] == 4.5);
    CHECK(mml_cfg_ints(&root, "sizes", isz, 4) == -1);
    CHECK(strstr(mml_last_error(), "sizes: item 1: expected an integer"));
    const char *name;
    CHECK(mml_cfg_string_req(&root, "missing", &name) == MML_ERR_ARG);
    CHECK(strstr(mml_last_error(), "missing: is required"));
    char *dump = mml_config_dump(cfg);
    CHECK(dump && strstr(dump, "\"epochs\":5"));
    mml_free(dump);
    mml_config_free(cfg);
}

TEST(config_syntax_error_gives_line_and_column)
{
    mml_config *cfg = NULL;
    CHECK(mml_config_parse("{\n  \"a\": 1,\n  \"b\": ,\n}", "bad.json", &cfg) == MML_ERR_FORMAT);
    CHECK_MSG(strstr(mml_last_error(), "bad.json:3:"), "%s", mml_last_error());
    CHECK(mml_config_parse("[1]", "arr.json", &cfg) == MML_ERR_FORMAT);
    CHECK(mml_config_load("/no/such.json", &cfg) == MML_ERR_IO);
}
