/* The strict JSON reader of json.h. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct {
    const unsigned char *p;
    size_t len, pos;
    char *err;
    size_t err_len;
} reader;

static int fail(reader *r, const char *message) {
    snprintf(r->err, r->err_len, "JSON error at byte %zu: %s", r->pos, message);
    return -1;
}

static int peek(const reader *r) { return r->pos < r->len ? r->p[r->pos] : -1; }

static void skip_ws(reader *r) {
    while (r->pos < r->len && (r->p[r->pos] == ' ' || r->p[r->pos] == '\t' ||
                               r->p[r->pos] == '\n' || r->p[r->pos] == '\r'))
        r->pos++;
}

/* A growable byte buffer for strings. */
typedef struct {
    char *data;
    size_t len, cap;
} buffer;

static int push(buffer *b, const void *bytes, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int push_code_point(buffer *b, uint32_t c) {
    unsigned char out[4];
    size_t n;
    if (c < 0x80) { out[0] = (unsigned char)c; n = 1; }
    else if (c < 0x800) { out[0] = (unsigned char)(0xC0 | (c >> 6)); out[1] = (unsigned char)(0x80 | (c & 0x3F)); n = 2; }
    else if (c < 0x10000) { out[0] = (unsigned char)(0xE0 | (c >> 12)); out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)); out[2] = (unsigned char)(0x80 | (c & 0x3F)); n = 3; }
    else { out[0] = (unsigned char)(0xF0 | (c >> 18)); out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F)); out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)); out[3] = (unsigned char)(0x80 | (c & 0x3F)); n = 4; }
    return push(b, out, n);
}

/* Length of the well-formed UTF-8 sequence at `p` (at most `avail` bytes), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t avail) {
    unsigned char c = p[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n > avail) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static int hex4(reader *r, uint32_t *out) {
    if (r->len - r->pos < 4) return fail(r, "short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = r->p[r->pos + (size_t)i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return fail(r, "bad hex digit in \\u escape");
        v = v * 16 + (uint32_t)d;
    }
    r->pos += 4;
    *out = v;
    return 0;
}

static int string(reader *r, char **out) {
    buffer b = {0};
    if (peek(r) != '"') return fail(r, "expected `\"`");
    r->pos++;
    if (push(&b, "", 0) < 0) goto oom;
    for (;;) {
        int c = peek(r);
        if (c < 0) { free(b.data); return fail(r, "unterminated string"); }
        if (c == '"') { r->pos++; *out = b.data; return 0; }
        if (c < 0x20) { free(b.data); return fail(r, "control character in string"); }
        if (c == '\\') {
            r->pos++;
            int e = peek(r);
            if (e < 0) { free(b.data); return fail(r, "unexpected end"); }
            r->pos++;
            char simple = 0;
            switch (e) {
            case '"': simple = '"'; break;
            case '\\': simple = '\\'; break;
            case '/': simple = '/'; break;
            case 'b': simple = '\b'; break;
            case 'f': simple = '\f'; break;
            case 'n': simple = '\n'; break;
            case 'r': simple = '\r'; break;
            case 't': simple = '\t'; break;
            case 'u': {
                uint32_t first, code;
                if (hex4(r, &first) < 0) { free(b.data); return -1; }
                if (first >= 0xD800 && first <= 0xDBFF) {
                    uint32_t second;
                    if (r->len - r->pos < 2 || r->p[r->pos] != '\\' || r->p[r->pos + 1] != 'u') {
                        free(b.data);
                        return fail(r, "lone high surrogate");
                    }
                    r->pos += 2;
                    if (hex4(r, &second) < 0) { free(b.data); return -1; }
                    if (second < 0xDC00 || second > 0xDFFF) { free(b.data); return fail(r, "bad low surrogate"); }
                    code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                } else if (first >= 0xDC00 && first <= 0xDFFF) {
                    free(b.data);
                    return fail(r, "lone low surrogate");
                } else {
                    code = first;
                }
                if (code == 0) { free(b.data); return fail(r, "NUL in string"); }
                if (push_code_point(&b, code) < 0) goto oom;
                continue;
            }
            default: free(b.data); return fail(r, "unknown escape");
            }
            if (push(&b, &simple, 1) < 0) goto oom;
            continue;
        }
        size_t n = utf8_len(r->p + r->pos, r->len - r->pos);
        if (n == 0) { free(b.data); return fail(r, "invalid UTF-8"); }
        if (push(&b, r->p + r->pos, n) < 0) goto oom;
        r->pos += n;
    }
oom:
    free(b.data);
    return fail(r, "out of memory");
}

static int value(reader *r, json *out, int depth);

static int number(reader *r, json *out) {
    size_t start = r->pos;
    int negative = 0;
    if (peek(r) == '-') { negative = 1; r->pos++; }
    int c = peek(r);
    if (c == '0') r->pos++;
    else if (c >= '1' && c <= '9') { while (peek(r) >= '0' && peek(r) <= '9') r->pos++; }
    else return fail(r, "expected a digit");
    c = peek(r);
    if (c == '.' || c == 'e' || c == 'E') return fail(r, "only integers are allowed (no fraction or exponent)");
    /* Accumulate as a negative number so INT64_MIN fits. */
    int64_t v = 0;
    for (size_t i = start + (size_t)negative; i < r->pos; i++) {
        int d = r->p[i] - '0';
        if (v < (INT64_MIN + d) / 10) { r->pos = start; return fail(r, "integer out of range"); }
        v = v * 10 - d;
    }
    if (!negative) {
        if (v == INT64_MIN) { r->pos = start; return fail(r, "integer out of range"); }
        v = -v;
    }
    out->type = JSON_INT;
    out->integer = v;
    return 0;
}

static int literal(reader *r, const char *word, json *out, json_type type, int b) {
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->p + r->pos, word, n) != 0) return fail(r, "invalid literal");
    r->pos += n;
    out->type = type;
    out->boolean = b;
    return 0;
}

/* Appends a member to an array or object under construction. */
static int append(reader *r, json *container, size_t *cap, char *key) {
    if (container->count == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 8;
        json *items = realloc(container->items, grown_cap * sizeof *items);
        if (!items) return fail(r, "out of memory");
        container->items = items;
        if (container->type == JSON_OBJECT) {
            char **keys = realloc(container->keys, grown_cap * sizeof *keys);
            if (!keys) return fail(r, "out of memory");
            container->keys = keys;
        }
        *cap = grown_cap;
    }
    memset(&container->items[container->count], 0, sizeof(json));
    if (container->type == JSON_OBJECT) container->keys[container->count] = key;
    container->count++;
    return 0;
}

static int compound(reader *r, json *out, int depth, int object) {
    size_t cap = 0;
    char close = object ? '}' : ']';
    out->type = object ? JSON_OBJECT : JSON_ARRAY;
    r->pos++;
    skip_ws(r);
    if (peek(r) == close) { r->pos++; return 0; }
    for (;;) {
        skip_ws(r);
        char *key = NULL;
        if (object) {
            size_t at = r->pos;
            if (string(r, &key) < 0) return -1;
            for (size_t i = 0; i < out->count; i++) {
                if (strcmp(out->keys[i], key) == 0) {
                    r->pos = at;
                    free(key);
                    return fail(r, "duplicate key");
                }
            }
            skip_ws(r);
            if (peek(r) != ':') { free(key); return fail(r, "expected `:`"); }
            r->pos++;
            skip_ws(r);
        }
        if (append(r, out, &cap, key) < 0) { free(key); return -1; }
        if (value(r, &out->items[out->count - 1], depth + 1) < 0) return -1;
        skip_ws(r);
        int c = peek(r);
        if (c == ',') { r->pos++; continue; }
        if (c == close) { r->pos++; return 0; }
        return fail(r, object ? "expected `,` or `}`" : "expected `,` or `]`");
    }
}

static int value(reader *r, json *out, int depth) {
    if (depth > MAX_DEPTH) return fail(r, "nested too deeply");
    switch (peek(r)) {
    case '{': return compound(r, out, depth, 1);
    case '[': return compound(r, out, depth, 0);
    case '"': out->type = JSON_STR; return string(r, &out->string);
    case 't': return literal(r, "true", out, JSON_BOOL, 1);
    case 'f': return literal(r, "false", out, JSON_BOOL, 0);
    case 'n': return literal(r, "null", out, JSON_NULL, 0);
    case -1: return fail(r, "unexpected end");
    default:
        if (peek(r) == '-' || (peek(r) >= '0' && peek(r) <= '9')) return number(r, out);
        return fail(r, "unexpected character");
    }
}

int json_parse(const char *text, size_t len, json *out, char *err, size_t err_len) {
    reader r = {(const unsigned char *)text, len, 0, err, err_len};
    memset(out, 0, sizeof *out);
    skip_ws(&r);
    if (value(&r, out, 0) < 0) { json_free(out); return -1; }
    skip_ws(&r);
    if (r.pos != r.len) { json_free(out); return fail(&r, "text after the document"); }
    return 0;
}

void json_free(json *v) {
    if (v->type == JSON_STR) free(v->string);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->count; i++) {
            json_free(&v->items[i]);
            if (v->type == JSON_OBJECT) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
    memset(v, 0, sizeof *v);
}

const json *json_get(const json *object, const char *key) {
    if (object->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->count; i++)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}

const char *json_kind(const json *v) {
    switch (v->type) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "a boolean";
    case JSON_INT: return "an integer";
    case JSON_STR: return "a string";
    case JSON_ARRAY: return "an array";
    default: return "an object";
    }
}

int json_self_check(char *err, size_t err_len) {
    const char *good = " {\"a\": [1, -2, \"x\\n\\u00e9\\ud83d\\ude00\"], \"b\": {\"c\": true, \"d\": null}} ";
    json v;
    if (json_parse(good, strlen(good), &v, err, err_len) < 0) return -1;
    const json *a = json_get(&v, "a"), *b = json_get(&v, "b");
    int right = a && a->type == JSON_ARRAY && a->count == 3 && a->items[0].integer == 1 &&
                a->items[1].integer == -2 && a->items[2].type == JSON_STR &&
                strcmp(a->items[2].string, "x\n\xc3\xa9\xf0\x9f\x98\x80") == 0 && b &&
                json_get(b, "c") && json_get(b, "c")->boolean == 1 && json_get(b, "d") &&
                json_get(b, "d")->type == JSON_NULL;
    json_free(&v);
    if (!right) { snprintf(err, err_len, "misread the good document"); return -1; }
    static const char *bad[] = {
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.5", "1e3", "{\"a\":1,\"a\":2}", "\"\\x\"",
        "\"a", "[1] 2", "tru", "\"\\ud800\"", "99999999999999999999", "\"\x01\"",
        "\"\\u0000\"", "\"\xff\"",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ignored[256];
        json w;
        if (json_parse(bad[i], strlen(bad[i]), &w, ignored, sizeof ignored) == 0) {
            json_free(&w);
            snprintf(err, err_len, "accepted bad document #%zu", i);
            return -1;
        }
    }
    return 0;
}
