/*-------------------------------------------------------------------------
 *
 * program_runner.h
 *	  Running one program: its process, its account, its time limit and
 *	  exit code (program_runner.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PROGRAM_RUNNER_H
#define SMSDIST_PROGRAM_RUNNER_H

#include <pwd.h>
#include <stddef.h>
#include <stdint.h>

/* run_program: the program ran longer than its maximum run time and was stopped */
#define RUN_TIMED_OUT		(-1)
/* run_program: the program could not be started (why says why), as a shell says */
#define RUN_NOT_STARTED		127

/*
 * The local account a program with the user's rights runs as: account
 * (--user-account), else the name part of user (CORP\alice -> alice).
 * NULL, with why filled in, when it cannot run now (no user logged on, no
 * such account, or an agent not running as root that would need to switch).
 */
extern const struct passwd *user_rights_account(const char *user, const char *account,
												char *why, size_t whylen);

/*
 * Run cmd with /bin/sh in dir (first on PATH), at most max_minutes minutes
 * of minute_seconds seconds (0: no limit), as account (NULL: the agent's
 * own).  Returns the exit code, 128 + the signal that ended it,
 * RUN_TIMED_OUT (then its whole session was killed), or RUN_NOT_STARTED
 * with why saying why.
 */
extern int	run_program(const char *dir, const char *cmd, int32_t max_minutes, int minute_seconds,
						const struct passwd *account, char *why, size_t whylen);

#endif							/* SMSDIST_PROGRAM_RUNNER_H */
