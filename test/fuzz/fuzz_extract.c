/*-------------------------------------------------------------------------
 *
 * fuzz_extract.c
 *	  libFuzzer target for the package file reader (src/package/package_extract.c,
 *	  sms_archive_extract, with the manifest and delta readers under it),
 *	  run outside the server over pg_shim.c.
 *
 * A package file comes from a parent or child site, or sits on a disk that
 * rots; the Despooler extracts it.  The input is the uncompressed tar
 * stream, which this target gzips (level 1) into a package file, so that
 * the fuzzer mutates tar headers, names and data rather than deflate
 * blocks; an input that starts with the gzip magic (1f 8b) is written as
 * it is instead, to reach the gzip reader too.  Each input is extracted
 * into an empty directory dest beside an empty directory outside, in a
 * scratch directory made once.
 *
 * Compiled with -DFUZZ_STRUCTURED (target extract_struct), the input is
 * instead a list of entries, one a line, "<kind> <mode, octal> <path>
 * [<data>]", from which the target writes the package file with
 * libarchive, and a manifest that matches it (sorted, with the SHA-256 of
 * each file, empty directories listed): so the fuzzer reaches what comes
 * after the manifest is found to be valid, which random bytes in a tar
 * stream never do.  Kinds: f a file; d a directory; l a symbolic link to
 * <data>; h a hard link to <data>; F a file whose manifest size is one
 * more; m a file in the manifest only; x a file in the archive only; D
 * the delta description, with <data> ('|' for newlines).  A first line
 * "2" makes the manifest version 2 (its header, a time on every line,
 * every directory and every link listed).  Properties checked, for both:
 *
 *	errors		extracted, or refused with an ERROR whose SQLSTATE is not
 *				XX000 (every refusal says what is wrong) -- never a crash or
 *				a sanitizer report.
 *	confinement	nothing is created outside dest (the scratch directory
 *				still holds only the package file, dest and an empty
 *				outside), and dest holds only directories, regular files
 *				and symbolic links whose targets are relative and, resolved
 *				by name from the link's directory, stay inside dest (no
 *				device or FIFO), refused or not; no file has the setuid,
 *				setgid or sticky bit, no directory the setuid bit.
 *	descriptors	none is left open, refused or not.
 *	manifest	when accepted: every regular file under dest is a file of
 *				the returned manifest with its size, every link a link of
 *				it with its target, every file and link of the manifest is
 *				there, every directory under dest is listed or implied by
 *				the manifest, and nothing is writable by group or others
 *				beyond the manifest's mode.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* nftw */
#endif
#include "pg_shim.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "package_extract.h"

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz property failed: %s\n", #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

static char scratch[64];
static char pkg_path[128];
static char dest_dir[128];
static char outside_dir[128];

/* what the walk of dest found */
static const SmsManifest *walk_manifest;
static int	walk_files;

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	/* a directory left without the owner's rights could not be emptied */
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
	{
		fprintf(stderr, "cannot remove %s\n", path);
		abort();
	}
}

static void
cleanup(void)
{
	remove_tree(scratch);
}

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(scratch, sizeof(scratch), "%s/smsdist-fuzz-extract.XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(scratch) == NULL)
	{
		perror("mkdtemp");
		abort();
	}
	snprintf(pkg_path, sizeof(pkg_path), "%s/CEN00001.1.tar.gz", scratch);
	snprintf(dest_dir, sizeof(dest_dir), "%s/dest", scratch);
	snprintf(outside_dir, sizeof(outside_dir), "%s/outside", scratch);
	atexit(cleanup);
	return 0;
}

static const SmsManifestEntry *
find(const SmsManifest *m, const char *path)
{
	for (int i = 0; i < m->nentries; i++)
		if (strcmp(m->entries[i].path, path) == 0)
			return &m->entries[i];
	return NULL;
}

/* Is rel (a directory under dest, no trailing '/') implied by the manifest? */
static bool
implied(const SmsManifest *m, const char *rel)
{
	size_t		n = strlen(rel);

	for (int i = 0; i < m->nentries; i++)
		if (strncmp(m->entries[i].path, rel, n) == 0 && m->entries[i].path[n] == '/')
			return true;
	return false;
}

/*
 * Does a link at rel (below dest) to target stay inside dest, resolved by
 * name?  Independent of the extractor's rule, which is stricter.
 */
static bool
link_stays_inside(const char *rel, const char *target)
{
	int			depth = 0;
	const char *c;

	if (target[0] == '/' || target[0] == '\0')
		return false;
	for (c = rel; *c; c++)
		depth += (*c == '/');
	for (c = target; *c;)
	{
		const char *e = strchr(c, '/');
		size_t		n = e ? (size_t) (e - c) : strlen(c);

		if (n == 2 && c[0] == '.' && c[1] == '.')
		{
			if (--depth < 0)
				return false;
		}
		else if (n > 0 && !(n == 1 && c[0] == '.'))
			depth++;
		c = e ? e + 1 : c + n;
	}
	return true;
}

static int
check_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = path + strlen(dest_dir);
	char		target[4097];
	ssize_t		tn = 0;

	CHECK(flag == FTW_F || flag == FTW_D || flag == FTW_SL,
		  "%s: not a file, a directory or a link (flag %d)", path, flag);
	CHECK(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode) || S_ISLNK(st->st_mode),
		  "%s: mode %o", path, st->st_mode);
	CHECK((st->st_mode & S_ISUID) == 0, "%s: mode %o", path, st->st_mode);
	CHECK(S_ISDIR(st->st_mode) || S_ISLNK(st->st_mode) || (st->st_mode & (S_ISGID | S_ISVTX)) == 0,
		  "%s: mode %o", path, st->st_mode);
	if (S_ISLNK(st->st_mode))
	{
		tn = readlink(path, target, sizeof(target) - 1);
		CHECK(tn > 0, "%s: readlink: %m", path);
		target[tn] = '\0';
		CHECK(*rel == '/' && link_stays_inside(rel + 1, target), "%s: a link to \"%s\"", path, target);
	}
	if (walk_manifest == NULL || *rel == '\0')
		return 0;
	rel++;						/* the '/' after dest */
	if (S_ISLNK(st->st_mode))
	{
		const SmsManifestEntry *e = find(walk_manifest, rel);

		CHECK(e != NULL && e->is_link && strcmp(e->target, target) == 0,
			  "%s is not a link of the manifest to \"%s\"", rel, target);
		walk_files++;
	}
	else if (S_ISREG(st->st_mode))
	{
		const SmsManifestEntry *e = find(walk_manifest, rel);

		CHECK(e != NULL && !e->is_dir && !e->is_link, "%s is not a file of the manifest", rel);
		CHECK(e->size == st->st_size, "%s: %lld bytes, the manifest says %lld", rel,
			  (long long) st->st_size, (long long) e->size);
		CHECK((st->st_mode & 022 & ~e->mode) == 0, "%s: mode %o, manifest %o", rel,
			  st->st_mode, e->mode);
		walk_files++;
	}
	else
		CHECK(implied(walk_manifest, rel), "directory %s is not in the manifest", rel);
	return 0;
}

/* the lowest free descriptor: the same before and after, if none leaked */
static int
lowest_free_fd(void)
{
	int			fd = dup(0);

	close(fd);
	return fd;
}

typedef struct Call
{
	SmsManifest *m;
} Call;

#ifdef FUZZ_STRUCTURED
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#define MAX_ENTRIES 64

typedef struct Entry
{
	char		kind;
	int			mode;
	char	   *path;			/* as in the archive */
	char	   *data;
} Entry;

/* manifest lines, sorted by their path: after the third space (fourth: v2) */
static int	line_fields = 3;

static const char *
line_path(const char *l)
{
	for (int i = 0; i < line_fields; i++)
		l = strchr(l, ' ') + 1;
	return l;
}

static int
cmp_line(const void *a, const void *b)
{
	return strcmp(line_path(*(char *const *) a), line_path(*(char *const *) b));
}

/* Write the package file described by text; false if it is not one. */
static bool
write_structured(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size + 1);
	char	   *save = NULL;
	Entry		e[MAX_ENTRIES];
	int			n = 0;
	char	   *mlines[MAX_ENTRIES];
	int			nm = 0;
	size_t		mlen = 0;
	char	   *manifest;
	struct archive *a;
	bool		ok = true;
	bool		v2;
	const char *mtime;

	memcpy(text, data, size);
	text[size] = '\0';
	v2 = (strncmp(text, "2\n", 2) == 0);
	line_fields = v2 ? 4 : 3;
	for (char *line = strtok_r(text, "\n", &save); line && n < MAX_ENTRIES;
		 line = strtok_r(NULL, "\n", &save))
	{
		char	   *sp1 = strchr(line, ' ');
		char	   *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		char	   *sp3;

		if (sp2 == NULL || strchr("fdlhFmxD", line[0]) == NULL || line[0] == '\0')
			continue;
		e[n].kind = line[0];
		e[n].mode = (int) strtol(sp1 + 1, NULL, 8) & 07777;
		e[n].path = sp2 + 1;
		sp3 = strchr(sp2 + 1, ' ');
		e[n].data = sp3 ? sp3 + 1 : "";
		if (sp3)
			*sp3 = '\0';
		if (e[n].path[0] == '\0')
			continue;
		n++;
	}

	/* the manifest: files, and directories with nothing below them (v2: all, and links) */
	mtime = v2 ? " 1700000000.000000000" : "";
	for (int i = 0; i < n; i++)
	{
		char		hex[65];
		unsigned char d[32];
		unsigned int dl;
		size_t		plen = strlen(e[i].path);
		size_t		dlen = strlen(e[i].data);
		bool		below = false;
		char	   *l;

		if (e[i].kind == 'd')
		{
			char	   *dir = strndup(e[i].path, plen - (plen > 1 && e[i].path[plen - 1] == '/'));
			size_t		dl2 = strlen(dir);

			for (int j = 0; j < n; j++)
				if (j != i && strncmp(e[j].path, dir, dl2) == 0 && e[j].path[dl2] == '/' &&
					e[j].path[dl2 + 1] != '\0')
					below = true;
			if (!below || v2)
			{
				l = malloc(dl2 + 100);
				sprintf(l, "%s 0 %04o%s %s/\n",
						"----------------------------------------------------------------",
						e[i].mode, mtime, dir);
				mlines[nm++] = l;
			}
			free(dir);
			continue;
		}
		if (e[i].kind == 'l' && v2)
		{
			l = malloc(plen + dlen + 120);
			sprintf(l, "%s %zu %04o%s %s -> %s\n",
					"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
					dlen, e[i].mode, mtime, e[i].path, e[i].data);
			mlines[nm++] = l;
			continue;
		}
		if (e[i].kind != 'f' && e[i].kind != 'F' && e[i].kind != 'm')
			continue;
		EVP_Digest(e[i].data, dlen, d, &dl, EVP_sha256(), NULL);
		for (int k = 0; k < 32; k++)
			sprintf(hex + 2 * k, "%02x", d[k]);
		l = malloc(plen + 120);
		sprintf(l, "%s %zu %04o%s %s\n", hex, dlen + (e[i].kind == 'F'), e[i].mode, mtime, e[i].path);
		mlines[nm++] = l;
	}
	qsort(mlines, nm, sizeof(char *), cmp_line);
	for (int i = 0; i < nm; i++)
		mlen += strlen(mlines[i]);
	manifest = malloc(mlen + 32);
	strcpy(manifest, v2 ? "smsdist-manifest 2\n" : "");
	for (int i = 0, off = strlen(manifest); i < nm; i++)
	{
		strcpy(manifest + off, mlines[i]);
		off += strlen(mlines[i]);
		free(mlines[i]);
	}

	a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	if (archive_write_open_filename(a, pkg_path) != ARCHIVE_OK)
		abort();
	for (int i = 0; i <= n; i++)
	{
		struct archive_entry *ae = archive_entry_new();
		const char *path = i < n ? e[i].path : ".smsdist-manifest";
		char	   *content = i < n ? e[i].data : manifest;
		char		kind = i < n ? e[i].kind : 'f';

		if (kind == 'm')
		{
			archive_entry_free(ae);
			continue;
		}
		if (kind == 'D')
		{
			path = ".smsdist-delta";
			content = strdup(content);
			for (char *c = content; *c; c++)
				if (*c == '|')
					*c = '\n';
		}
		archive_entry_set_pathname(ae, path);
		archive_entry_set_perm(ae, i < n ? e[i].mode : 0644);
		archive_entry_set_mtime(ae, 1700000000, 0);
		if (kind == 'd')
			archive_entry_set_filetype(ae, AE_IFDIR);
		else if (kind == 'l')
		{
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, content);
		}
		else if (kind == 'h')
		{
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, content);
		}
		else
		{
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, strlen(content));
		}
		if (archive_write_header(a, ae) < ARCHIVE_WARN)
			ok = false;
		else if (kind != 'd' && kind != 'l' && kind != 'h' && strlen(content) > 0)
			archive_write_data(a, content, strlen(content));
		if (kind == 'D')
			free(content);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	free(manifest);
	free(text);
	return ok;
}
#endif

static void
extract(void *arg)
{
	Call	   *call = arg;

	call->m = sms_archive_extract(pkg_path, dest_dir, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Call		call = {0};
	int			fd0 = lowest_free_fd();
	DIR		   *d;
	struct dirent *de;
	int			nscratch = 0;

#ifdef FUZZ_STRUCTURED
	if (!write_structured(data, size))
		return 0;
#else
	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
	{
		FILE	   *f = fopen(pkg_path, "wb");

		CHECK(f != NULL && fwrite(data, 1, size, f) == size && fclose(f) == 0, "writing %s", pkg_path);
	}
	else
	{
		gzFile		gz = gzopen(pkg_path, "wb1");

		CHECK(gz != NULL && (size == 0 || gzwrite(gz, data, size) == (int) size) &&
			  gzclose(gz) == Z_OK, "writing %s", pkg_path);
	}
#endif
	CHECK(mkdir(dest_dir, 0700) == 0 && mkdir(outside_dir, 0700) == 0, "mkdir: %m");

	if (shim_try(extract, &call))
	{
		walk_manifest = call.m;
		walk_files = 0;
		CHECK(nftw(dest_dir, check_one, 16, FTW_PHYS) == 0, "walk");
		for (int i = 0; i < call.m->nentries; i++)
			walk_files -= !call.m->entries[i].is_dir;	/* files and links */
		CHECK(walk_files == 0, "the manifest lists files that are not there");
	}
	else
	{
		CHECK(shim_error_code != ERRCODE_INTERNAL_ERROR,
			  "refused without a reason's SQLSTATE: %s", shim_error_message);
		walk_manifest = NULL;
		CHECK(nftw(dest_dir, check_one, 16, FTW_PHYS) == 0, "walk");
	}
	if (getenv("SMSDIST_FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", shim_error_message[0] ? shim_error_message : "accepted");

	d = opendir(scratch);
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		nscratch++;
		CHECK(strcmp(de->d_name, "dest") == 0 || strcmp(de->d_name, "outside") == 0 ||
			  strcmp(de->d_name, "CEN00001.1.tar.gz") == 0,
			  "%s was created outside dest", de->d_name);
	}
	closedir(d);
	CHECK(rmdir(outside_dir) == 0, "something was created in %s", outside_dir);
	remove_tree(dest_dir);
	CHECK(lowest_free_fd() == fd0, "a descriptor was left open");
	shim_reset_memory();
	return 0;
}
