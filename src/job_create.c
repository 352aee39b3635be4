/*
 * job_create.c - making a job (job_create.h): the whole input checked and
 * cut in one pass, the server's lists read once for the job's batches, the
 * parts' files and the account's room, then each missing part uploaded and
 * made a batch.
 */
#include "job_create.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch_params.h"
#include "cache_dir.h"
#include "idsort.h"
#include "job_split.h"
#include "job_tag.h"
#include "jsonl_check.h"
#include "listing.h"
#include "log.h"
#include "store_batches.h"
#include "store_files.h"
#include "submit.h"
#include "util.h"

#define READ_CHUNK 65536

static const char *const state_names[] = {
    [JOB_PART_UNTRIED] = "untried",
    [JOB_PART_MADE] = "made",
    [JOB_PART_EXISTED] = "existed",
    [JOB_PART_FAILED] = "failed",
};

const char *job_part_state_name(enum job_part_state s)
{
	return state_names[s];
}

static int fail(struct job_outcome *out, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set out->why (in place of any) and return r. */
static int fail(struct job_outcome *out, int r, const char *fmt, ...)
{
	va_list ap;
	char *why;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	why = len < 0 ? NULL : malloc((size_t)len + 1);
	if (why) {
		va_start(ap, fmt);
		vsnprintf(why, (size_t)len + 1, fmt, ap);
		va_end(ap);
	}
	free(out->why);
	out->why = why;
	return r;
}

/* ------------------------------------------------------------------ */
/* The check and the cut */

/* One pass over the input: the check in spill mode, its ids in an idsort
 * over a scratch file, the lines' lengths to the split. */
struct pass {
	int fd; /* the input */
	struct jsonl_check check;
	struct idsort ids;
	struct job_split split;
	uint64_t line_start; /* where the current line starts */
	uint64_t lineno;     /* lines ended so far */
	int request;	     /* the current line has a byte not blank */
	uint64_t split_line; /* the line the split failed at, or 0 */
};

static ssize_t pass_pread(void *ctx, char *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(((struct pass *)ctx)->fd, buf, len, (off_t)off);

	return n < 0 ? -errno : n;
}

static int pass_spill(void *ctx, uint64_t hash, uint64_t off, uint64_t line)
{
	return idsort_add(&((struct pass *)ctx)->ids, hash, off, line);
}

static int pass_same(void *ctx, uint64_t a, uint64_t b)
{
	return jsonl_check_same_id(&((struct pass *)ctx)->check, a, b);
}

static int pass_repeat(void *ctx, uint64_t line, uint64_t first, uint64_t off)
{
	jsonl_check_repeat(&((struct pass *)ctx)->check, line, first, off);
	return 0;
}

/* A line of len bytes has ended: told to the split. */
static void pass_line(struct pass *p, uint64_t len)
{
	p->lineno++;
	if (job_split_line(&p->split, len, p->request) < 0 && !p->split_line)
		p->split_line = p->lineno;
	p->request = 0;
}

/* Whether s (n bytes) has a byte not blank. */
static int any_request_byte(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 1;
	return 0;
}

/* The lines of buf (len bytes at offset at of the input): memchr finds
 * their ends, and a line's bytes are looked at only until one is not
 * blank (its first, in a request line). */
static void pass_scan(struct pass *p, const char *buf, size_t len, uint64_t at)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - buf) : len;

		if (!p->request)
			p->request = any_request_byte(buf + i, end - i);
		if (!nl)
			break;
		pass_line(p, at + end + 1 - p->line_start);
		p->line_start = at + end + 1;
		i = end + 1;
	}
}

/*
 * Read the input once into the check and the split, then find the repeated
 * ids: 0, -EINVAL with why, or -errno.
 */
static int pass_run(struct pass *p, uint64_t size, struct job_outcome *out)
{
	char *buf = malloc(READ_CHUNK);
	uint64_t at = 0;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (at < size) {
		size_t want =
		    size - at < READ_CHUNK ? (size_t)(size - at) : READ_CHUNK;
		ssize_t n = pread(p->fd, buf, want, (off_t)at);

		if (n <= 0) {
			r = fail(out, -EIO, "the staged input cannot be read");
			goto out;
		}
		jsonl_check_feed(&p->check, buf, (size_t)n);
		pass_scan(p, buf, (size_t)n, at);
		at += (uint64_t)n;
	}
	if (p->line_start < size)
		pass_line(p, size - p->line_start);
	jsonl_check_eof(&p->check);
	r = idsort_repeats(&p->ids, pass_same, pass_repeat, p);
	if (r < 0)
		r = fail(out, r, "the check of custom_ids failed: %s",
			 strerror(-r));
out:
	free(buf);
	return r;
}

/* The problem of a split that failed with r (at line p->split_line) as a
 * line of the report into msg, or "" when the check reports it already
 * (a request after a blank line, no request) or it is no problem of the
 * input. */
static void split_problem(const struct pass *p, int r, uint64_t part_size,
			  char *msg, size_t len)
{
	msg[0] = '\0';
	if (r == -EFBIG)
		snprintf(msg, len,
			 "%s:%" PRIu64 ": line %" PRIu64
			 " is longer than the part size (%" PRIu64 " bytes)\n",
			 p->check.name, p->split_line, p->split_line,
			 part_size);
	else if (r == -E2BIG)
		snprintf(msg, len,
			 "%s: needs more than %d parts (at most part_size "
			 "bytes and part_requests requests each)\n",
			 p->check.name, JOB_PARTS_MAX);
}

/* job_check of a valid name, its input's name filename. */
static int check_and_cut(const struct job_create *jc, int fd, uint64_t size,
			 const char *filename, struct job_outcome *out)
{
	struct pass p = {.fd = fd};
	uint64_t part_size = jc->part_size && jc->part_size < JSONL_MAX_BYTES
				 ? jc->part_size
				 : JSONL_MAX_BYTES;
	char scratch[CACHE_TMP_NAME_MAX], msg[512];
	int sfd, r, rc, rs;

	sfd = cache_tmp_open(jc->cache_fd, CACHE_TMP_SCRATCH, NULL, scratch,
			     sizeof(scratch));
	if (sfd < 0)
		return fail(out, sfd, "no scratch file in the cache dir: %s",
			    strerror(-sfd));
	unlinkat(jc->cache_fd, scratch, 0); /* nothing left behind */
	r = idsort_init(&p.ids, sfd,
			jc->check_mem ? jc->check_mem : JOB_CHECK_MEM);
	if (r < 0) {
		close(sfd);
		return fail(out, r, "%s", strerror(-r));
	}
	jsonl_check_init(&p.check, filename);
	jsonl_check_source(&p.check, size, pass_pread, &p);
	jsonl_check_spill(&p.check, pass_spill, &p);
	job_split_init(&p.split, part_size,
		       jc->part_requests ? jc->part_requests
					 : JOB_PART_REQUESTS,
		       JOB_PARTS_MAX);
	r = pass_run(&p, size, out);
	if (r < 0)
		goto out;
	rc = jsonl_check_end(&p.check);
	rs = job_split_end(&p.split);
	split_problem(&p, rs, part_size, msg, sizeof(msg));
	if (rc == -EINVAL || msg[0]) {
		/* The check's report, then the split's problem. */
		r = fail(out, -EINVAL, "%s%s",
			 rc == -EINVAL ? jsonl_check_report(&p.check) : "",
			 msg);
	} else if (rc < 0 || rs == -ENOMEM) {
		r = rc < 0 ? rc : rs;
		r = fail(out, r, "the check failed: %s", strerror(-r));
	} else if (rs < 0) {
		/* Refused by the check already; here for safety. */
		r = fail(out, -EINVAL, "%s: no request to send\n",
			 p.check.name);
	} else {
		out->parts = calloc(p.split.nparts, sizeof(*out->parts));
		if (!out->parts) {
			r = fail(out, -ENOMEM, "%s", strerror(ENOMEM));
			goto out;
		}
		out->nparts = p.split.nparts;
		for (size_t i = 0; i < p.split.nparts; i++) {
			uint64_t from = i ? p.split.ends[i - 1] : 0;

			out->parts[i].offset = from;
			out->parts[i].length = p.split.ends[i] - from;
		}
	}
out:
	job_split_free(&p.split);
	jsonl_check_free(&p.check);
	idsort_free(&p.ids);
	close(sfd);
	return r;
}

/* ------------------------------------------------------------------ */
/* What the server has */

/* Whether a batch tagged t is in the way of making round round of its
 * job afresh: for the first round any batch of the job, for a retry round
 * any batch of that round or a later one. */
static int in_the_way(const struct job_tag *t, unsigned round)
{
	return t->round >= round;
}

/*
 * The job's batches of round rd->round in the batch listing (its newest
 * batches brought in first): each part's batch into out->parts. 0;
 * -EEXIST with why when the job (for a retry round: that round or a
 * later one) exists and resume is 0, or when the round was cut into
 * another number of parts; -errno when the list cannot be read.
 */
static int find_batches(const struct job_create *jc, struct op *op,
			const char *name, const struct job_round *rd,
			int resume, struct job_outcome *out)
{
	char **ids = NULL, why[256];
	size_t n = 0;
	int r = batches_newest(jc->batches, op);

	if (r == 0)
		r = batches_list(jc->batches, op, &ids, &n);
	if (r < 0)
		return fail(out, r, "the list of batches cannot be read: %s",
			    strerror(-r));
	for (size_t i = 0; i < n && r == 0; i++) {
		struct batch *b = NULL;
		struct job_tag t;

		if (batches_get(jc->batches, op, ids[i], STORE_ANY, &b, NULL) <
		    0)
			continue;
		if (b->tagged && job_tag_of(b, &t, why, sizeof(why)) == 1 &&
		    strcmp(t.job, name) == 0) {
			int ours = t.round == rd->round && !t.retries[0];

			if (!resume && in_the_way(&t, rd->round))
				r = rd->round
					? fail(out, -EEXIST,
					       "job %s has round %u already "
					       "(batch %s)",
					       name, t.round, b->id)
					: fail(out, -EEXIST,
					       "job %s exists (batch %s)", name,
					       b->id);
			else if (resume && ours && t.parts != out->nparts)
				r = fail(out, -EEXIST,
					 "job %s exists with %u parts, and "
					 "this input makes %zu: another input",
					 name, t.parts, out->nparts);
			else if (resume && ours &&
				 !out->parts[t.part - 1].batch[0]) {
				struct job_part *pt = &out->parts[t.part - 1];

				pt->state = JOB_PART_EXISTED;
				snprintf(pt->batch, sizeof(pt->batch), "%s",
					 b->id);
				/* Its input, for find_files to compare. */
				if (batch_file_id(b, "input_file_id", pt->file,
						  sizeof(pt->file)) < 0)
					pt->file[0] = '\0';
			}
		}
		batch_unref(b);
	}
	listing_free_ids(ids, n);
	return r;
}

/* The account's files: how many, how many bytes. */
struct room {
	uint64_t files, bytes;
};

/* The part of n of round round of job name that file f's name is
 * (job_part_name), from 0, or -1 when it is none. */
static long part_of_file(const char *name, unsigned round, size_t n,
			 const struct file *f)
{
	char want[NAME_MAX + 1];
	unsigned part;
	size_t len;

	/* What all parts' names start with: part 1's, less its tail
	 * ".part-0001-of-NNNN.jsonl". */
	if (job_part_name(name, round, 1, (unsigned)n, want, sizeof(want)) < 0)
		return -1;
	len = strlen(want) - strlen(".part-0001-of-0001.jsonl");
	if (strncmp(f->filename, want, len) != 0 ||
	    sscanf(f->filename + len, ".part-%4u-", &part) != 1 || part == 0 ||
	    part > n ||
	    job_part_name(name, round, part, (unsigned)n, want, sizeof(want)) <
		0 ||
	    strcmp(f->filename, want) != 0)
		return -1;
	return (long)part - 1;
}

/* -EEXIST with why when file f is the input of a part of out that exists
 * and is not of that part's size (the job was made of another input); else
 * 0. */
static int part_differs(const char *name, const struct job_outcome *out,
			const struct file *f, struct job_outcome *res)
{
	for (size_t i = 0; i < out->nparts; i++) {
		const struct job_part *pt = &out->parts[i];

		if (pt->state == JOB_PART_EXISTED &&
		    strcmp(pt->file, f->id) == 0 &&
		    (uint64_t)f->bytes != pt->length)
			return fail(res, -EEXIST,
				    "job %s exists, and its part %zu/%zu "
				    "(%s, %" PRId64 " bytes) is not that of "
				    "this input (%" PRIu64 " bytes): another "
				    "input",
				    name, i + 1, out->nparts, f->id, f->bytes,
				    pt->length);
	}
	return 0;
}

/*
 * Read the file listing: the account's room used into *used, and for each
 * part without a batch the newest file an earlier attempt left for it
 * (its part's name and exact size). 0, or -errno with why: -EEXIST when
 * the input of a part that exists has another size than this input's
 * part (the job was made of another input; a file deleted since is not
 * compared).
 */
static int find_files(const struct job_create *jc, struct op *op,
		      const char *name, unsigned round, struct job_outcome *out,
		      struct room *used)
{
	char **ids = NULL;
	size_t n = 0;
	int r = files_list(jc->files, op, &ids, &n);

	if (r < 0)
		return fail(out, r, "the list of files cannot be read: %s",
			    strerror(-r));
	*used = (struct room){0};
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct file *f = NULL;
		struct job_part *pt;
		long p;

		used->files++; /* its bytes unknown when it cannot be read */
		if (files_get(jc->files, op, ids[i], STORE_ANY, &f, NULL) < 0)
			continue;
		used->bytes += f->bytes > 0 ? (uint64_t)f->bytes : 0;
		r = part_differs(name, out, f, out);
		p = part_of_file(name, round, out->nparts, f);
		pt = p >= 0 ? &out->parts[p] : NULL;
		/* Its part's exact size too (its bytes are not compared:
		 * only an attempt that made no batch leaves such a file). */
		if (pt && pt->state == JOB_PART_UNTRIED && !pt->file[0] &&
		    (uint64_t)f->bytes == pt->length) {
			snprintf(pt->file, sizeof(pt->file), "%s", f->id);
			pt->reused = 1;
		}
		file_unref(f);
	}
	listing_free_ids(ids, n);
	return r;
}

/* -EDQUOT with why when the parts still to upload do not fit beside what
 * the account holds (used); else 0. */
static int check_room(const struct job_outcome *out, const struct room *used,
		      struct job_outcome *res)
{
	struct room need = {0};
	uint64_t files_over, bytes_over;

	for (size_t i = 0; i < out->nparts; i++)
		if (out->parts[i].state == JOB_PART_UNTRIED &&
		    !out->parts[i].file[0]) {
			need.files++;
			need.bytes += out->parts[i].length;
		}
	files_over = used->files + need.files > JOB_ACCOUNT_FILES
			 ? used->files + need.files - JOB_ACCOUNT_FILES
			 : 0;
	bytes_over = used->bytes + need.bytes > JOB_ACCOUNT_BYTES
			 ? used->bytes + need.bytes - JOB_ACCOUNT_BYTES
			 : 0;
	if (!files_over && !bytes_over)
		return 0;
	return fail(res, -EDQUOT,
		    "the account has no room: the job needs %" PRIu64
		    " files of %" PRIu64 " bytes, the account holds %" PRIu64
		    " of %d files and %" PRIu64 " of %llu bytes: %" PRIu64
		    " files and %" PRIu64 " bytes missing",
		    need.files, need.bytes, used->files, JOB_ACCOUNT_FILES,
		    used->bytes, JOB_ACCOUNT_BYTES, files_over, bytes_over);
}

/* ------------------------------------------------------------------ */
/* Making the parts */

/* Upload part i of job name unless an earlier attempt did: its file id
 * into pt->file. 0, or -errno with why. */
static int part_upload(const struct job_create *jc, struct op *op,
		       const char *name, unsigned round, int fd, size_t i,
		       size_t n, struct job_part *pt, char *why, size_t whylen)
{
	struct submit_source src = {
	    .fd = fd, .offset = pt->offset, .length = pt->length};
	char filename[NAME_MAX + 1];
	struct file *f = NULL;
	int r;

	if (pt->file[0])
		return 0;
	r = job_part_name(name, round, (unsigned)i + 1, (unsigned)n, filename,
			  sizeof(filename));
	if (r < 0)
		return util_reason(r, why, whylen, "no part name for %s", name);
	r = submit_upload_from(jc->submit, op, &src, filename, &f, why, whylen);
	if (r < 0)
		return r;
	snprintf(pt->file, sizeof(pt->file), "%s", f->id);
	file_unref(f);
	return 0;
}

/* Make part i's batch of its file, like rd->like (or with the default
 * endpoint and jc's window), tagged with round rd->round: its id into
 * pt->batch. 0, or -errno with why. */
static int part_batch(const struct job_create *jc, struct op *op,
		      const char *name, const struct job_round *rd, size_t i,
		      size_t n, struct job_part *pt, char *why, size_t whylen)
{
	struct batch_params p = {0};
	struct job_tag t = {
	    .part = (unsigned)i + 1, .parts = (unsigned)n, .round = rd->round};
	struct batch *b = NULL;
	int r = -ENOMEM;

	snprintf(t.job, sizeof(t.job), "%s", name);
	if (rd->like) {
		r = params_copy(rd->like, &p);
	} else {
		p.endpoint = strdup(PARAMS_ENDPOINT);
		p.completion_window = strdup(jc->completion_window);
	}
	free(p.input_file_id);
	p.input_file_id = strdup(pt->file);
	if (!p.input_file_id || !p.endpoint || !p.completion_window) {
		r = -ENOMEM;
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		goto out;
	}
	r = job_tag_write(&t, &p, why, whylen);
	if (r < 0)
		goto out;
	r = submit_create(jc->submit, op, &p, &b, why, whylen);
	if (r < 0)
		goto out;
	snprintf(pt->batch, sizeof(pt->batch), "%s", b->id);
	batch_unref(b);
out:
	params_free(&p);
	return r;
}

/* Make every part of round rd without a batch, in order; stop at the
 * first failure. */
static int make_parts(const struct job_create *jc, struct op *op,
		      const char *name, const struct job_round *rd, int fd,
		      struct job_outcome *out)
{
	char why[1024] = "", round[32] = "";
	size_t n = out->nparts;

	if (rd->round)
		snprintf(round, sizeof(round), " round %u", rd->round);
	for (size_t i = 0; i < n; i++) {
		struct job_part *pt = &out->parts[i];
		int r;

		if (pt->state == JOB_PART_EXISTED) {
			log_info("job %s%s: part %zu/%zu: exists as %s", name,
				 round, i + 1, n, pt->batch);
			continue;
		}
		r = op->interrupted
			? util_reason(-EINTR, why, sizeof(why), "interrupted")
			: part_upload(jc, op, name, rd->round, fd, i, n, pt,
				      why, sizeof(why));
		if (r == 0)
			r = part_batch(jc, op, name, rd, i, n, pt, why,
				       sizeof(why));
		if (r < 0) {
			pt->state = JOB_PART_FAILED;
			return fail(out, r, "part %zu/%zu: %s", i + 1, n, why);
		}
		pt->state = JOB_PART_MADE;
		log_info("job %s%s: part %zu/%zu: %s from %s%s", name, round,
			 i + 1, n, pt->batch, pt->file,
			 pt->reused ? " (uploaded before)" : "");
	}
	return 0;
}

int job_check(const struct job_create *jc, const char *name, int fd,
	      uint64_t size, struct job_outcome *out)
{
	char filename[NAME_MAX + 1];

	memset(out, 0, sizeof(*out));
	if (!job_name_valid(name))
		return fail(out, -EINVAL, "%s is not a job's name", name);
	snprintf(filename, sizeof(filename), "%s.jsonl", name);
	return check_and_cut(jc, fd, size, filename, out);
}

/* Seconds the requests of making the parts of out may take in all: -o
 * timeout for the lists, and for each part its upload's bound
 * (submit_upload_bound) and -o timeout for its creation. */
static double parts_bound(const struct job_create *jc,
			  const struct job_outcome *out)
{
	double timeout = jc->submit->opts->timeout, t = timeout;

	for (size_t i = 0; i < out->nparts; i++)
		t += submit_upload_bound(jc->submit, out->parts[i].length) +
		     timeout;
	return t;
}

int job_create(const struct job_create *jc, struct op *op, const char *name,
	       int fd, uint64_t size, int resume, struct job_outcome *out)
{
	static const struct job_round first = {0};

	return job_create_round(jc, op, name, &first, fd, size, resume, out);
}

int job_create_round(const struct job_create *jc, struct op *op,
		     const char *name, const struct job_round *rd, int fd,
		     uint64_t size, int resume, struct job_outcome *out)
{
	struct room used = {0};
	int r = job_check(jc, name, fd, size, out);

	/* The check is local and may be long: the requests' time starts
	 * after it. */
	if (r == 0)
		op->deadline = util_now() + parts_bound(jc, out);
	if (r == 0)
		r = find_batches(jc, op, name, rd, resume, out);
	if (r == 0)
		r = find_files(jc, op, name, rd->round, out, &used);
	if (r == 0)
		r = check_room(out, &used, out);
	if (r == 0)
		r = make_parts(jc, op, name, rd, fd, out);
	/* A part's failure too; a round found made is no error here. */
	if (r < 0 && out->why && !(rd->round && r == -EEXIST))
		log_err("job %s: %s", name, out->why);
	return r;
}

void job_outcome_free(struct job_outcome *o)
{
	free(o->parts);
	free(o->why);
	memset(o, 0, sizeof(*o));
}
