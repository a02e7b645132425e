/* config.json: the sizes, activation and head of a HuggingFace model, read
 * with each family's own key names (DistilBERT's dim/n_layers, BART's
 * d_model...) and checked for consistency before any weight is touched. */
#include "model/model_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_int(json_t *root, const char *key, int def, int lo, int hi, int *out, bs_err *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (def < lo)
            return bs_err_set(err, BS_EFORMAT, "config.json: missing integer \"%s\"", key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return bs_err_set(err, BS_EFORMAT, "config.json: \"%s\" must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return bs_err_set(err, BS_ERANGE, "config.json: \"%s\" is %lld, expected %d..%d", key,
                          (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static char *dup_str(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static const struct {
    const char *type;
    bs_family fam;
    const char *base_arch;
} families[] = {
    {"bert", BS_FAM_BERT, "BertModel"},
    {"roberta", BS_FAM_ROBERTA, "RobertaModel"},
    {"xlm-roberta", BS_FAM_ROBERTA, "XLMRobertaModel"},
    {"camembert", BS_FAM_ROBERTA, "CamembertModel"},
    {"electra", BS_FAM_ELECTRA, "ElectraModel"},
    {"distilbert", BS_FAM_DISTILBERT, "DistilBertModel"},
    {"albert", BS_FAM_ALBERT, "AlbertModel"},
    {"bart", BS_FAM_BART, "BartModel"},
};

static int head_from_arch(const char *arch, bs_family fam, bs_head_kind *head)
{
    static const struct {
        const char *suffix;
        bs_head_kind head;
    } suffixes[] = {
        {"ForSequenceClassification", BS_HEAD_SEQ_CLS},
        {"ForTokenClassification", BS_HEAD_TOKEN_CLS},
        {"ForQuestionAnswering", BS_HEAD_QA},
        {"ForMaskedLM", BS_HEAD_MLM},
        {"ForConditionalGeneration", BS_HEAD_SEQ2SEQ_LM},
        {"Model", BS_HEAD_BASE},
    };
    size_t n = strlen(arch);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t s = strlen(suffixes[i].suffix);
        if (n > s && strcmp(arch + n - s, suffixes[i].suffix) == 0) {
            *head = suffixes[i].head;
            /* Of BART's heads, only generation and sequence classification are built. */
            if ((fam == BS_FAM_BART) != (*head == BS_HEAD_SEQ2SEQ_LM) && *head != BS_HEAD_BASE &&
                !(fam == BS_FAM_BART && *head == BS_HEAD_SEQ_CLS))
                return -1;
            return 0;
        }
    }
    return -1;
}

static int parse_labels(json_t *root, bs_config *c, bs_err *err)
{
    json_t *id2label = json_object_get(root, "id2label");
    int n = 0;
    if (json_is_object(id2label) && json_object_size(id2label) > 0) {
        n = (int)json_object_size(id2label);
        if (n > 100000)
            return bs_err_set(err, BS_ERANGE,
                              "config.json: id2label has %d entries (at most 100000)", n);
    } else {
        int rc = get_int(root, "num_labels", 2, 1, 100000, &n, err);
        if (rc < 0) return rc;
    }
    c->labels = calloc((size_t)n, sizeof *c->labels);
    if (!c->labels) return bs_err_set(err, BS_ENOMEM, "config.json: out of memory");
    c->n_labels = n;
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        json_t *v = json_is_object(id2label) ? json_object_get(id2label, key) : NULL;
        if (json_is_object(id2label) && json_object_size(id2label) > 0 && !json_is_string(v))
            return bs_err_set(err, BS_EFORMAT,
                              "config.json: id2label has %d entries but no string for id \"%s\"", n,
                              key);
        if (v) {
            c->labels[i] = strdup(json_string_value(v));
        } else {
            char def[32];
            snprintf(def, sizeof def, "LABEL_%d", i);
            c->labels[i] = strdup(def);
        }
        if (!c->labels[i]) return bs_err_set(err, BS_ENOMEM, "config.json: out of memory");
    }
    return 0;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) < 0) goto fail;                                                             \
    } while (0)

int bs_config_parse(const char *text, bs_config *c, bs_err *err)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    if (!root)
        return bs_err_set(err, BS_EFORMAT, "config.json: invalid JSON: %s (line %d)", je.text,
                          je.line);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = bs_err_set(err, BS_EFORMAT, "config.json: not a JSON object");
        goto fail;
    }
    c->model_type = dup_str(root, "model_type");
    if (!c->model_type) {
        rc = bs_err_set(err, BS_EFORMAT, "config.json: missing \"model_type\"");
        goto fail;
    }
    size_t fi = 0;
    for (; fi < sizeof families / sizeof families[0]; fi++)
        if (strcmp(c->model_type, families[fi].type) == 0) break;
    if (fi == sizeof families / sizeof families[0]) {
        rc = bs_err_set(
            err, BS_EUNSUPPORTED,
            "config.json: model_type \"%.64s\" is not supported (supported: bert, roberta, "
            "xlm-roberta, camembert, electra, distilbert, albert, bart)",
            c->model_type);
        goto fail;
    }
    c->fam = families[fi].fam;
    json_t *archs = json_object_get(root, "architectures");
    json_t *a0 = json_is_array(archs) ? json_array_get(archs, 0) : NULL;
    c->architecture = strdup(json_is_string(a0) ? json_string_value(a0) : families[fi].base_arch);
    if (!c->architecture) {
        rc = bs_err_set(err, BS_ENOMEM, "config.json: out of memory");
        goto fail;
    }
    if (head_from_arch(c->architecture, c->fam, &c->head) < 0) {
        rc = bs_err_set(err, BS_EUNSUPPORTED,
                        "config.json: architecture \"%.64s\" is not supported for model_type %s",
                        c->architecture, c->model_type);
        goto fail;
    }
    c->problem_type = dup_str(root, "problem_type");
    c->tie_word_embeddings = !json_is_false(json_object_get(root, "tie_word_embeddings"));

    const int BIG = 1 << 20;
    const char *act_name;
    if (c->fam == BS_FAM_DISTILBERT) {
        TRY(get_int(root, "dim", -1, 1, 65536, &c->hidden, err));
        TRY(get_int(root, "n_layers", -1, 1, 1024, &c->n_layers, err));
        TRY(get_int(root, "n_heads", -1, 1, 1024, &c->n_heads, err));
        TRY(get_int(root, "hidden_dim", -1, 1, BIG, &c->inter, err));
        c->eps = 1e-12f;
        c->type_vocab = 0;
        act_name = json_string_value(json_object_get(root, "activation"));
        if (!act_name) act_name = "gelu";
        json_t *sin = json_object_get(root, "sinusoidal_pos_embds");
        (void)sin; /* the sinusoidal table is stored in the checkpoint like a learned one */
    } else if (c->fam == BS_FAM_BART) {
        TRY(get_int(root, "d_model", -1, 1, 65536, &c->hidden, err));
        TRY(get_int(root, "encoder_layers", -1, 1, 1024, &c->n_layers, err));
        TRY(get_int(root, "encoder_attention_heads", -1, 1, 1024, &c->n_heads, err));
        TRY(get_int(root, "encoder_ffn_dim", -1, 1, BIG, &c->inter, err));
        TRY(get_int(root, "decoder_layers", -1, 1, 1024, &c->dec_layers, err));
        TRY(get_int(root, "decoder_attention_heads", -1, 1, 1024, &c->dec_heads, err));
        TRY(get_int(root, "decoder_ffn_dim", -1, 1, BIG, &c->dec_inter, err));
        c->scale_embedding = json_is_true(json_object_get(root, "scale_embedding"));
        /* The classifier needs both (BartConfig's defaults; < vocab_size is checked
         * when binding); generation reads its ids from the raw config itself. */
        if (c->head == BS_HEAD_SEQ_CLS) {
            TRY(get_int(root, "eos_token_id", 2, 0, 1 << 24, &c->eos_id, err));
            TRY(get_int(root, "decoder_start_token_id", 2, 0, 1 << 24, &c->dec_start_id, err));
        }
        if (json_is_true(json_object_get(root, "normalize_before")) ||
            json_is_true(json_object_get(root, "add_final_layer_norm"))) {
            rc = bs_err_set(err, BS_EUNSUPPORTED,
                            "config.json: pre-LayerNorm BART variants (normalize_before, "
                            "add_final_layer_norm) are not supported");
            goto fail;
        }
        c->eps = 1e-5f;
        c->type_vocab = 0;
        act_name = json_string_value(json_object_get(root, "activation_function"));
        if (!act_name) act_name = "gelu";
        if (c->hidden % c->dec_heads) {
            rc =
                bs_err_set(err, BS_EFORMAT,
                           "config.json: d_model %d is not divisible by decoder_attention_heads %d",
                           c->hidden, c->dec_heads);
            goto fail;
        }
    } else {
        TRY(get_int(root, "hidden_size", -1, 1, 65536, &c->hidden, err));
        TRY(get_int(root, "num_hidden_layers", -1, 1, 1024, &c->n_layers, err));
        TRY(get_int(root, "num_attention_heads", -1, 1, 1024, &c->n_heads, err));
        TRY(get_int(root, "intermediate_size", -1, 1, BIG, &c->inter, err));
        TRY(get_int(root, "type_vocab_size", 2, 0, 1024, &c->type_vocab, err));
        json_t *eps = json_object_get(root, "layer_norm_eps");
        c->eps = json_is_number(eps) ? (float)json_number_value(eps) : 1e-12f;
        /* A non-positive epsilon divides by zero or takes the root of a
         * negative on a constant row: NaN everywhere. */
        if (!(c->eps > 0 && c->eps < 1)) {
            rc = bs_err_set(err, BS_ERANGE,
                            "config.json: \"layer_norm_eps\" is %g, expected a number in (0, 1)",
                            (double)c->eps);
            goto fail;
        }
        act_name = json_string_value(json_object_get(root, "hidden_act"));
        if (!act_name) act_name = "gelu";
        const char *pet = json_string_value(json_object_get(root, "position_embedding_type"));
        if (pet && strcmp(pet, "absolute") != 0) {
            rc = bs_err_set(err, BS_EUNSUPPORTED,
                            "config.json: position_embedding_type \"%.32s\" is not supported (only "
                            "\"absolute\")",
                            pet);
            goto fail;
        }
    }
    int def_emb = c->hidden;
    if (c->fam == BS_FAM_ELECTRA || c->fam == BS_FAM_ALBERT)
        TRY(get_int(root, "embedding_size", c->hidden, 1, 65536, &def_emb, err));
    c->emb_size = def_emb;
    if (c->fam == BS_FAM_ALBERT) {
        TRY(get_int(root, "num_hidden_groups", 1, 1, 1024, &c->n_groups, err));
        TRY(get_int(root, "inner_group_num", 1, 1, 1024, &c->inner_group_num, err));
        if (c->n_layers % c->n_groups) {
            rc = bs_err_set(
                err, BS_EFORMAT,
                "config.json: num_hidden_layers %d is not divisible by num_hidden_groups %d",
                c->n_layers, c->n_groups);
            goto fail;
        }
    }
    TRY(get_int(root, "vocab_size", -1, 1, 1 << 24, &c->vocab, err));
    TRY(get_int(root, "max_position_embeddings", -1, 1, BIG, &c->max_pos, err));
    TRY(get_int(root, "pad_token_id", c->fam == BS_FAM_ROBERTA || c->fam == BS_FAM_BART ? 1 : 0, 0,
                1 << 24, &c->pad_id, err));
    if (c->hidden % c->n_heads) {
        rc = bs_err_set(err, BS_EFORMAT,
                        "config.json: hidden size %d is not divisible by %d attention heads",
                        c->hidden, c->n_heads);
        goto fail;
    }
    int act = bs_act_from_name(act_name);
    if (act < 0) {
        rc = bs_err_set(err, BS_EUNSUPPORTED,
                        "config.json: activation \"%.32s\" is not supported (gelu, gelu_new, "
                        "gelu_pytorch_tanh, relu, silu)",
                        act_name);
        goto fail;
    }
    c->act = (bs_act)act;
    if (c->head == BS_HEAD_SEQ_CLS || c->head == BS_HEAD_TOKEN_CLS)
        TRY(parse_labels(root, c, err));
    else if (c->head == BS_HEAD_QA)
        c->n_labels = 2;
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    bs_config_free(c);
    return rc;
}

void bs_config_free(bs_config *c)
{
    if (!c) return;
    free(c->model_type);
    free(c->architecture);
    free(c->problem_type);
    for (int i = 0; i < c->n_labels && c->labels; i++) free(c->labels[i]);
    free(c->labels);
    memset(c, 0, sizeof *c);
}
