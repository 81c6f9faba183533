/* A strict JSON reader for the conformance scenarios, the same rules as the Rust
 * runner's (tests/conformance/runner/json.rs): objects keep their key order and refuse
 * duplicate keys, numbers are integers only, strings are UTF-8 without NUL, nesting is
 * bounded, and anything else is an error with its byte offset. */
#ifndef BW_CONFORMANCE_JSON_H
#define BW_CONFORMANCE_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_INT, JSON_STR, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json json;

struct json {
    json_type type;
    int boolean;      /* JSON_BOOL */
    int64_t integer;  /* JSON_INT */
    char *string;     /* JSON_STR: NUL-terminated, no NUL inside */
    size_t count;     /* JSON_ARRAY, JSON_OBJECT: members */
    json *items;      /* JSON_ARRAY, JSON_OBJECT: `count` values */
    char **keys;      /* JSON_OBJECT: `count` keys, in file order */
};

/* Parses `len` bytes. Returns 0 and fills `*out` (free it with json_free), or -1 and
 * writes the reason into `err` (`err_len` bytes). */
int json_parse(const char *text, size_t len, json *out, char *err, size_t err_len);

/* Frees what json_parse allocated (not `value` itself). */
void json_free(json *value);

/* The member `key` of an object, or NULL. */
const json *json_get(const json *object, const char *key);

/* "null", "a boolean", ... for messages. */
const char *json_kind(const json *value);

/* Checks the reader on what the format uses and must refuse: 0 when right, else -1
 * with the reason in `err`. */
int json_self_check(char *err, size_t err_len);

#endif
