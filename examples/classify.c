/*
 * classify: text classification and named-entity recognition with the
 * pipeline API (bertstudio/pipeline.h). Loads a model folder and, depending
 * on the head its config.json names, prints every label with its score for
 * each text (*ForSequenceClassification) or the entities found in each text
 * (*ForTokenClassification, words grouped as the "simple" strategy does).
 *
 *   build/examples/bs-classify tests/fixtures/models/tiny-bert-classification "I hate Mondays."
 *   build/examples/bs-classify tests/fixtures/models/tiny-bert-ner "John Smith lives in New York."
 *
 * The fixture models have random weights: labels and scores are reproducible,
 * not meaningful. distilbert-base-uncased-finetuned-sst-2-english or
 * dslim/bert-base-NER (with model.safetensors) give real answers.
 */
#include <jansson.h>
#include <stdio.h>

#include <bertstudio/pipeline.h>

/* results[i] of a classification: [{"label", "score"}, ...], best first. */
static void print_labels(const json_t *labels)
{
    size_t i;
    json_t *l;
    json_array_foreach(labels, i, l)
    {
        printf("    %-14s %.6f\n", json_string_value(json_object_get(l, "label")),
               json_real_value(json_object_get(l, "score")));
    }
}

/* results[i] of NER: [{"entity_group", "score", "word", "start", "end"}, ...]
 * in text order; start/end are code points into the text, half-open. */
static void print_entities(const json_t *entities)
{
    size_t i;
    json_t *e;
    json_array_foreach(entities, i, e)
    {
        char span[48];
        snprintf(span, sizeof span, "[%lld, %lld)",
                 (long long)json_integer_value(json_object_get(e, "start")),
                 (long long)json_integer_value(json_object_get(e, "end")));
        printf("    %-6s %.6f  %-10s %s\n", json_string_value(json_object_get(e, "entity_group")),
               json_real_value(json_object_get(e, "score")), span,
               json_string_value(json_object_get(e, "word")));
    }
    if (json_array_size(entities) == 0) printf("    (no entities)\n");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT [TEXT...]\n", argv[0]);
        return 2;
    }
    bs_err err = {0};
    bs_pipeline_ctx *ctx = NULL;
    if (bs_pipeline_ctx_load(argv[1], NULL, &ctx, &err) != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        return 1;
    }

    /* The model knows its head and its labels (config.json id2label). */
    const bs_model *model = bs_pipeline_ctx_model(ctx);
    printf("model: %s, labels:", bs_model_architecture(model));
    for (int i = 0; i < bs_model_num_labels(model); i++) printf(" %s", bs_model_label(model, i));
    printf("%s\n", bs_model_num_labels(model) ? "" : " (none)");

    bs_texts input = {.n = (size_t)(argc - 2), .texts = (const char *const *)(argv + 2)};
    json_t *data = NULL;
    int is_ner = bs_model_head(model) == BS_HEAD_TOKEN_CLS;
    int rc;
    if (is_ner) {
        /* Default ignore_labels (["O"]): tokens tagged O are left out. */
        bs_ner_req req;
        bs_ner_req_init(&req);
        req.input = input;
        req.aggregation = BS_NER_AGG_SIMPLE;
        rc = bs_pipeline_ner(ctx, &req, &data, &err);
    } else {
        /* top_k <= 0: every label, not just the best one. The score function
         * (softmax, or sigmoid for multi-label models) follows the config. A
         * model without a classification head fails here with
         * BS_EUNPROCESSABLE and a message naming the head it needs. */
        bs_classification_req req;
        bs_classification_req_init(&req);
        req.input = input;
        req.top_k = 0;
        rc = bs_pipeline_classify(ctx, &req, &data, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        bs_pipeline_ctx_free(ctx);
        return 1;
    }

    /* data = {"results": [one entry per text], "truncated": bool}, exactly the
     * `data` of the server's /tasks/classification or /tasks/ner answer. */
    json_t *results = json_object_get(data, "results");
    for (size_t i = 0; i < input.n; i++) {
        printf("[%zu] %s\n", i, input.texts[i]);
        if (is_ner)
            print_entities(json_array_get(results, i));
        else
            print_labels(json_array_get(results, i));
    }

    json_decref(data);
    bs_pipeline_ctx_free(ctx);
    return 0;
}
