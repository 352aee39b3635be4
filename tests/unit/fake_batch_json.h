/*
 * fake_batch_json.h - a BatchObject as the API writes it, for the unit
 * tests whose HTTP stub (http_stub.h) answers lists of tagged batches
 * (test_store_jobs.c, test_job_watch.c).
 */
#ifndef KIMIFS_FAKE_BATCH_JSON_H
#define KIMIFS_FAKE_BATCH_JSON_H

#include <stdio.h>

/*
 * Batch id in status with metadata meta (JSON text), made at created, of
 * 2 requests of which completed succeeded, appended to out (size bytes)
 * at o: the offset after it.
 */
static inline size_t fake_batch_json(char *out, size_t o, size_t size,
				     const char *id, const char *status,
				     const char *meta, int created,
				     int completed)
{
	return o + (size_t)snprintf(
		       out + o, size - o,
		       "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":"
		       "\"/v1/chat/completions\",\"input_file_id\":\"file-a\","
		       "\"completion_window\":\"24h\",\"status\":\"%s\","
		       "\"created_at\":%d,\"metadata\":%s,"
		       "\"request_counts\":{\"total\":2,\"completed\":%d,"
		       "\"failed\":0}}",
		       id, status, created, meta, completed);
}

#endif
