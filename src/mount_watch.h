/*
 * mount_watch.h - notice that the tree was detached (`fusermount3 -uz`, a
 * lazy umount) while files of it are still open. The kernel tells the
 * daemon nothing until the last of them is closed, so a pending read of
 * batches/<id>/wait would keep the detached tree alive until its batch
 * ends. A thread polls /proc/self/mountinfo (the kernel wakes a poll of it
 * at each change of the mount table) and calls a hook once the tree's
 * device is no longer mounted anywhere.
 */
#ifndef KIMIFS_MOUNT_WATCH_H
#define KIMIFS_MOUNT_WATCH_H

#include <pthread.h>

struct mount_watch {
	unsigned major, minor;	      /* the tree's device */
	int mounts_fd;		      /* /proc/self/mountinfo */
	int stop_fd[2];		      /* a pipe: written to end the thread */
	void (*on_detach)(void *arg); /* called once, from the thread */
	void *arg;
	pthread_t thread;
	int started;
};

/*
 * In text (the content of a mountinfo file, NUL-terminated), the device
 * of the last mount of type fstype at mount point path (as the kernel
 * shows it unescaped): 0 with *major and *minor set, or -ENOENT.
 */
int mountinfo_find(const char *text, const char *path, const char *fstype,
		   unsigned *major, unsigned *minor);

/* Whether text (a mountinfo) has a mount of device major:minor. */
int mountinfo_has(const char *text, unsigned major, unsigned minor);

/*
 * Find the mount of type fstype at path (just mounted) and start the
 * thread that calls on_detach(arg) once it is gone. 0, or -errno (then
 * nothing is watched and nothing needs stopping; the caller goes on
 * without).
 */
int mount_watch_start(struct mount_watch *w, const char *path,
		      const char *fstype, void (*on_detach)(void *arg),
		      void *arg);

/* End the thread (if started) and free what it holds. May be called after
 * a failed start. */
void mount_watch_stop(struct mount_watch *w);

#endif
