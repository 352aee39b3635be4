/*
 * main.c - kimifs entry point: parse options, print help or version, read
 * the API key, check the key and the URL with one request, then mount and
 * serve until unmounted or signalled; tear down in reverse order.
 */
#include "fs.h"
#include "kimifs.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#ifndef KIMIFS_VERSION
#define KIMIFS_VERSION "dev"
#endif

#define DEFAULT_BASE_URL "https://api.moonshot.ai"
#define KEY_MAX		 4096
/* Most threads serving requests at once (see serve()). */
#define MAX_THREADS 1024
/* libfuse's own default, which the command line leaves when unset. */
#define FUSE_DEFAULT_MAX_THREADS 10

enum { KEY_HELP, KEY_VERSION, KEY_API_KEY };

#define KOPT(t, p)                                                             \
	{                                                                      \
		t, offsetof(struct kimifs, p), 1                               \
	}

static const struct fuse_opt kimifs_opts[] = {
    KOPT("base_url=%s", base_url),
    KOPT("api_key_file=%s", api_key_file),
    KOPT("cache_ttl=%lf", cache_ttl),
    KOPT("page_size=%u", page_size),
    KOPT("timeout=%lf", timeout),
    KOPT("connect_timeout=%lf", connect_timeout),
    KOPT("retries=%u", retries),
    KOPT("insecure", insecure),
    FUSE_OPT_KEY("api_key=", KEY_API_KEY),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct kimifs *k = data;

	(void)arg;
	(void)out;
	switch (key) {
	case KEY_API_KEY:
		fprintf(stderr,
			"kimifs: the API key is never given on the "
			"command line (it would show in ps): set "
			"MOONSHOT_API_KEY or use -o api_key_file=PATH\n");
		return -1;
	case KEY_HELP:
		k->show_help = 1;
		return 0;
	case KEY_VERSION:
		k->show_version = 1;
		return 0;
	default:
		return 1; /* keep it for libfuse */
	}
}

static void usage(const char *prog)
{
	printf(
	    "usage: %s [options] MOUNTPOINT\n\n"
	    "Mounts the Moonshot (Kimi) Batch API as a filesystem.\n"
	    "The API key comes from MOONSHOT_API_KEY or api_key_file.\n\n"
	    "kimifs options:\n"
	    "    -o base_url=URL        API base URL (MOONSHOT_BASE_URL; "
	    "default " DEFAULT_BASE_URL ")\n"
	    "    -o api_key_file=PATH   read the API key from PATH "
	    "(mode 0600 or stricter)\n"
	    "    -o cache_ttl=S         seconds a fetched batch stays fresh "
	    "(default 1; 0: refetch on every open)\n"
	    "    -o page_size=N         batches per list page (default 100)\n"
	    "    -o timeout=S           bound on the requests of one "
	    "operation, retries "
	    "included (default 30)\n"
	    "    -o connect_timeout=S   bound on one connection attempt "
	    "(default 10)\n"
	    "    -o retries=N           retries of 429, 5xx and network "
	    "failures (default 3)\n"
	    "    -o insecure            do not verify TLS certificates\n"
	    "\n",
	    prog);
}

/* Trim white space at both ends of s, in place. */
static char *trim(char *s)
{
	char *e = s + strlen(s);

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Read the key from path, refusing a file others may read. 0 or -1. */
static int read_key_file(struct kimifs *k, const char *path)
{
	char buf[KEY_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = -1;

	if (fd < 0) {
		fprintf(stderr, "kimifs: cannot open api_key_file %s: %s\n",
			path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "kimifs: api_key_file %s is not a file\n",
			path);
		goto out;
	}
	if (st.st_mode & 077) {
		fprintf(stderr,
			"kimifs: api_key_file %s is open to group or others "
			"(mode %03o); run: chmod 600 %s\n",
			path, (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	n = read(fd, buf, KEY_MAX);
	if (n < 0) {
		fprintf(stderr, "kimifs: cannot read api_key_file %s: %s\n",
			path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	k->api_key = strdup(trim(buf));
	memset(buf, 0, sizeof(buf));
	r = k->api_key ? 0 : -1;
out:
	close(fd);
	return r;
}

/* Find the key (file first, then environment) and check it can be sent as
 * a header. Scrubs the environment's copy. 0 or -1 with a message. */
static int load_key(struct kimifs *k)
{
	char *env = getenv("MOONSHOT_API_KEY");

	if (k->api_key_file) {
		if (read_key_file(k, k->api_key_file) < 0)
			return -1;
	} else if (env && *env) {
		k->api_key = strdup(trim(env));
		if (!k->api_key)
			return -1;
	}
	if (env) {
		/* /proc/PID/environ shows the original block: blank it. */
		memset(env, 'x', strlen(env));
		unsetenv("MOONSHOT_API_KEY");
	}
	if (!k->api_key || !*k->api_key) {
		fprintf(stderr, "kimifs: no API key: set MOONSHOT_API_KEY or "
				"use -o api_key_file=PATH\n");
		return -1;
	}
	for (const char *p = k->api_key; *p; p++) {
		if ((unsigned char)*p < 0x21 || *p == 0x7f) {
			fprintf(stderr, "kimifs: the API key holds a space or "
					"control character\n");
			return -1;
		}
	}
	return 0;
}

static int check_options(struct kimifs *k)
{
	const char *env = getenv("MOONSHOT_BASE_URL");

	if (!k->base_url)
		k->base_url = strdup(env && *env ? env : DEFAULT_BASE_URL);
	if (!k->base_url)
		return -1;
	if (strncmp(k->base_url, "https://", 8) != 0 &&
	    strncmp(k->base_url, "http://", 7) != 0) {
		fprintf(stderr, "kimifs: base_url must start with https:// "
				"or http://\n");
		return -1;
	}
	if (k->cache_ttl < 0 || k->timeout <= 0 || k->connect_timeout <= 0) {
		fprintf(stderr, "kimifs: cache_ttl must be >= 0, timeout and "
				"connect_timeout > 0\n");
		return -1;
	}
	if (k->page_size < 1 || k->page_size > 100) {
		fprintf(stderr, "kimifs: page_size must be 1 to 100\n");
		return -1;
	}
	if (k->retries > 10) {
		fprintf(stderr, "kimifs: retries must be 0 to 10\n");
		return -1;
	}
	return 0;
}

/* One request before mounting, so a bad key or URL never mounts a broken
 * tree. 0 or -1 with a one-line reason. */
static int check_api(struct kimifs *k)
{
	struct api_error err;
	int r = api_check(&k->api, &err);

	if (r == 0)
		return 0;
	if (r == -EACCES)
		fprintf(stderr,
			"kimifs: the API key was refused by %s (%d: %s)\n",
			k->base_url, err.http_status, err.message);
	else if (err.http_status)
		fprintf(stderr, "kimifs: %s answered %d: %s\n", k->base_url,
			err.http_status, err.message);
	else
		fprintf(stderr, "kimifs: cannot reach %s: %s\n", k->base_url,
			err.message);
	return -1;
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

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct kimifs k = {0};
	struct api_config ac;
	struct fuse_session *se = NULL;
	struct node root;
	int ret = 1, r;

	k.cache_ttl = 1;
	k.page_size = 100;
	k.timeout = 30;
	k.connect_timeout = 10;
	k.retries = 3;
	if (fuse_opt_parse(&args, &k, kimifs_opts, opt_proc) < 0)
		goto out_args;
	if (k.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (k.show_version) {
		printf("kimifs %s\n", KIMIFS_VERSION);
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
	if (check_options(&k) < 0 || load_key(&k) < 0)
		goto out_args;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "kimifs: libcurl failed to start\n");
		goto out_args;
	}
	ac = (struct api_config){k.base_url,	    k.api_key, k.timeout,
				 k.connect_timeout, k.retries, k.insecure};
	if (api_init(&k.api, &ac) < 0)
		goto out_curl;
	if (k.insecure)
		log_warn("TLS certificate verification is OFF (-o insecure): "
			 "anyone on the path can read the API key");
	if (check_api(&k) < 0)
		goto out_api;
	if (batches_init(&k.batches, &k.api, k.cache_ttl, k.page_size) < 0)
		goto out_api;
	ctl_init(&k.ctl);
	tree_root(&root);
	if (inodes_init(&k.inodes, &root) < 0)
		goto out_cache;
	pthread_mutex_init(&k.open_lock, NULL);
	k.mount_time = time(NULL);
	k.uid = getuid();
	k.gid = getgid();

	/* Mode bits are enforced by the kernel; name the filesystem. */
	if (fuse_opt_add_arg(&args, "-odefault_permissions,fsname=kimifs,"
				    "subtype=kimifs") < 0)
		goto out_inodes;
	se = fuse_session_new(&args, fs_operations(),
			      sizeof(struct fuse_lowlevel_ops), &k);
	if (!se)
		goto out_inodes;
	if (fuse_session_mount(se, cmd.mountpoint) < 0)
		goto out_session;
	log_init(cmd.foreground, cmd.debug);
	if (fuse_daemonize(cmd.foreground) < 0)
		goto out_unmount;
	if (set_signals(&k, se) < 0)
		goto out_unmount;
	r = serve(se, &cmd);
	/* A signal ends the loop with that signal's number: a clean exit. */
	ret = (r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ||
	       r == -SIGTERM || r == -SIGINT || r == -SIGHUP)
		  ? 0
		  : 1;
	unset_signals();
out_unmount:
	fuse_session_unmount(se);
out_session:
	fuse_session_destroy(se);
out_inodes:
	pthread_mutex_destroy(&k.open_lock);
	inodes_destroy(&k.inodes);
out_cache:
	ctl_destroy(&k.ctl);
	batches_destroy(&k.batches);
out_api:
	api_destroy(&k.api);
out_curl:
	curl_global_cleanup();
out_args:
	if (k.api_key) {
		memset(k.api_key, 0, strlen(k.api_key));
		free(k.api_key);
	}
	free(k.base_url);
	free(k.api_key_file);
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
