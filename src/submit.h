/*
 * submit.h - starting work: a batch input file checked and uploaded (never
 * twice, never half), and a batch created from it; each outcome learned by
 * the stores (so files/<id>/ and batches/<id>/ appear at once) and logged
 * (MOUNT/log). Used by the files written into files/ and batches/, by
 * batches/new and by `retry`.
 */
#ifndef KIMIFS_SUBMIT_H
#define KIMIFS_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "batch_params.h"
#include "file.h"

struct batches;
struct files;
struct opts;

/* What uploads and creations use (none owned; all outlive it): the API,
 * the batch and file kinds of the store (each outcome is learned there and
 * put first in its listing), and the options (timeout, retries). */
struct submit {
	struct api *api;
	struct batches *batches;
	struct files *files;
	const struct opts *opts;
};

/* Seconds an upload of size bytes may take in all: -o timeout, plus one
 * second per MiB (so 100 MB is allowed about 2 minutes more). */
double submit_upload_bound(const struct submit *sb, uint64_t size);

/*
 * Check the file at path, named filename, against the rules of a batch
 * input file (jsonl_check.h), reading it in pieces. 0; -EINVAL with the
 * report (one problem per line) malloc'd in *why; or -errno (-EIO when it
 * cannot be read; *why NULL).
 */
int submit_check(const char *path, const char *filename, char **why);

/*
 * Upload the file at path as filename with purpose "batch", as part of op
 * (whose deadline should allow submit_upload_bound): 0 with the FileObject
 * in *out (one reference; learned by the files store and put first in the
 * files/ listing), or -errno with the reason in why (whylen bytes). A 429
 * or a connection that could not be made is tried again (up to -o
 * retries); when the outcome is unknown (no answer, a 5xx, an interrupt
 * after the body went out) the file list is searched for the copy (same
 * name and size, not known to this mount before) before trying again, so
 * there is never a second copy; an upload that fails for good and left a
 * copy behind has it deleted. A filename the server would list altered
 * (jsonl_name_problem) is -EINVAL before any request, since its copy could
 * not be found. Logged either way.
 */
int submit_upload(struct submit *sb, struct op *op, const char *path,
		  const char *filename, struct file **out, char *why,
		  size_t whylen);

/* What an upload sends: the file at path whole, or, with path NULL,
 * length bytes of the open file fd from offset (a job's part). */
struct submit_source {
	const char *path;
	int fd;
	uint64_t offset;
	uint64_t length;
};

/* submit_upload of src: the same care, the same outcomes. */
int submit_upload_from(struct submit *sb, struct op *op,
		       const struct submit_source *src, const char *filename,
		       struct file **out, char *why, size_t whylen);

/*
 * Create a batch with p: 0 with it in *out (one reference; stored and put
 * first in the batches/ listing), or -errno with the reason in why. Sent
 * once (never retried: a retry after a lost answer could make two). When
 * the outcome is unknown (no answer, a 5xx, an interrupt after the body
 * went out) the newest batches are searched for one of p's input file,
 * made since the request (allowing for clock skew) and not known to this
 * mount before: found, it is the batch made (0, as above); none, the
 * failure stands; the list unreadable, -EINPROGRESS: the outcome is
 * unknown, and why says how to look (never to make another). Logged
 * either way.
 */
int submit_create(struct submit *sb, struct op *op,
		  const struct batch_params *p, struct batch **out, char *why,
		  size_t whylen);

#endif
