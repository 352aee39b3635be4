/*
 * json.h - parsing the JSON of an answer. cJSON decodes "\u0000" into a NUL
 * byte inside a string and keeps no length, so a string holding one would
 * be taken cut short ("batch_nul\u0000evil" as "batch_nul"); json_parse
 * marks such strings so that nobody takes them for strings.
 */
#ifndef KIMIFS_JSON_H
#define KIMIFS_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/*
 * Parse a JSON text (len bytes, not NUL-terminated) as cJSON does, then make
 * every string that holds a NUL character unmistakable, since cJSON would
 * hand it over cut short at the NUL: a value becomes a cJSON_Raw node holding
 * its JSON text (so it is no string to anyone, and batch.json shows it as
 * sent), and an object member whose key holds one is removed. *nuls is the
 * number of such strings. Returns NULL when the text is not JSON (or memory
 * ran out). Linear in len. Answers must be parsed with this, not cJSON.
 */
cJSON *json_parse(const char *text, size_t len, size_t *nuls);

#endif
