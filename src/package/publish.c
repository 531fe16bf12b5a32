/*-------------------------------------------------------------------------
 *
 * publish.c
 *	  Publishing a package tree on a distribution point's share in one
 *	  atomic step, and unpublishing it.
 *
 * Terms:
 *	share			a distribution point's <root>/SMS_PKGx directory.
 *	published tree	<share>/<package id>: what clients see.
 *	temporary		a sibling of the published tree that only smsdist uses:
 *					.<package id>.new.<pid>: the copy being made; after the
 *						swap, the old version being removed;
 *					.<package id>.old.<pid>: an unpublished or replaced
 *						version being removed.
 *					The leading dot hides it from most clients; the pid keeps
 *					a crashed process's leftovers apart from ours.  Every
 *					temporary of a package is removed when that package is
 *					next published or unpublished on the share, so re-running
 *					a step after a crash gives the same result.  Callers
 *					serialize the publishing of one package to one share.
 *
 * A reader sees the old tree or the new one, never a mixture: the new
 * version is copied beside the old one (or, when the caller allows it and
 * both are on one file system, the source tree itself is moved there), made
 * durable (an fsync per file of a small tree, one syncfs() of a larger
 * one), and then one rename makes it visible -- renameat2(RENAME_EXCHANGE)
 * when a version is already published, so that the name never disappears.
 * File systems without RENAME_EXCHANGE (NFS, CIFS) get two renames, with a
 * moment in which nothing is published.  If anything fails before the swap
 * (a full disk, typically) the temporary copy is removed and the old version
 * stays as it was.
 *
 * Modes and times: files keep their permission bits (without setuid,
 * setgid, sticky); directories keep theirs with setgid and sticky (never
 * setuid), with rwx for the owner so that the server can always remove
 * them; the published tree's own directory is 0755, whatever the private
 * directory it was copied from had, because clients must read it.  Files,
 * links and directories keep their modification times to the nanosecond,
 * a directory's set once its contents are copied.
 *
 * Every directory walk works on descriptors (openat, mkdirat, unlinkat, all
 * with O_NOFOLLOW) rather than path names, so a symbolic link in a tree is
 * never followed: the copy makes a link with the same target (the tree
 * copied was checked against its manifest, whose links follow the link
 * rule of package_manifest.h), and the removal (file_util.c) unlinks it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "validate.h"
#include "message_text.h"
#include "publish.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_util.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* read/write fallback buffer, and the most one copy_file_range call moves */
#define COPY_BUFFER_SIZE	(1024 * 1024)
#define COPY_CHUNK			((size_t) 64 * 1024 * 1024)

typedef struct Publish
{
	const char *name;			/* package ID */
	const char *share_dir;
	const char *src_dir;
	const char *action;			/* "publish package X to \"share\"", for errors */
	char	   *tmp_name;		/* .<name>.new.<pid> */
	char	   *old_name;		/* .<name>.old.<pid> */
	SmsFdSet	fds;
	int			share_fd;
	bool		tmp_exists;		/* tmp_name is ours to remove on error */
	const char *garbage;		/* after the swap: the old version's name */
	bool		use_cfr;		/* copy_file_range has not been refused */
	char	   *buf;
} Publish;

/*
 * ERROR for a failed system call while publishing: the message names the
 * package, the share and errno's meaning; the detail says what was done.
 */
static void
pg_attribute_noreturn()
pg_attribute_printf(3, 4)
publish_failed(Publish *p, int err, const char *fmt,...)
{
	char	   *detail;

	{
		va_list		args;

		va_start(args, fmt);
		detail = sms_vformat(fmt, args);
		va_end(args);
	}
	errno = err;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s: %m", p->action),
			 errdetail_internal("%s", detail)));
}

static void
pg_attribute_noreturn()
refuse_source(Publish *p, const char *path, mode_t mode)
{
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("could not %s: \"%s\" is %s", p->action, path,
					S_ISLNK(mode) ? "a symbolic link" :
					S_ISFIFO(mode) ? "a FIFO" :
					S_ISSOCK(mode) ? "a socket" :
					S_ISCHR(mode) || S_ISBLK(mode) ? "a device" :
					S_ISREG(mode) ? "a file, not a directory" :
					"neither a regular file nor a directory"),
			 errdetail("Only regular files and directories are published.")));
}

/*
 * Copy the contents of in to out; returns the bytes copied.
 * copy_file_range() lets the kernel copy (or clone, on file systems that
 * can) without the data passing through us; when it is refused, as between
 * two file systems on some kernels, we read and write.
 */
static off_t
copy_data(Publish *p, int in, int out, const char *src_path, const char *dst_path)
{
	off_t		total = 0;
	ssize_t		n;

	while (p->use_cfr)
	{
		n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
		if (n > 0)
		{
			total += n;
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			errno == EOPNOTSUPP || errno == EBADF)
		{
			p->use_cfr = false;
			break;
		}
		publish_failed(p, errno, "Copying \"%s\" to \"%s\" failed.", src_path, dst_path);
	}

	/*
	 * What is left: everything without copy_file_range; with it, normally
	 * nothing (one read sees the end), but some file systems answer 0 early.
	 */
	if (p->buf == NULL)
		p->buf = palloc(COPY_BUFFER_SIZE);
	for (;;)
	{
		n = read(in, p->buf, COPY_BUFFER_SIZE);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			publish_failed(p, errno, "Reading \"%s\" failed.", src_path);
		}
		if (n == 0)
			break;
		if (!sms_write_all(out, p->buf, n))
			publish_failed(p, errno, "Writing \"%s\" failed.", dst_path);
		total += n;
		CHECK_FOR_INTERRUPTS();
	}
	return total;
}

static char *
join(const char *dir, const char *rel)
{
	return rel[0] ? psprintf("%s/%s", dir, rel) : pstrdup(dir);
}

static void
copy_file(Publish *p, int src_dir_fd, int dst_dir_fd, const char *name, const char *rel)
{
	char	   *src_path = join(p->src_dir, rel);
	char	   *dst_path = psprintf("%s/%s/%s", p->share_dir, p->tmp_name, rel);
	struct stat st;
	int			in;
	int			out;
	off_t		copied;
	struct timespec ts[2];

	/* O_NONBLOCK: a FIFO swapped in after our fstatat must not hang us */
	in = sms_fdset_openat(&p->fds, src_dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
	if (in < 0 && errno == ELOOP)
		refuse_source(p, src_path, S_IFLNK);
	if (in < 0)
		publish_failed(p, errno, "Opening \"%s\" failed.", src_path);
	if (fstat(in, &st) != 0)
		publish_failed(p, errno, "Reading \"%s\" failed.", src_path);
	if (!S_ISREG(st.st_mode))
		refuse_source(p, src_path, st.st_mode);

	out = sms_fdset_openat(&p->fds, dst_dir_fd, name,
					   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, S_IRUSR | S_IWUSR);
	if (out < 0)
		publish_failed(p, errno, "Creating \"%s\" failed.", dst_path);

	copied = copy_data(p, in, out, src_path, dst_path);
	if (copied != st.st_size)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not %s: \"%s\" changed while it was copied", p->action, src_path),
				 errdetail("It was " INT64_FORMAT " bytes long, and " INT64_FORMAT " bytes were copied.",
						   (int64) st.st_size, (int64) copied)));

	/* explicit: the server's umask (0077) would hide files from clients */
	if (fchmod(out, st.st_mode & 0777) != 0)
		publish_failed(p, errno, "Setting the permissions of \"%s\" failed.", dst_path);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (futimens(out, ts) != 0)
		publish_failed(p, errno, "Setting the modification time of \"%s\" failed.", dst_path);
	/* no fsync here: publish_copy makes the whole copy durable at once */
	if (sms_fdset_close(&p->fds, out) != 0)
		publish_failed(p, errno, "Closing \"%s\" failed.", dst_path);
	sms_fdset_close(&p->fds, in);
	pfree(src_path);
	pfree(dst_path);
}

/*
 * Copy symbolic link name (st from its lstat) as a link with the same
 * target and modification time, never following it.
 */
static void
copy_link(Publish *p, int src_dir_fd, int dst_dir_fd, const char *name, const char *rel,
		  const struct stat *st)
{
	char		target[SMS_PATH_LENGTH_CEILING + 1];
	ssize_t		n = readlinkat(src_dir_fd, name, target, sizeof(target));
	struct timespec ts[2];

	if (n < 0)
		publish_failed(p, errno, "Reading link \"%s\" failed.", join(p->src_dir, rel));
	if (n >= (ssize_t) sizeof(target))
		publish_failed(p, ENAMETOOLONG, "Reading link \"%s\" failed.", join(p->src_dir, rel));
	target[n] = '\0';
	if (symlinkat(target, dst_dir_fd, name) != 0)
		publish_failed(p, errno, "Creating link \"%s/%s/%s\" failed.", p->share_dir, p->tmp_name, rel);
	ts[0] = st->st_atim;
	ts[1] = st->st_mtim;
	if (utimensat(dst_dir_fd, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
		publish_failed(p, errno, "Setting the modification time of \"%s/%s/%s\" failed.",
					   p->share_dir, p->tmp_name, rel);
}

/* Copy the contents of directory src_fd (rel, "" for the top) into dst_fd. */
static void
copy_dir(Publish *p, int src_fd, int dst_fd, const char *rel)
{
	List	   *names;
	ListCell   *lc;

	if (!sms_list_names(&p->fds, src_fd, &names))
		publish_failed(p, errno, "Reading directory \"%s\" failed.", join(p->src_dir, rel));

	foreach(lc, names)
	{
		char	   *name = lfirst(lc);
		char	   *child = rel[0] ? psprintf("%s/%s", rel, name) : pstrdup(name);
		struct stat st;
		struct timespec ts[2];

		CHECK_FOR_INTERRUPTS();
		if (fstatat(src_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			publish_failed(p, errno, "Reading \"%s\" failed.", join(p->src_dir, child));
		if (S_ISREG(st.st_mode))
			copy_file(p, src_fd, dst_fd, name, child);
		else if (S_ISLNK(st.st_mode))
			copy_link(p, src_fd, dst_fd, name, child, &st);
		else if (S_ISDIR(st.st_mode))
		{
			char	   *dst_path = psprintf("%s/%s/%s", p->share_dir, p->tmp_name, child);
			int			s;
			int			d;

			s = sms_fdset_openat(&p->fds, src_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
			if (s < 0 && (errno == ELOOP || errno == ENOTDIR))
				refuse_source(p, join(p->src_dir, child), S_IFLNK);
			if (s < 0 || fstat(s, &st) != 0)
				publish_failed(p, errno, "Opening directory \"%s\" failed.",
							   join(p->src_dir, child));
			if (mkdirat(dst_fd, name, S_IRWXU) != 0)
				publish_failed(p, errno, "Creating directory \"%s\" failed.", dst_path);
			d = sms_fdset_openat(&p->fds, dst_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
			if (d < 0)
				publish_failed(p, errno, "Opening directory \"%s\" failed.", dst_path);

			copy_dir(p, s, d, child);

			if (fchmod(d, (st.st_mode & 03777) | S_IRWXU) != 0)
				publish_failed(p, errno, "Setting the permissions of \"%s\" failed.", dst_path);
			ts[0] = st.st_atim;
			ts[1] = st.st_mtim;
			if (futimens(d, ts) != 0)
				publish_failed(p, errno, "Setting the modification time of \"%s\" failed.", dst_path);
			sms_fdset_close(&p->fds, d);
			sms_fdset_close(&p->fds, s);
			pfree(dst_path);
		}
		else
			refuse_source(p, join(p->src_dir, child), st.st_mode);
		pfree(child);
	}
	list_free_deep(names);
}

/* Remove every temporary of this package that an earlier run left. */
static void
remove_leftovers(Publish *p)
{
	char	   *new_prefix = psprintf(".%s.new.", p->name);
	char	   *old_prefix = psprintf(".%s.old.", p->name);
	List	   *names;
	ListCell   *lc;

	if (!sms_list_names(&p->fds, p->share_fd, &names))
		publish_failed(p, errno, "Reading directory \"%s\" failed.", p->share_dir);
	foreach(lc, names)
	{
		char	   *name = lfirst(lc);

		if (strncmp(name, new_prefix, strlen(new_prefix)) == 0 ||
			strncmp(name, old_prefix, strlen(old_prefix)) == 0)
			sms_remove_at(&p->fds, p->share_fd, name,
					  psprintf("%s/%s", p->share_dir, name), ERROR);
	}
	list_free_deep(names);
}

/*
 * mkdir -p share_dir, each new directory 0755 whatever the umask, since
 * clients (or the daemon that serves them) must read it, and fsynced into
 * its parent.
 */
static void
make_share_dir(Publish *p)
{
	char	   *path = pstrdup(p->share_dir);

	for (char *c = path + 1;; c++)
	{
		char		save = *c;

		if (save != '/' && save != '\0')
			continue;
		*c = '\0';
		if (mkdir(path, 0755) == 0)
		{
			char	   *slash = strrchr(path, '/');
			char	   *parent = slash == path ? pstrdup("/") : pnstrdup(path, slash - path);

			if (chmod(path, 0755) != 0)
				publish_failed(p, errno, "Setting the permissions of \"%s\" failed.", path);
			(void) fsync_fname_ext(parent, true, false, ERROR);
			pfree(parent);
		}
		else if (errno != EEXIST)
			publish_failed(p, errno, "Creating directory \"%s\" failed.", path);
		*c = save;
		if (save == '\0')
			break;
	}
	pfree(path);
}

/*
 * fsync every file and directory of the tree dir_fd (path, for messages),
 * dir_fd itself last, while *budget lasts: false, with part of it fsynced,
 * when the tree has more entries than that.
 */
static bool
fsync_small_tree(Publish *p, int dir_fd, const char *path, int *budget)
{
	List	   *names;
	ListCell   *lc;

	if (!sms_list_names(&p->fds, dir_fd, &names))
		publish_failed(p, errno, "Reading directory \"%s\" failed.", path);
	if (list_length(names) > *budget)
		return false;
	*budget -= list_length(names);
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		char	   *sub = psprintf("%s/%s", path, name);
		struct stat st;
		int			fd;
		bool		small = true;

		if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			publish_failed(p, errno, "Reading \"%s\" failed.", sub);
		/* a symbolic link is made durable with its directory */
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;
		fd = sms_fdset_openat(&p->fds, dir_fd, name,
							  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0), 0);
		if (fd < 0 && errno == EACCES)
			return false;		/* a file without read permission: syncfs() */
		if (fd < 0)
			publish_failed(p, errno, "Opening \"%s\" failed.", sub);
		if (S_ISDIR(st.st_mode))
			small = fsync_small_tree(p, fd, sub, budget);
		else if (pg_fsync(fd) != 0)
			publish_failed(p, errno, "Flushing \"%s\" to disk failed.", sub);
		sms_fdset_close(&p->fds, fd);
		pfree(sub);
		if (!small)
			return false;
	}
	list_free_deep(names);
	if (pg_fsync(dir_fd) != 0)
		publish_failed(p, errno, "Flushing \"%s\" to disk failed.", path);
	return true;
}

/*
 * Make the new tree in dir_fd durable before it is published: a small tree
 * by an fsync per file and directory, a larger one by one syncfs() of its
 * file system (873 files of the benchmark's package took about a second
 * more with an fsync each).  The tree is not visible yet, so nobody waits on
 * it meanwhile.
 */
static void
make_durable(Publish *p, int dir_fd, const char *path)
{
	int			budget = SMS_FEW_FILES;

	if (fsync_small_tree(p, dir_fd, path, &budget))
		return;
	if (syncfs(dir_fd) != 0)
		publish_failed(p, errno, "Flushing \"%s\" to disk failed.", path);
}

/* Copy src_dir to <share>/<tmp_name>, made durable. */
static void
publish_copy(Publish *p)
{
	char	   *tmp_path = psprintf("%s/%s", p->share_dir, p->tmp_name);
	int			src_fd;
	int			dst_fd;

	src_fd = sms_fdset_openat(&p->fds, AT_FDCWD, p->src_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (src_fd < 0 && (errno == ELOOP || errno == ENOTDIR))
	{
		struct stat st;

		/* Linux says ENOTDIR for a symbolic link opened this way: say what it is */
		if (lstat(p->src_dir, &st) == 0 && !S_ISDIR(st.st_mode))
			refuse_source(p, p->src_dir, st.st_mode);
		errno = ENOTDIR;
	}
	if (src_fd < 0)
		publish_failed(p, errno, "Opening the source directory \"%s\" failed.", p->src_dir);

	if (mkdirat(p->share_fd, p->tmp_name, S_IRWXU) != 0)
		publish_failed(p, errno, "Creating directory \"%s\" failed.", tmp_path);
	p->tmp_exists = true;
	dst_fd = sms_fdset_openat(&p->fds, p->share_fd, p->tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (dst_fd < 0)
		publish_failed(p, errno, "Opening directory \"%s\" failed.", tmp_path);

	copy_dir(p, src_fd, dst_fd, "");

	if (fchmod(dst_fd, 0755) != 0)
		publish_failed(p, errno, "Setting the permissions of \"%s\" failed.", tmp_path);
	make_durable(p, dst_fd, tmp_path);
	sms_fdset_close(&p->fds, dst_fd);
	sms_fdset_close(&p->fds, src_fd);
}

/*
 * Instead of a copy: move src_dir itself to <share>/<tmp_name>, when both
 * are on one file system.  Returns false (nothing done) when they are not,
 * or when src_dir is not a plain directory.  The caller's source is gone
 * afterwards.
 */
static bool
publish_move(Publish *p)
{
	char	   *tmp_path = psprintf("%s/%s", p->share_dir, p->tmp_name);
	struct stat src_st;
	struct stat share_st;
	int			dst_fd;

	if (lstat(p->src_dir, &src_st) != 0 || !S_ISDIR(src_st.st_mode) ||
		fstat(p->share_fd, &share_st) != 0 || src_st.st_dev != share_st.st_dev)
		return false;
	if (renameat(AT_FDCWD, p->src_dir, p->share_fd, p->tmp_name) != 0)
	{
		if (errno == EXDEV)
			return false;		/* a bind mount: same device number, no rename */
		publish_failed(p, errno, "Moving \"%s\" to \"%s\" failed.", p->src_dir, tmp_path);
	}
	p->tmp_exists = true;
	dst_fd = sms_fdset_openat(&p->fds, p->share_fd, p->tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (dst_fd < 0)
		publish_failed(p, errno, "Opening directory \"%s\" failed.", tmp_path);
	if (fchmod(dst_fd, 0755) != 0)
		publish_failed(p, errno, "Setting the permissions of \"%s\" failed.", tmp_path);
	make_durable(p, dst_fd, tmp_path);
	sms_fdset_close(&p->fds, dst_fd);
	return true;
}

/* Make the copy the published tree, in one rename if we can. */
static void
publish_swap(Publish *p)
{
	struct stat st;

	if (fstatat(p->share_fd, p->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
	{
		if (errno != ENOENT)
			publish_failed(p, errno, "Looking for \"%s/%s\" failed.", p->share_dir, p->name);
		if (renameat(p->share_fd, p->tmp_name, p->share_fd, p->name) != 0)
			publish_failed(p, errno, "Renaming \"%s\" to \"%s\" in \"%s\" failed.",
						   p->tmp_name, p->name, p->share_dir);
		p->tmp_exists = false;
	}
	else if (renameat2(p->share_fd, p->tmp_name, p->share_fd, p->name, RENAME_EXCHANGE) == 0)
	{
		/* tmp_name now holds the old version */
		p->garbage = p->tmp_name;
	}
	else
	{
		if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			publish_failed(p, errno, "Exchanging \"%s\" and \"%s\" in \"%s\" failed.",
						   p->tmp_name, p->name, p->share_dir);

		/* no RENAME_EXCHANGE here: move the old version aside, then rename */
		if (renameat(p->share_fd, p->name, p->share_fd, p->old_name) != 0)
			publish_failed(p, errno, "Renaming \"%s\" to \"%s\" in \"%s\" failed.",
						   p->name, p->old_name, p->share_dir);
		if (renameat(p->share_fd, p->tmp_name, p->share_fd, p->name) != 0)
		{
			int			save_errno = errno;

			/* put the old version back; if that fails too, leave it aside */
			(void) renameat(p->share_fd, p->old_name, p->share_fd, p->name);
			publish_failed(p, save_errno, "Renaming \"%s\" to \"%s\" in \"%s\" failed.",
						   p->tmp_name, p->name, p->share_dir);
		}
		p->tmp_exists = false;
		p->garbage = p->old_name;
	}

	if (pg_fsync(p->share_fd) != 0)
		publish_failed(p, errno, "Flushing directory \"%s\" to disk failed.", p->share_dir);
}

static Publish *
publish_start(const char *src_dir, const char *share_dir, const char *name, const char *action)
{
	Publish    *p = palloc0(sizeof(Publish));

	p->name = pstrdup(name);
	p->share_dir = pstrdup(share_dir);
	p->src_dir = src_dir ? pstrdup(src_dir) : NULL;
	p->action = psprintf("%s package %s %s \"%s\"", action, name,
						 src_dir ? "to" : "from", share_dir);
	p->tmp_name = psprintf(".%s.new.%d", name, MyProcPid);
	p->old_name = psprintf(".%s.old.%d", name, MyProcPid);
	p->share_fd = -1;
	p->use_cfr = true;
	return p;
}

bool
sms_publish_tree(const char *src_dir, const char *share_dir, const char *name, bool may_move)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext workcxt;
	Publish    *p;
	volatile bool moved = false;

	/* name becomes a file name: check it again, whatever the caller did */
	sms_valid_sms_id(name, true);
	sms_valid_server_path(share_dir, "share directory", true);
	sms_valid_server_path(src_dir, "source directory", true);

	workcxt = AllocSetContextCreate(CurrentMemoryContext, "smsdist publish",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(workcxt);
	p = publish_start(src_dir, share_dir, name, "publish");

	PG_TRY();
	{
		make_share_dir(p);
		p->share_fd = sms_fdset_openat(&p->fds, AT_FDCWD, p->share_dir, O_RDONLY | O_DIRECTORY, 0);
		if (p->share_fd < 0)
			publish_failed(p, errno, "Opening directory \"%s\" failed.", p->share_dir);
		remove_leftovers(p);
		if (may_move)
			moved = publish_move(p);
		if (!moved)
			publish_copy(p);
		publish_swap(p);

		/* published: the old version is garbage, not worth an ERROR */
		if (p->garbage != NULL)
			sms_remove_at(&p->fds, p->share_fd, p->garbage,
					  psprintf("%s/%s", p->share_dir, p->garbage), WARNING);
	}
	PG_CATCH();
	{
		/* ErrorContext is current; the cleanup's few allocations go here */
		MemoryContextSwitchTo(workcxt);
		HOLD_INTERRUPTS();
		if (p->tmp_exists)
			sms_remove_at(&p->fds, p->share_fd, p->tmp_name,
					  psprintf("%s/%s", p->share_dir, p->tmp_name), WARNING);
		else if (p->garbage != NULL)
			sms_remove_at(&p->fds, p->share_fd, p->garbage,
					  psprintf("%s/%s", p->share_dir, p->garbage), WARNING);
		sms_fdset_close_all(&p->fds);
		RESUME_INTERRUPTS();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(workcxt);
		PG_RE_THROW();
	}
	PG_END_TRY();

	sms_fdset_close_all(&p->fds);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(workcxt);
	return moved;
}

void
sms_unpublish(const char *share_dir, const char *name)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext workcxt;
	Publish    *p;

	sms_valid_sms_id(name, true);
	sms_valid_server_path(share_dir, "share directory", true);

	workcxt = AllocSetContextCreate(CurrentMemoryContext, "smsdist unpublish",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(workcxt);
	p = publish_start(NULL, share_dir, name, "unpublish");

	PG_TRY();
	{
		p->share_fd = sms_fdset_openat(&p->fds, AT_FDCWD, p->share_dir, O_RDONLY | O_DIRECTORY, 0);
		if (p->share_fd < 0 && errno != ENOENT)
			publish_failed(p, errno, "Opening directory \"%s\" failed.", p->share_dir);
		if (p->share_fd >= 0)
		{
			remove_leftovers(p);

			/* gone from clients' view in one step, then removed at leisure */
			if (renameat(p->share_fd, p->name, p->share_fd, p->old_name) == 0)
			{
				if (pg_fsync(p->share_fd) != 0)
					publish_failed(p, errno, "Flushing directory \"%s\" to disk failed.",
								   p->share_dir);
				sms_remove_at(&p->fds, p->share_fd, p->old_name,
						  psprintf("%s/%s", p->share_dir, p->old_name), ERROR);
			}
			else if (errno != ENOENT)
				publish_failed(p, errno, "Renaming \"%s\" to \"%s\" in \"%s\" failed.",
							   p->name, p->old_name, p->share_dir);
		}
	}
	PG_FINALLY();
	{
		sms_fdset_close_all(&p->fds);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(workcxt);
	}
	PG_END_TRY();
}

char *
sms_published_tree_path(const char *share_dir, const char *package_id)
{
	return psprintf("%s/%s", share_dir, package_id);
}

/*
 * SQL wrappers, for tests and repairs.  They read and write server files,
 * so they need the privileges of pg_read_server_files and
 * pg_write_server_files, like COPY to and from a file.
 */
static void
check_file_privileges(const char *what)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES) ||
		!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" and \"pg_write_server_files\" roles may read and write files on the server.")));
}

/* smsdist_publish_tree(src text, share text, name text) RETURNS void */
PG_FUNCTION_INFO_V1(smsdist_publish_tree);
Datum
smsdist_publish_tree(PG_FUNCTION_ARGS)
{
	char	   *src = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *share = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(2));

	check_file_privileges("publish a package tree");
	sms_valid_server_path(src, "source directory", true);
	sms_valid_server_path(share, "share directory", true);
	sms_publish_tree(src, share, name, false);
	PG_RETURN_VOID();
}

/* smsdist_unpublish(share text, name text) RETURNS void */
PG_FUNCTION_INFO_V1(smsdist_unpublish);
Datum
smsdist_unpublish(PG_FUNCTION_ARGS)
{
	char	   *share = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));

	check_file_privileges("unpublish a package");
	sms_valid_server_path(share, "share directory", true);
	sms_unpublish(share, name);
	PG_RETURN_VOID();
}
