/*
 * test_mount_watch.c - unit tests of the reading of /proc/self/mountinfo
 * (mount_watch.h): the device of a mount point of a type, escapes undone,
 * the last of several mounts on one point, and whether a device is
 * mounted.
 */
#include <errno.h>

#include "check.h"
#include "mount_watch.h"

static const char info[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "40 22 0:41 / /tmp/mnt rw,nosuid shared:20 - fuse.kimifs kimifs "
    "rw,user_id=0\n"
    "41 22 0:42 / /tmp/with\\040space rw - fuse.kimifs kimifs rw\n"
    "42 22 0:43 / /tmp/mnt rw - fuse.sshfs host: rw\n"
    "43 40 0:44 / /tmp/mnt rw master:3 unbindable - fuse.kimifs kimifs rw\n"
    "44 22 0:45 / /tmp/cut";

int main(void)
{
	unsigned major = 9, minor = 9;

	CHECK(mountinfo_find(info, "/tmp/mnt", "fuse.kimifs", &major, &minor) ==
	      0);
	CHECK(major == 0 && minor == 44); /* the last, on top */
	CHECK(mountinfo_find(info, "/tmp/with space", "fuse.kimifs", &major,
			     &minor) == 0);
	CHECK(major == 0 && minor == 42);
	CHECK(mountinfo_find(info, "/tmp/mnt", "fuse.sshfs", &major, &minor) ==
	      0);
	CHECK(minor == 43);
	major = minor = 9;
	CHECK(mountinfo_find(info, "/tmp/nowhere", "fuse.kimifs", &major,
			     &minor) == -ENOENT);
	CHECK(mountinfo_find(info, "/tmp/cut", "fuse.kimifs", &major, &minor) ==
	      -ENOENT);
	CHECK(mountinfo_find("", "/", "ext4", &major, &minor) == -ENOENT);
	CHECK(major == 9 && minor == 9); /* untouched when not found */

	CHECK(mountinfo_has(info, 0, 41));
	CHECK(mountinfo_has(info, 8, 1));
	CHECK(!mountinfo_has(info, 0, 45)); /* a line cut short */
	CHECK(!mountinfo_has(info, 0, 40));
	CHECK(!mountinfo_has("", 0, 41));
	return check_done("test_mount_watch");
}
