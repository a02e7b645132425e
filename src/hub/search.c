/* Searching the Hub's model index (GET {endpoint}/api/models?search=&filter=)
 * for GET /models/available: the answer is passed through, trimmed to the
 * fields a client needs to pick a model. */
#include "hub/hub.h"
#include "util/buf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t collect(char *p, size_t s, size_t n, void *ud)
{
    bs_buf *b = ud;
    if (b->len + s * n > (8u << 20)) return 0;
    bs_buf_append(b, p, s * n);
    return b->oom ? 0 : s * n;
}

int bs_hub_search(bs_hub *hub, const char *search, const char *tag, int limit, json_t **out,
                  bs_err *err)
{
    CURL *h = curl_easy_init();
    if (!h) return bs_err_set(err, BS_ENOMEM, "cannot create a request handle");
    char *s = curl_easy_escape(h, search ? search : "", 0);
    char *t = curl_easy_escape(h, tag ? tag : "", 0);
    char url[2048];
    snprintf(url, sizeof url, "%s/api/models?search=%s%s%s&limit=%d", bs_hub_endpoint(hub),
             s ? s : "", tag && *tag ? "&filter=" : "", tag && *tag && t ? t : "",
             limit > 0 && limit <= 100 ? limit : 20);
    curl_free(s);
    curl_free(t);
    bs_buf body;
    bs_buf_init(&body);
    struct curl_slist *hdrs = curl_slist_append(NULL, "User-Agent: bertstudio/" BS_VERSION);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    int rc = 0;
    json_t *list = NULL;
    if (cc != CURLE_OK)
        rc = bs_err_set(err, BS_EIO, "cannot reach %s: %s", bs_hub_endpoint(hub),
                        curl_easy_strerror(cc));
    else if (status != 200)
        rc = bs_err_set(err, BS_EIO, "the Hub's search answered HTTP %ld", status);
    else if (!(list = json_loadb(body.data ? body.data : "", body.len, 0, NULL)) ||
             !json_is_array(list)) /* json_is_array() evaluates its argument twice */
        rc = bs_err_set(err, BS_EFORMAT, "the Hub's search answer is not a JSON array");
    bs_buf_free(&body);
    if (rc) {
        json_decref(list);
        return rc;
    }
    json_t *res = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        json_t *id = json_object_get(m, "id");
        if (!json_is_string(id)) id = json_object_get(m, "modelId");
        if (!json_is_string(id)) continue;
        json_t *o = json_object();
        json_object_set(o, "model_name", id);
        const char *keys[] = {"pipeline_tag", "tags",         "downloads", "likes",
                              "library_name", "lastModified", NULL};
        for (int k = 0; keys[k]; k++) {
            json_t *v = json_object_get(m, keys[k]);
            if (v) json_object_set(o, keys[k], v);
        }
        json_array_append_new(res, o);
    }
    json_decref(list);
    *out = res;
    return 0;
}
