/*
 * submit.c - uploads and creations (submit.h). An upload whose outcome is
 * unknown is looked for in the file list before it is tried again; a batch
 * creation is sent once. What the server answers goes to the stores, and
 * each outcome to the log.
 */
#include "submit.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jsonl_check.h"
#include "kimifs.h"
#include "log.h"
#include "util.h"

#define UPLOAD_PURPOSE "batch"

double submit_upload_bound(const struct kimifs *k, uint64_t size)
{
	return k->opts.timeout + (double)size / (1024.0 * 1024.0);
}

/* Earlier lines of the file being checked, read back (jsonl_pread_fn);
 * ctx points at its descriptor. */
static ssize_t check_pread(void *ctx, char *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(*(const int *)ctx, buf, len, (off_t)off);

	return n < 0 ? -errno : n;
}

int submit_check(const char *path, const char *filename, char **why)
{
	struct jsonl_check c;
	struct stat st;
	char buf[65536];
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	*why = NULL;
	if (fd < 0)
		return -EIO;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -EIO;
	}
	jsonl_check_init(&c, filename);
	jsonl_check_source(&c, (uint64_t)st.st_size, check_pread, &fd);
	/* Over the limit, it is refused for its size alone: not read. */
	if ((uint64_t)st.st_size <= JSONL_MAX_BYTES)
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			jsonl_check_feed(&c, buf, (size_t)n);
	if (n < 0) {
		close(fd);
		jsonl_check_free(&c);
		return -EIO;
	}
	r = jsonl_check_end(&c);
	close(fd);
	if (r == -EINVAL) {
		*why = strdup(jsonl_check_report(&c));
		if (!*why)
			r = -ENOMEM;
	} else if (r < 0 && r != -ENOMEM) {
		r = -EIO;
	}
	jsonl_check_free(&c);
	return r;
}

/* Learn f as the server's newest file. */
static void learn_file(struct kimifs *k, struct file *f, double sent)
{
	store_put(&k->files.store, f, sent);
	listing_add(&k->files.listing, f->id);
}

/*
 * Look through the file list for the copy an upload of filename (size
 * bytes) may have left: a file of that name and size this mount did not
 * know before. 1 with it in *out, 0 when there is none, or -errno.
 */
static int find_copy(struct kimifs *k, struct api_op *op, const char *filename,
		     uint64_t size, struct file **out)
{
	struct api_page page;
	struct api_error err;
	char *after = NULL;
	int r = 0;

	*out = NULL;
	for (unsigned pages = 0; pages < 1000; pages++) {
		r = api_list(&k->api, op, &api_list_file, after, 100, &page,
			     &err);
		free(after);
		after = NULL;
		if (r < 0)
			break;
		for (size_t i = 0; i < page.nitems; i++) {
			struct file *f = page.items[i];

			if (strcmp(f->filename, filename) != 0 ||
			    (uint64_t)f->bytes != size ||
			    listing_has(&k->files.listing, f->id) ||
			    store_changes(&k->files.store, f->id) != 0)
				continue;
			if (!*out || f->created_at > (*out)->created_at) {
				file_unref(*out);
				*out = file_ref(f);
			}
		}
		if (page.has_more && page.last_id)
			after = strdup(page.last_id);
		api_page_free(&page);
		if (!after)
			break;
	}
	free(after);
	if (r < 0) {
		file_unref(*out);
		*out = NULL;
		return r;
	}
	return *out ? 1 : 0;
}

/* Whether the outcome of an upload that failed with err is unknown: the
 * body may have reached the server. */
static int outcome_unknown(int err)
{
	return err == -ETIMEDOUT || err == -EIO || err == -EINTR;
}

/* Whether an upload that failed with err may simply be sent again:
 * nothing reached the server. */
static int nothing_sent(int err)
{
	return err == -EAGAIN || err == -EHOSTUNREACH;
}

static void pause_before_retry(const struct api_op *op, unsigned attempt)
{
	double delay = fmin(0.2 * pow(2, attempt), 5.0);
	struct timespec ts;

	if (util_now() + delay + 1 > op->deadline)
		return;
	ts.tv_sec = (time_t)delay;
	ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

int submit_upload(struct kimifs *k, struct api_op *op, const char *path,
		  const char *filename, struct file **out, char *why,
		  size_t whylen)
{
	struct api_error err = {0};
	struct file *f = NULL;
	uint64_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	int r = -EIO;

	*out = NULL;
	if (fd < 0) {
		snprintf(why, whylen, "cannot read the staged file");
		return -EIO;
	}
	end = lseek(fd, 0, SEEK_END);
	close(fd);
	if (end < 0) {
		snprintf(why, whylen, "cannot read the staged file");
		return -EIO;
	}
	size = (uint64_t)end;
	for (unsigned attempt = 0; attempt <= k->opts.retries; attempt++) {
		double sent = store_clock();

		r = api_upload_file(&k->api, op, path, filename, UPLOAD_PURPOSE,
				    &f, &err);
		if (r == 0) {
			learn_file(k, f, sent);
			break;
		}
		if (nothing_sent(r) && !op->interrupted) {
			pause_before_retry(op, attempt);
			continue;
		}
		if (!outcome_unknown(r))
			break;
		/* The body may be on the server: look before sending it
		 * again (with an op of its own when this one was
		 * interrupted or ran out). */
		struct api_op look;

		api_op_begin(&k->api, &look);
		int found = find_copy(k, &look, filename, size, &f);

		if (found > 0) {
			if (r == -EINTR) {
				/* Given up by the user: leave nothing. */
				struct api_error derr;

				if (api_delete_file(&k->api, &look, f->id,
						    &derr) == 0)
					log_info("upload %s: interrupted; "
						 "the copy %s that reached "
						 "the server is deleted",
						 filename, f->id);
				file_unref(f);
				f = NULL;
				break;
			}
			log_info("upload %s: no answer, but the server has "
				 "it as %s",
				 filename, f->id);
			learn_file(k, f, sent);
			r = 0;
			break;
		}
		if (r == -EINTR || op->interrupted || found < 0 ||
		    util_now() >= op->deadline)
			break;
	}
	if (r < 0) {
		snprintf(why, whylen, "%s",
			 err.message[0] ? err.message : strerror(-r));
		log_err("upload %s: failed: %s", filename, why);
		return r;
	}
	log_info("upload %s: %s (%llu bytes)", filename, f->id,
		 (unsigned long long)size);
	*out = f;
	return 0;
}

int submit_create(struct kimifs *k, struct api_op *op,
		  const struct batch_params *p, struct batch **out, char *why,
		  size_t whylen)
{
	struct api_error err = {0};
	double sent = store_clock();
	int r = api_create_batch(&k->api, op, p, out, &err);

	if (r < 0) {
		snprintf(why, whylen, "%s",
			 err.message[0] ? err.message : strerror(-r));
		log_err("create batch from %s: failed: %s", p->input_file_id,
			why);
		return r;
	}
	batches_put(&k->batches, *out, sent);
	listing_add(&k->batches.listing, (*out)->id);
	log_info("create batch from %s: %s (%s)", p->input_file_id, (*out)->id,
		 (*out)->status);
	return 0;
}
