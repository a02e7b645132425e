/* server/render.c against the JSON adaptor of the library: every case of
 * the pipeline fixtures run into its typed result, rendered in our
 * envelope, must be byte for byte bs_json_write of the envelope around
 * bs_task_result_json (what the CLI prints), float32 under "embeddings" and
 * "features"; and the pieces a stream sends, joined, are the whole answer. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/pipeline_json.h"
#include "server/render.h"
#include "util/json.h"

static char name[32][128];
static bs_pipeline_ctx *ctx[32];
static size_t n;

static bs_pipeline_ctx *load(const char *model)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name[i], model)) return ctx[i];
    assert_true(n < 32);
    bs_err err = {0};
    bs_model_opts opts = {.n_threads = 1};
    if (bs_pipeline_ctx_load(bs_test_fixture("models/%s", model), &opts, &ctx[n], &err)) {
        print_error("loading %s: %s\n", model, err.msg);
        fail();
    }
    snprintf(name[n], sizeof name[n], "%s", model);
    return ctx[n++];
}

/* One case: rendered whole (one piece after another into one buffer) and
 * through the adaptor. */
static void check_case(const json_t *c, bs_task task, size_t *checked)
{
    const char *model = json_string_value(json_object_get(c, "model"));
    const json_t *request = json_object_get(c, "request");
    bs_task_result res;
    bs_err err = {0};
    if (bs_pipeline_run_request(load(model), task, request, &res, &err)) return; /* error cases */
    json_t *data = bs_task_result_json(&res);
    assert_non_null(data);
    json_t *env = json_pack("{s:b, s:o}", "success", 1, "data", data);
    static const char *const float_keys[] = {"embeddings", "features", NULL};
    bs_buf want, got;
    bs_buf_init(&want);
    bs_buf_init(&got);
    assert_int_equal(bs_json_write(env, float_keys, &want), 0);
    json_decref(env);

    bs_render r;
    bs_render_opts o = {.shape = BS_SHAPE_ENVELOPE};
    assert_int_equal(bs_render_begin(&r, &res, &o), 0);
    size_t pieces = 0;
    while (bs_render_next(&r, &got)) pieces++;
    assert_true(pieces >= 2);
    assert_false(got.oom);
    if (got.len != want.len || memcmp(got.data, want.data, want.len)) {
        print_error("%s: rendered\n%.*s\nadaptor\n%.*s\n",
                    json_string_value(json_object_get(c, "id")), (int)got.len, got.data,
                    (int)want.len, want.data);
        fail();
    }
    assert_int_equal(bs_render_overhead(&r), strlen("{\"success\":true,\"data\":}"));
    bs_render_free(&r);
    bs_buf_free(&want);
    bs_buf_free(&got);
    (*checked)++;
}

static void test_fixture_cases_render_as_the_adaptor(void **state)
{
    (void)state;
    static const char *const files[] = {"classification", "ner",        "qa",
                                        "fill-mask",      "embeddings", "features"};
    size_t checked = 0;
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        bs_task task;
        bs_err err = {0};
        assert_int_equal(bs_task_from_name(files[f], &task, &err), 0);
        FILE *fp = fopen(bs_test_fixture("pipelines/%s.jsonl", files[f]), "r");
        assert_non_null(fp);
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, fp) > 0) {
            json_t *c = json_loads(line, 0, NULL);
            assert_non_null(c);
            check_case(c, task, &checked);
            json_decref(c);
        }
        free(line);
        fclose(fp);
    }
    assert_true(checked >= 50);
    for (size_t i = 0; i < n; i++) bs_pipeline_ctx_free(ctx[i]);
    n = 0;
}

/* Renders r (begun) whole into a NUL-terminated string (caller frees). */
static char *whole(bs_render *r)
{
    bs_buf b;
    bs_buf_init(&b);
    while (bs_render_next(r, &b)) {
    }
    bs_buf_putc(&b, 0);
    assert_false(b.oom);
    bs_render_free(r);
    return bs_buf_steal(&b, NULL);
}

static void expect(bs_task_result *res, bs_render_opts o, const char *want)
{
    bs_render r;
    assert_int_equal(bs_render_begin(&r, res, &o), 0);
    char *got = whole(&r);
    assert_string_equal(got, want);
    free(got);
}

/* The original product's shapes and OpenAI's, from hand-made results:
 * what each route keeps of the task's answer. */
static void test_other_shapes(void **state)
{
    (void)state;
    /* /qa without any answer: the original's empty answer */
    bs_task_result qa = {.task = BS_TASK_QA};
    expect(&qa, (bs_render_opts){.shape = BS_SHAPE_ORIG_QA},
           "{\"answer\":\"\",\"score\":0,\"start\":0,\"end\":0}");

    /* /classify: the top label of each text; a text without labels is left out */
    bs_task_result cls = {.task = BS_TASK_CLASSIFICATION};
    bs_classification_result *c = &cls.u.classification;
    c->n = 3;
    c->offsets = malloc(4 * sizeof *c->offsets);
    c->labels = calloc(3, sizeof *c->labels);
    size_t offs[] = {0, 2, 2, 3};
    memcpy(c->offsets, offs, sizeof offs);
    c->labels[0] = (bs_label_score){strdup("POS\"1"), 0.75};
    c->labels[1] = (bs_label_score){strdup("NEG"), 0.25};
    c->labels[2] = (bs_label_score){strdup("NEG"), 0.5};
    expect(&cls, (bs_render_opts){.shape = BS_SHAPE_ORIG_CLASSIFY, .single = 1},
           "{\"results\":[{\"label\":\"POS\\\"1\",\"score\":0.75},"
           "{\"label\":\"NEG\",\"score\":0.5}]}");

    /* /v1/embeddings: float32 as computed, cut to dimensions and made unit
     * length again, or base64 of the little-endian floats */
    for (int b64 = 0; b64 < 2; b64++) {
        bs_task_result emb = {.task = BS_TASK_EMBEDDINGS};
        bs_embeddings_result *e = &emb.u.embeddings;
        e->n = 1;
        e->dim = 3;
        e->tokens = 4;
        e->vectors = malloc(3 * sizeof *e->vectors);
        e->vectors[0] = 0.6f;
        e->vectors[1] = 0.0f;
        e->vectors[2] = 0.8f;
        expect(&emb,
               (bs_render_opts){
                   .shape = BS_SHAPE_OPENAI_EMBEDDINGS, .model = "m", .base64 = b64, .dims = 1},
               b64 ? "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                     "\"embedding\":\"AACAPw==\"}],\"model\":\"m\",\"usage\":{\"prompt_tokens\":4,"
                     "\"total_tokens\":4}}"
                   : "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                     "\"embedding\":[1]}],\"model\":\"m\",\"usage\":{\"prompt_tokens\":4,"
                     "\"total_tokens\":4}}");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases_render_as_the_adaptor),
        cmocka_unit_test(test_other_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
