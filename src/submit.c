/*
 * submit.c - uploads and creations (submit.h). An upload whose outcome is
 * unknown is looked for in the file list before it is tried again; a batch
 * creation is sent once, and when its answer is lost the batch is looked
 * for in the newest batches. What the server answers goes to the stores, and
 * each outcome to the log. The API client adds the line of MOUNT/events of
 * each request (api.h); an upload or a creation whose answer was lost but
 * found on the server adds its line here, after that request's failure.
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

#include "api_pager.h"
#include "events.h"
#include "job_tag.h"
#include "jsonl_check.h"
#include "opts.h"
#include "store_batches.h"
#include "store_files.h"
#include "log.h"
#include "util.h"

#define UPLOAD_PURPOSE "batch"

double submit_upload_bound(const struct submit *sb, uint64_t size)
{
	return sb->opts->timeout + (double)size / (1024.0 * 1024.0);
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
static void learn_file(struct submit *sb, struct file *f, double sent)
{
	store_put(&sb->files->store, f, sent);
	listing_add(&sb->files->listing, f->id);
}

/* Objects per page of the searches after a lost answer. */
#define SEARCH_PAGE 100
/* Pages of the file list looked through for an upload's copy. */
#define COPY_PAGES 1000

/* Whether object id is one this mount did not know before a lost answer:
 * not in its listing, never in its store. */
static int unknown_here(struct listing *l, struct store *st, const char *id)
{
	return !listing_has(l, id) && store_changes(st, id) == 0;
}

/* The copy an upload may have left: a file of its name and size that the
 * mount did not know before; the newest such in found (a reference). */
struct copy_search {
	struct submit *sb;
	const char *filename;
	uint64_t size;
	struct file *found;
};

static int visit_copy(void *item, void *ctx)
{
	struct copy_search *s = ctx;
	struct file *f = item;

	if (strcmp(f->filename, s->filename) != 0 ||
	    (uint64_t)f->bytes != s->size ||
	    !unknown_here(&s->sb->files->listing, &s->sb->files->store, f->id))
		return 0;
	if (!s->found || f->created_at > s->found->created_at) {
		file_unref(s->found);
		s->found = file_ref(f);
	}
	return 0;
}

/*
 * Look through the file list for the copy an upload of filename (size
 * bytes) may have left (visit_copy). 1 with it in *out, 0 when there is
 * none, or -errno.
 */
static int find_copy(struct submit *sb, struct op *op, const char *filename,
		     uint64_t size, struct file **out)
{
	struct copy_search s = {.sb = sb, .filename = filename, .size = size};
	struct api_error err;
	int r = api_list_each(sb->api, op, &file_kind, SEARCH_PAGE, COPY_PAGES,
			      visit_copy, &s, &err);

	if (r < 0) {
		file_unref(s.found);
		s.found = NULL;
	}
	*out = s.found;
	return r < 0 ? r : s.found != NULL;
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

static void pause_before_retry(const struct op *op, unsigned attempt)
{
	double delay = fmin(0.2 * pow(2, attempt), 5.0);
	struct timespec ts;

	if (util_now() + delay + 1 > op->deadline)
		return;
	ts.tv_sec = (time_t)delay;
	ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* The bytes src sends: 0 with them in *size, or -EIO. */
static int source_size(const struct submit_source *src, uint64_t *size)
{
	int fd;
	off_t end;

	if (!src->path) {
		*size = src->length;
		return 0;
	}
	fd = open(src->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -EIO;
	end = lseek(fd, 0, SEEK_END);
	close(fd);
	if (end < 0)
		return -EIO;
	*size = (uint64_t)end;
	return 0;
}

/* One upload of src, sent once (api_upload_file or api_upload_range). */
static int upload_once(struct submit *sb, struct op *op,
		       const struct submit_source *src, const char *filename,
		       struct file **out, struct api_error *err)
{
	if (src->path)
		return api_upload_file(sb->api, op, src->path, filename,
				       UPLOAD_PURPOSE, out, err);
	return api_upload_range(sb->api, op, src->fd, src->offset, src->length,
				filename, UPLOAD_PURPOSE, out, err);
}

int submit_upload(struct submit *sb, struct op *op, const char *path,
		  const char *filename, struct file **out, char *why,
		  size_t whylen)
{
	struct submit_source src = {.path = path, .fd = -1};

	return submit_upload_from(sb, op, &src, filename, out, why, whylen);
}

int submit_upload_from(struct submit *sb, struct op *op,
		       const struct submit_source *src, const char *filename,
		       struct file **out, char *why, size_t whylen)
{
	struct api_error err = {0};
	struct file *f = NULL;
	const char *bad = jsonl_name_problem(filename);
	uint64_t size;
	int r = -EIO;

	*out = NULL;
	if (bad) {
		/* A name the server would list altered: the copy a lost
		 * answer left could not be found by it. */
		snprintf(why, whylen, "%s", bad);
		log_err("upload %s: refused: %s", filename, why);
		return -EINVAL;
	}
	if (source_size(src, &size) < 0) {
		snprintf(why, whylen, "cannot read the staged file");
		return -EIO;
	}
	for (unsigned attempt = 0; attempt <= sb->opts->retries; attempt++) {
		double sent = store_clock(&sb->files->store);

		r = upload_once(sb, op, src, filename, &f, &err);
		if (r == 0) {
			learn_file(sb, f, sent);
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
		struct op look;

		op_start(&look, sb->opts->timeout);
		int found = find_copy(sb, &look, filename, size, &f);

		if (found > 0) {
			if (r == -EINTR) {
				/* Given up by the user: leave nothing. */
				struct api_error derr;

				if (api_delete_file(sb->api, &look, f->id,
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
			events_add(&(struct event){.kind = "upload",
						   .file = f->id,
						   .name = filename,
						   .bytes = f->bytes});
			learn_file(sb, f, sent);
			r = 0;
			break;
		}
		if (r == -EINTR || op->interrupted || found < 0 ||
		    util_now() >= op->deadline)
			break;
	}
	if (r < 0) {
		snprintf(why, whylen, "%s", api_error_message(&err, r));
		log_err("upload %s: failed: %s", filename, why);
		return r;
	}
	log_info("upload %s: %s (%llu bytes)", filename, f->id,
		 (unsigned long long)size);
	*out = f;
	return 0;
}

/*
 * Seconds the server's clock may be behind ours: a batch created that long
 * before the creation was sent may still be its batch.
 */
#define CREATE_SKEW 900
/* Pages of the newest batches looked through for a creation's batch. */
#define CREATE_PAGES 10

/* The batch a creation may have made: one of its input file, created at
 * since or later, that the mount did not know before; the newest such in
 * found (a reference). Older batches end the search. */
struct batch_search {
	struct submit *sb;
	const char *input_file_id;
	int64_t since;
	struct batch *found;
};

static int visit_batch(void *item, void *ctx)
{
	struct batch_search *s = ctx;
	struct batch *b = item;
	char input[BATCH_ID_MAX + 1];

	if (b->created_at < s->since)
		return 1;
	if (batch_file_id(b, "input_file_id", input, sizeof(input)) != 0 ||
	    strcmp(input, s->input_file_id) != 0 ||
	    !unknown_here(&s->sb->batches->listing, &s->sb->batches->store,
			  b->id))
		return 0;
	if (!s->found || b->created_at > s->found->created_at) {
		batch_unref(s->found);
		s->found = batch_ref(b);
	}
	return 0;
}

/*
 * Look through the newest batches (up to CREATE_PAGES pages, until one
 * older than sent - CREATE_SKEW) for the batch a creation with p, sent at
 * wall-clock time sent, may have made (visit_batch), as part of op. 1 with
 * it in *out, 0 when there is none, or -errno when the list cannot be
 * read.
 */
static int find_batch(struct submit *sb, struct op *op,
		      const struct batch_params *p, time_t sent,
		      struct batch **out)
{
	struct batch_search s = {.sb = sb,
				 .input_file_id = p->input_file_id,
				 .since = (int64_t)sent - CREATE_SKEW};
	struct api_error err;
	int r = api_list_each(sb->api, op, &batch_kind, SEARCH_PAGE,
			      CREATE_PAGES, visit_batch, &s, &err);

	if (r < 0) {
		batch_unref(s.found);
		s.found = NULL;
	}
	*out = s.found;
	return r < 0 ? r : s.found != NULL;
}

int submit_create(struct submit *sb, struct op *op,
		  const struct batch_params *p, struct batch **out, char *why,
		  size_t whylen)
{
	struct api_error err = {0};
	time_t wall = time(NULL);
	double sent = store_clock(&sb->batches->store);
	int r = api_create_batch(sb->api, op, p, out, &err);

	if (r < 0 && outcome_unknown(r)) {
		/* The batch may have been made: look before saying it was
		 * not (with an op of its own when this one was interrupted
		 * or ran out). */
		struct op look;
		int found;

		op_start(&look, sb->opts->timeout);
		found = find_batch(sb, &look, p, wall, out);
		if (found > 0) {
			log_info("create batch from %s: no answer, but the "
				 "server has it as %s",
				 p->input_file_id, (*out)->id);
			events_add(&(struct event){.kind = "create",
						   .id = (*out)->id,
						   .file = p->input_file_id,
						   .job = job_tag_job(p)});
			r = 0;
		} else if (found < 0) {
			snprintf(why, whylen,
				 "no answer, and the list of batches cannot "
				 "be read, so whether a batch was made is "
				 "unknown: look for %s in "
				 "batches/*/input_file_id before making "
				 "another",
				 p->input_file_id);
			log_err("create batch from %s: %s", p->input_file_id,
				why);
			return -EINPROGRESS;
		}
	}
	if (r < 0) {
		snprintf(why, whylen, "%s", api_error_message(&err, r));
		log_err("create batch from %s: failed: %s", p->input_file_id,
			why);
		return r;
	}
	batches_put(sb->batches, *out, sent);
	listing_add(&sb->batches->listing, (*out)->id);
	log_info("create batch from %s: %s (%s)", p->input_file_id, (*out)->id,
		 (*out)->status);
	return 0;
}
