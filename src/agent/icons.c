/*-------------------------------------------------------------------------
 *
 * icons.c
 *	  The icons of the packages offered: fetched, checked and kept in the
 *	  state directory beside the offers.
 *
 * Terms:
 *	icon source	where an offer's icon is read: in legacy mode
 *				<CAP>/pkginfo.box/<PACKAGEID>.ICO, which the .PKG names; in
 *				advanced mode the file the policy names (icon.file) in the
 *				package's first published tree.
 *	vouched		the .ICO is not signed (src/formats/icon_file.h): its
 *				SHA-256 is in the signed .PKG, or in the policy the
 *				management point served.  An icon whose bytes have another
 *				hash, that is not an icon, too large, or a link or special
 *				file, is refused (status message 10010, once per package
 *				and hash) and not kept.
 *	kept icon	<state dir>/icons/<PACKAGEID>.ICO, written whole
 *				(sms_fmt_write_file) and only when it changed, removed when
 *				no offer names its package with an icon any more.
 *
 * An icon is never a reason not to offer: a missing or refused one leaves
 * the offer without an icon, as for a package that has none.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_util.h"
#include "cache_manifest.h"
#include "icons.h"
#include "state_files.h"
#include "status_report.h"

/* refusals said already: "<PACKAGEID> <sha256>" lines */
#define REFUSALS_FILE	"icon-refusals"

/*
 * Open source for reading without following a link in any component after
 * the first step below base (base itself is the share or tree, trusted as
 * a directory); rel is relative.  -1 with err set.
 */
static int
open_below(const char *base, const char *rel, char *err, size_t errlen)
{
	char	   *copy = xstrdup(rel);
	char	   *comp = copy;
	int			dir = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int			fd = -1;

	if (dir < 0)
		snprintf(err, errlen, "\"%s\" cannot be opened: %s", base, strerror(errno));
	while (dir >= 0)
	{
		char	   *slash = strchr(comp, '/');
		int			next;

		if (slash)
			*slash = '\0';
		if (*comp == '\0' || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0)
		{
			snprintf(err, errlen, "the path \"%s\" leaves the package", rel);
			break;
		}
		next = openat(dir, comp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (slash ? O_DIRECTORY : 0));
		if (next < 0)
		{
			snprintf(err, errlen, "\"%s\" cannot be opened: %s", rel,
					 errno == ELOOP || errno == ENOTDIR ? "a symbolic link or not a directory" : strerror(errno));
			break;
		}
		if (!slash)
		{
			fd = next;
			break;
		}
		close(dir);
		dir = next;
		comp = slash + 1;
	}
	if (dir >= 0)
		close(dir);
	free(copy);
	return fd;
}

/* The icon at base/rel, checked against sha256: malloc'd, or NULL and why. */
static char *
read_icon(const char *base, const char *rel, const char *sha256, size_t *len, char *err, size_t errlen)
{
	int			fd = open_below(base, rel, err, errlen);
	struct stat st;
	char	   *buf = NULL;
	char		hex[65];
	ssize_t		n = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		snprintf(err, errlen, "not a regular file");
	else if (st.st_size > SMS_FMT_ICON_MAX_BYTES)
		snprintf(err, errlen, "larger than %d bytes", SMS_FMT_ICON_MAX_BYTES);
	else
	{
		buf = xmalloc(SMS_FMT_ICON_MAX_BYTES + 1);
		while ((size_t) n <= SMS_FMT_ICON_MAX_BYTES)
		{
			ssize_t		r = read(fd, buf + n, SMS_FMT_ICON_MAX_BYTES + 1 - n);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			n += r;
		}
		*len = (size_t) n;
		if (!sha256_of_buffer(buf, *len, hex) || strcmp(hex, sha256) != 0)
			snprintf(err, errlen, "its SHA-256 is not the one the site gave (%s)", sha256);
		else if (sms_icon_check((const unsigned char *) buf, *len, err, errlen))
		{
			close(fd);
			return buf;
		}
		free(buf);
		buf = NULL;
	}
	close(fd);
	return NULL;
}

/* Is the kept icon of package_id already these bytes? */
static bool
kept_already(const char *dir, const char *name, const char *sha256)
{
	char		err[256];
	size_t		len;
	char	   *buf = read_icon(dir, name, sha256, &len, err, sizeof(err));

	free(buf);
	return buf != NULL;
}

/* Say a refused icon, with a status message once per package and hash. */
static void
refuse(const Config *c, int64_t now, const Offer *x, const char *where, const char *why,
	   const char *said, TextBuf *refusals)
{
	char		line[128];
	char		text[1024];

	snprintf(line, sizeof(line), "%s %s\n", x->package_id, x->icon_sha256);
	textbuf_append(refusals, "%s", line);
	snprintf(text, sizeof(text), "Icon \"%s\" of package %s refused: %s", where, x->package_id, why);
	agent_warn("%s", text);
	if (!has_line(said, line))
		status_message(c, now, MSG_FILE_REFUSED, SMS_STATUS_WARNING, NULL, NULL, x->package_id, text,
					   NO_EXIT_CODE);
}

/* Remove the kept icons of packages that no offer names with an icon. */
static void
forget_icons(const char *dir, const Offers *o)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		size_t		n = strlen(de->d_name);
		bool		wanted = false;

		if (n < 5 || strcmp(de->d_name + n - 4, ".ICO") != 0)
			continue;
		/* a waiting offer does not say: its icon is kept until it does */
		for (size_t i = 0; i < o->n && !wanted; i++)
			wanted = strlen(o->items[i].package_id) == n - 4 &&
				strncmp(o->items[i].package_id, de->d_name, n - 4) == 0 &&
				(o->items[i].waiting || o->items[i].icon_sha256[0] != '\0');
		if (!wanted && unlinkat(dirfd(d), de->d_name, 0) == 0)
			agent_info("icon %.*s removed: no offer names its package", (int) (n - 4), de->d_name);
	}
	closedir(d);
}

void
keep_icons(const Config *c, int64_t now, const Offers *o)
{
	char	   *dir = xpath_join(c->state_dir, ICONS_DIR);
	char	   *said = state_read(c, REFUSALS_FILE, NULL);
	TextBuf		refusals;
	char		err[512];

	textbuf_init(&refusals, 64);
	for (size_t i = 0; i < o->n; i++)
	{
		const Offer *x = &o->items[i];
		char		name[SMS_FMT_NAME_BUFLEN];
		char	   *buf;
		size_t		len = 0;

		if (x->waiting || x->icon_source == NULL || x->icon_sha256[0] == '\0' ||
			!sms_fmt_file_name(SMS_FILE_ICON, x->package_id, 0, name, sizeof(name), NULL, 0) ||
			kept_already(dir, name, x->icon_sha256))
			continue;
		if ((buf = read_icon(x->icon_base, x->icon_source, x->icon_sha256, &len, err, sizeof(err))) == NULL)
		{
			char	   *where = xpath_join(x->icon_base, x->icon_source);

			refuse(c, now, x, where, err, said, &refusals);
			free(where);
			continue;
		}
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			agent_warn("could not create \"%s\": %s", dir, strerror(errno));
		else if (!sms_fmt_write_file(dir, name, buf, len, err, sizeof(err)))
			agent_warn("could not keep the icon of package %s: %s", x->package_id, err);
		else
			agent_info("icon %s kept: %zu bytes, SHA-256 %s", x->package_id, len, x->icon_sha256);
		free(buf);
	}
	forget_icons(dir, o);
	/* what an agent killed while it kept an icon left (box_file.c) */
	if (sms_fmt_remove_stale_temporaries(dir, NULL, err, sizeof(err)) < 0)
		agent_warn("%s", err);
	if (refusals.len > 0 || said != NULL)
		(void) state_write(c, REFUSALS_FILE, refusals.data, refusals.len);
	free(refusals.data);
	free(said);
	free(dir);
}
