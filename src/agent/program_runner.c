/*-------------------------------------------------------------------------
 *
 * program_runner.c
 *	  Running one program: its process, its account, its time limit and
 *	  exit code.
 *
 * Terms:
 *	account		the local account a program runs as: the agent's own, or
 *				the logged-on user's for a program that runs with the
 *				user's rights ("run-as": groups, then group, then user, and
 *				root must be gone for good).
 *	session		the program runs in a session of its own, without a
 *				controlling terminal: a program that runs with the user's
 *				rights must not reach the terminal of whoever started the
 *				agent (TIOCSTI would type into a root shell).  Its session
 *				is its process group, so a program that runs out of time is
 *				killed with everything it started.
 *	clean start	standard input is /dev/null, and standard output or error
 *				that is a terminal becomes /dev/null too; the environment
 *				is built from nothing (program_env); no descriptor of the
 *				agent's beyond 0, 1 and 2 reaches the program.
 *
 * The child says why it could not start (which step failed, and errno)
 * through a pipe that exec closes; a program that started says nothing
 * there.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_util.h"
#include "program_runner.h"

/*
 * The PATH a program gets after its package directory: fixed, so that
 * nothing from the agent's environment decides what a root program runs.
 */
#define PROGRAM_PATH		"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* what a program may take from the agent's environment, if set */
static const char *const program_env_kept[] = {"LANG", "LC_ALL", "TZ"};
#define PROGRAM_ENV_MAX		16

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

const struct passwd *
user_rights_account(const char *user, const char *account, char *why, size_t whylen)
{
	const char *name = account;
	const struct passwd *pw;

	if (user == NULL)
	{
		snprintf(why, whylen, "it runs with the user's rights and no user is logged on");
		return NULL;
	}
	if (name == NULL)
		name = strchr(user, '\\') ? strchr(user, '\\') + 1 : user;
	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
	{
		snprintf(why, whylen, "it runs with the user's rights and user %s has no local account \"%s\"%s%s",
				 user, name, errno ? ": " : "", errno ? strerror(errno) : "");
		return NULL;
	}
	if (geteuid() != 0 && pw->pw_uid != geteuid())
	{
		snprintf(why, whylen, "it runs with the user's rights (account \"%s\") and the agent, not running as root, cannot switch to another account",
				 name);
		return NULL;
	}
	return pw;
}

/* "NAME=value", malloc'd */
static char *
env_entry(const char *name, const char *value)
{
	char	   *s = xmalloc(strlen(name) + 1 + strlen(value) + 1);

	sprintf(s, "%s=%s", name, value);
	return s;
}

/*
 * A program's environment, built from nothing: PATH (its package directory,
 * then PROGRAM_PATH), HOME, USER and LOGNAME of the account it runs as, and
 * LANG, LC_ALL and TZ when the agent has them.  Nothing else of the agent's
 * (PGPASSWORD, PGPASSFILE, test settings...) reaches it.  The strings are
 * malloc'd; env is NULL-terminated.
 */
static void
program_env(const char *dir, const struct passwd *pw, char **env)
{
	int			n = 0;
	char	   *s;

	s = xmalloc(strlen("PATH=") + strlen(dir) + 1 + strlen(PROGRAM_PATH) + 1);
	sprintf(s, "PATH=%s:%s", dir, PROGRAM_PATH);
	env[n++] = s;
	env[n++] = env_entry("HOME", pw ? pw->pw_dir : "/");
	if (pw)
	{
		env[n++] = env_entry("USER", pw->pw_name);
		env[n++] = env_entry("LOGNAME", pw->pw_name);
	}
	for (size_t i = 0; i < sizeof(program_env_kept) / sizeof(program_env_kept[0]); i++)
	{
		const char *v = getenv(program_env_kept[i]);

		if (v != NULL)
			env[n++] = env_entry(program_env_kept[i], v);
	}
	env[n] = NULL;
}

static void
free_env(char **env)
{
	for (int i = 0; env[i]; i++)
		free(env[i]);
}

/*
 * In the child: every descriptor above 2 is closed when the program starts
 * (the pipe that reports a failed start is close-on-exec already), whatever
 * the agent inherited or opened.
 */
static bool
close_on_exec_from_3(void)
{
	DIR		   *d;
	struct dirent *de;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return true;
#endif
	if ((d = opendir("/proc/self/fd")) == NULL)
		return false;
	while ((de = readdir(d)) != NULL)
	{
		int			fd = atoi(de->d_name);

		if (fd > 2 && fd != dirfd(d) && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		{
			closedir(d);
			return false;
		}
	}
	closedir(d);
	return true;
}

/*
 * Descriptors 0, 1 and 2 open (on /dev/null if the agent was started
 * without them), so that no pipe or file of the agent's takes their place.
 */
static void
std_fds_open(void)
{
	int			fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

/* In the child: a session of its own and a clean start; the step that failed, or NULL. */
static const char *
child_detach(void)
{
	const char *step = NULL;
	int			null;

	if (setsid() < 0)
		return "starting a new session";
	if ((null = open("/dev/null", O_RDWR)) < 0)
		return "opening /dev/null";
	if (dup2(null, 0) < 0 ||
		(isatty(1) && dup2(null, 1) < 0) ||
		(isatty(2) && dup2(null, 2) < 0))
		step = "redirecting to /dev/null";
	if (null > 2)
		close(null);
	if (step == NULL && !close_on_exec_from_3())
		step = "closing the agent's descriptors";
	return step;
}

/* In the child: become account for good; the step that failed, or NULL. */
static const char *
child_switch_account(const struct passwd *account)
{
	/* groups first: after setuid there is no right left to change them */
	if (initgroups(account->pw_name, account->pw_gid) != 0)
		return "initgroups";
	if (setgid(account->pw_gid) != 0)
		return "setgid";
	if (setuid(account->pw_uid) != 0)
		return "setuid";
	if (setuid(0) == 0)
		return "dropping root";	/* must not be possible any more */
	return NULL;
}

/* The child: set up, then exec; what failed goes to errpipe. */
static void
child_run(const char *dir, const char *cmd, const struct passwd *account, char **env, int errpipe)
{
	char		msg[512];
	const char *step = child_detach();

	if (step == NULL && account != NULL && account->pw_uid != geteuid())
		step = child_switch_account(account);
	if (step == NULL && chdir(dir) != 0)
		step = "entering the package directory";
	if (step == NULL)
	{
		char	   *argv[] = {"sh", "-c", (char *) cmd, NULL};

		execve("/bin/sh", argv, env);
		step = "starting /bin/sh";
	}
	snprintf(msg, sizeof(msg), "%s%s%s failed: %s", step,
			 account ? " as " : "", account ? account->pw_name : "", strerror(errno));
	if (write(errpipe, msg, strlen(msg)) < 0)
		_exit(RUN_NOT_STARTED);
	_exit(RUN_NOT_STARTED);
}

/* Wait for pid until deadline (0: none); its exit code, 128 + signal, or RUN_TIMED_OUT. */
static int
wait_for_program(pid_t pid, time_t deadline, bool not_started)
{
	int			st;

	for (;;)
	{
		pid_t		r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
		{
			int			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

			return not_started ? RUN_NOT_STARTED : rc;
		}
		if (r < 0 && errno != EINTR)
			return RUN_NOT_STARTED;
		if (deadline && time(NULL) >= deadline)
		{
			/* its session is its process group: the program and what it started */
			kill(-pid, SIGTERM);
			for (int i = 0; i < 50 && waitpid(pid, &st, WNOHANG) == 0; i++)
				usleep(100000);
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			return RUN_TIMED_OUT;
		}
		usleep(50000);
	}
}

int
run_program(const char *dir, const char *cmd, int32_t max_minutes, int minute_seconds,
			const struct passwd *account, char *why, size_t whylen)
{
	pid_t		pid;
	int			errpipe[2];
	time_t		deadline = max_minutes > 0 ? time(NULL) + (time_t) max_minutes * minute_seconds : 0;
	ssize_t		got;
	char	   *env[PROGRAM_ENV_MAX];

	why[0] = '\0';
	std_fds_open();
	program_env(dir, account ? account : getpwuid(geteuid()), env);
	/* the child says why it could not start through a pipe closed by exec */
	if (pipe(errpipe) != 0 || fcntl(errpipe[0], F_SETFD, FD_CLOEXEC) != 0 ||
		fcntl(errpipe[1], F_SETFD, FD_CLOEXEC) != 0)
	{
		snprintf(why, whylen, "cannot create a pipe: %s", strerror(errno));
		free_env(env);
		return RUN_NOT_STARTED;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		snprintf(why, whylen, "cannot fork: %s", strerror(errno));
		close(errpipe[0]);
		close(errpipe[1]);
		free_env(env);
		return RUN_NOT_STARTED;
	}
	if (pid == 0)
	{
		close(errpipe[0]);
		child_run(dir, cmd, account, env, errpipe[1]);
	}
	close(errpipe[1]);
	free_env(env);
	got = read(errpipe[0], why, whylen - 1);
	why[got > 0 ? got : 0] = '\0';
	close(errpipe[0]);
	return wait_for_program(pid, deadline, why[0] != '\0');
}
