/*
 * main.c - kimifs entry point: parse options (opts.c), print help or
 * version, read the API key (key.c), check the key and the URL with one
 * request, then mount and serve until unmounted or signalled; tear down in
 * reverse order.
 */
#include "fs.h"
#include "kimifs.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "key.h"
#include "events.h"
#include "log.h"
#include "mount_watch.h"

/* Most threads serving requests at once (see serve()). */
#define MAX_THREADS 1024
/* libfuse's own default, which the command line leaves when unset. */
#define FUSE_DEFAULT_MAX_THREADS 10

/* One request before mounting, so a bad key or URL never mounts a broken
 * tree. 0 or -1 with a one-line reason. */
static int check_api(struct kimifs *k)
{
	struct api_error err;
	char why[600];
	int r = api_check(&k->api, &err);

	if (r == 0)
		return 0;
	api_error_text(&err, r, why, sizeof(why));
	if (r == -EPROTO)
		fprintf(
		    stderr,
		    "kimifs: %s is not the Batch API: its answer to GET "
		    "/v1/batches is not a batch list (%s); check base_url\n",
		    k->opts.base_url, err.message);
	else if (err.fail == API_FAIL_DENIED)
		fprintf(stderr, "kimifs: the API key was refused by %s (%s)\n",
			k->opts.base_url, why);
	else if (api_error_answered(&err))
		fprintf(stderr, "kimifs: %s answered %s\n", k->opts.base_url,
			why);
	else
		fprintf(stderr, "kimifs: cannot reach %s: %s\n",
			k->opts.base_url, why);
	return -1;
}

/* The disk cache's download: the content endpoint of the API. */
static int download_file(void *ctx, struct op *op, const char *id, int fd,
			 void (*on_sink)(void *, size_t), void *arg,
			 size_t *len, struct api_error *err)
{
	return api_download_file(ctx, op, id, fd, on_sink, arg, len, err);
}

/*
 * The waits' bulk poll (watch.h): one refresh of the listing of batches/
 * (with its early stop) instead of a retrieve per waited batch, when more
 * listed batches are due than a whole listing has pages.
 */
static size_t listing_cost(void *ctx)
{
	struct listing *l = &((struct batches *)ctx)->listing;
	size_t pages;

	pthread_mutex_lock(&l->lock);
	pages = l->valid ? l->nids / l->page_size + 1 : (size_t)-1;
	pthread_mutex_unlock(&l->lock);
	return pages;
}

static int listing_poll(void *ctx, struct op *op)
{
	struct batches *b = ctx;

	return listing_refresh(&b->listing, op, store_clock(&b->store), 0);
}

static int listing_lists(void *ctx, const char *id)
{
	return listing_has(&((struct batches *)ctx)->listing, id);
}

/* What the signal handler acts on: a handler can only reach globals. */
static struct {
	struct kimifs *k;
	struct fuse_session *se;
} sig_target;

static void on_signal(int sig)
{
	(void)sig;
	/* Abort requests under way first, so no worker holds the exit up. */
	api_stop(&sig_target.k->api);
	fuse_session_exit(sig_target.se);
}

static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP};

/* SIGTERM, SIGINT and SIGHUP unmount cleanly; SIGPIPE is ignored. */
static int set_signals(struct kimifs *k, struct fuse_session *se)
{
	struct sigaction sa = {0};

	sig_target.k = k;
	sig_target.se = se;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(int); i++)
		if (sigaction(stop_signals[i], &sa, NULL) < 0)
			return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

static void unset_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(int); i++)
		sigaction(stop_signals[i], &sa, NULL);
}

/*
 * Serve requests until unmounted or signalled. Threads are started as
 * requests wait, up to max_threads (default MAX_THREADS, far above libfuse's
 * 10, so that requests waiting on a slow server never hold back df or
 * cached reads). Returns the loop's result.
 */
static int serve(struct fuse_session *se, const struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *lc;
	int r;

	if (cmd->singlethread)
		return fuse_session_loop(se);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(lc, (unsigned)cmd->clone_fd);
	fuse_loop_cfg_set_max_threads(
	    lc, cmd->max_threads != FUSE_DEFAULT_MAX_THREADS &&
			cmd->max_threads > 0 && cmd->max_threads <= 100000
		    ? cmd->max_threads
		    : MAX_THREADS);
	if (cmd->max_idle_threads != UINT_MAX) /* UINT_MAX: unset */
		fuse_loop_cfg_set_idle_threads(lc, cmd->max_idle_threads);
	r = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	return r;
}

/* The tree was detached (fusermount3 -uz) with files still open: pending
 * waits end (ENOTCONN), as at any other end of the mount, and so does
 * MOUNT/events (its readers' reads and fstat: tail -f too), so that their
 * readers close and the kernel lets kimifs go. */
static void on_detach(void *arg)
{
	struct kimifs *k = arg;
	size_t n = watches_stop(&k->watches), e = events_stop();

	/* Also at a plain unmount, which no open file held up: no wait. */
	if (n)
		log_info("the mount was detached (lazy unmount): %zu pending "
			 "wait%s ended",
			 n, n == 1 ? "" : "s");
	if (e)
		log_info("the mount was detached (lazy unmount): %zu pending "
			 "read%s of events ended",
			 e, e == 1 ? "" : "s");
}

/*
 * Up to MAX_THREADS threads allocate and free snapshots: with glibc's
 * default of up to eight malloc arenas per core, memory freed by one
 * thread stays in its arena and the daemon grows with every listing.
 * Two arenas keep it flat (docs/benchmarks.md); kimifs waits on the
 * network, not on malloc. MALLOC_ARENA_MAX in the environment still wins.
 */
static void bound_arenas(void)
{
#ifdef M_ARENA_MAX
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
#endif
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct kimifs k = {0};
	struct fuse_session *se = NULL;
	struct mount_watch mw;
	struct node root;
	char why[512];
	int ret = 1, r, watching;

	bound_arenas();
	if (opts_parse(&args, &k.opts) < 0)
		goto out_args;
	if (k.opts.show_help) {
		opts_usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (k.opts.show_version) {
		printf("kimifs %s\nlibfuse %s\nlibcurl %s\ncJSON %s\n",
		       KIMIFS_VERSION, fuse_pkgversion(),
		       curl_version_info(CURLVERSION_NOW)->version,
		       cJSON_Version());
		fflush(stdout); /* before fusermount3 prints its own */
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &cmd) < 0)
		goto out_args;
	if (!cmd.mountpoint) {
		fprintf(stderr,
			"usage: %s [options] MOUNTPOINT "
			"(--help for more)\n",
			argv[0]);
		goto out_args;
	}
	log_init(1, cmd.debug);
	if (opts_check(&k.opts) < 0 ||
	    !(k.api_key = key_load(k.opts.api_key_file)))
		goto out_args;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "kimifs: libcurl failed to start\n");
		goto out_args;
	}
	stats_init(&k.stats);
	if (api_init(&k.api, &k.opts, k.api_key, &k.stats) < 0)
		goto out_curl;
	/* Until the store is gone: its probes may still call fs's hook. */
	pthread_mutex_init(&k.notify_lock, NULL);
	if (k.opts.insecure)
		log_warn("TLS certificate verification is OFF (-o insecure): "
			 "anyone on the path can read the API key");
	/* Before any request: a cache_dir that cannot be used is refused
	 * like a bad option. */
	if (cache_init(&k.cache, k.opts.cache_dir, k.opts.cache_size,
		       download_file, &k.api, why, sizeof(why)) < 0) {
		fprintf(stderr, "kimifs: %s\n", why);
		goto out_api;
	}
	k.cache.stats = &k.stats;
	stage_init(&k.stage, k.cache.dir, k.cache.dirfd);
	if (job_keep_init(&k.job_keep, k.cache.dir, k.cache.dirfd) < 0)
		goto out_cache;
	STAT_SET(&k.stats, disk_bytes, k.cache.used);
	if (check_api(&k) < 0)
		goto out_cache;
	if (batches_init(&k.batches, &k.api, k.opts.cache_ttl, k.opts.timeout,
			 k.opts.page_size) < 0)
		goto out_cache;
	k.batches.store.stats = &k.stats;
	jobs_init(&k.jobs, &k.batches);
	if (files_init(&k.files, &k.api, k.opts.cache_ttl, k.opts.timeout,
		       k.opts.page_size) < 0)
		goto out_batches_only;
	k.files.store.stats = &k.stats;
	file_ctl_init(&k.file_ctl, &k.api, &k.files, &k.cache);
	k.submit = (struct submit){.api = &k.api,
				   .batches = &k.batches,
				   .files = &k.files,
				   .opts = &k.opts};
	k.job_create =
	    (struct job_create){.batches = &k.batches,
				.files = &k.files,
				.submit = &k.submit,
				.cache_fd = k.cache.dirfd,
				.part_size = k.opts.part_size,
				.part_requests = k.opts.part_requests,
				.completion_window = k.opts.completion_window};
	results_cache_init(&k.results, &k.cache);
	k.job_retry = (struct job_retry){.jobs = &k.jobs,
					 .create = &k.job_create,
					 .cache = &k.cache,
					 .results = &k.results};
	job_results_init(&k.job_results, &k.results, &k.cache);
	ctl_init(&k.ctl, &k.api, &k.batches, &k.files, &k.cache, &k.results,
		 &k.submit);
	job_ctl_init(&k.job_ctl, &k.api, &k.batches, &k.jobs, &k.file_ctl,
		     &k.job_create, &k.job_keep);
	k.job_ctl.retry = &k.job_retry;
	tree_root(&root);
	if (inodes_init(&k.inodes, &root) < 0)
		goto out_batches;
	pthread_mutex_init(&k.open_lock, NULL);
	/* The waits of batches/<id>/wait poll from 1 s up to poll_interval. */
	if (watches_init(&k.watches, &k.batches.store, 1.0,
			 k.opts.poll_interval, k.opts.timeout) < 0)
		goto out_open;
	k.watches.bulk = (struct watch_bulk){listing_cost, listing_poll,
					     listing_lists, &k.batches};
	k.tree = (struct tree){.opts = &k.opts,
			       .batches = &k.batches,
			       .files = &k.files,
			       .jobs = &k.jobs,
			       .ctl = &k.ctl,
			       .file_ctl = &k.file_ctl,
			       .cache = &k.cache,
			       .results = &k.results,
			       .job_results = &k.job_results,
			       .stage = &k.stage,
			       .submit = &k.submit,
			       .job_create = &k.job_create,
			       .job_retry = &k.job_retry,
			       .job_auto = &k.job_auto,
			       .job_ctl = &k.job_ctl,
			       .job_keep = &k.job_keep,
			       .stats = &k.stats,
			       .mount_time = time(NULL),
			       .uid = getuid(),
			       .gid = getgid()};

	/* Mode bits are enforced by the kernel; name the filesystem. */
	if (fuse_opt_add_arg(&args, "-odefault_permissions,fsname=kimifs,"
				    "subtype=kimifs," FS_MAX_READ_OPT) < 0)
		goto out_watches;
	se = fuse_session_new(&args, fs_operations(),
			      sizeof(struct fuse_lowlevel_ops), &k);
	if (!se)
		goto out_watches;
	if (fuse_session_mount(se, cmd.mountpoint) < 0)
		goto out_session;
	fs_attach(&k, se);
	log_init(cmd.foreground, cmd.debug);
	if (fuse_daemonize(cmd.foreground) < 0)
		goto out_unmount;
	if (set_signals(&k, se) < 0)
		goto out_unmount;
	/* Before the workers start, so that they inherit SIGUSR1 blocked. */
	if (stats_signals_start(&k.stats) < 0)
		goto out_signals;
	/* Without it (no /proc), a lazy unmount leaves waits to their end. */
	watching = mount_watch_start(&mw, cmd.mountpoint, "fuse.kimifs",
				     on_detach, &k) == 0;
	fs_waits_init(&k.waits);
	/* Without it, no job line in MOUNT/events (logged). */
	job_watch_init(&k.job_watch, &k.jobs);
	job_watch_start(&k.job_watch, &k.batches.store);
	/* Without it, no round is made by itself (logged). */
	job_auto_start(&k.job_auto, &k.job_retry, &k.job_ctl, &k.jobs,
		       &k.batches.store, k.opts.retry_rounds, k.opts.timeout);
	r = serve(se, &cmd);
	if (watching)
		mount_watch_stop(&mw);
	/* Waits still pending end (ENOTCONN) while the session can reply. */
	watches_stop(&k.watches);
	events_stop();
	fs_waits_drain(&k.waits);
	/* After the waits, which ask it whether a round is due. */
	job_auto_stop(&k.job_auto);
	job_watch_stop(&k.job_watch);
	/* A signal ends the loop with that signal's number: a clean exit. */
	ret = (r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ||
	       r == -SIGTERM || r == -SIGINT || r == -SIGHUP)
		  ? 0
		  : 1;
	stats_signals_stop();
out_signals:
	unset_signals();
out_unmount:
	fs_detach(&k);
	fuse_session_unmount(se);
out_session:
	fuse_session_destroy(se);
out_watches:
	watches_destroy(&k.watches);
out_open:
	pthread_mutex_destroy(&k.open_lock);
	inodes_destroy(&k.inodes);
out_batches:
	file_ctl_destroy(&k.file_ctl);
	job_results_destroy(&k.job_results);
	results_cache_destroy(&k.results);
	job_ctl_destroy(&k.job_ctl);
	ctl_destroy(&k.ctl);
	files_destroy(&k.files);
out_batches_only:
	jobs_destroy(&k.jobs);
	batches_destroy(&k.batches);
out_cache:
	job_keep_destroy(&k.job_keep);
	stage_destroy(&k.stage);
	cache_destroy(&k.cache);
out_api:
	pthread_mutex_destroy(&k.notify_lock);
	api_destroy(&k.api);
out_curl:
	curl_global_cleanup();
out_args:
	key_free(k.api_key);
	opts_free(&k.opts);
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	events_forget();
	log_forget();
	return ret;
}
