/*-------------------------------------------------------------------------
 *
 * sender_transfer.h
 *	  One transfer of the Sender: a package file (or a delta, or a file its
 *	  builder is still writing) sent to one child site for one job, as a
 *	  state machine (sender_transfer.c).
 *
 *	transfer	what the Sender claimed (sender.c): the send rows of one
 *				(job, hop), the file to send and the sender address.
 *	hop			the child of this site on the way to the job's target
 *				sites; one transfer carries all of the targets behind it.
 *	stream		a package file its builder is still writing, sent as it
 *				grows (stream_id names it; streaming: not finished yet).
 *	state		where a transfer stands (TransferState); the final states
 *				are what sender_run_transfer answers.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SENDER_TRANSFER_H
#define SMSDIST_SENDER_TRANSFER_H

#include "sender_throttle.h"

typedef struct Transfer
{
	char	   *job_id;
	char	   *job_type;
	char	   *package_id;
	int			version;
	char	   *package_name;
	char	   *source_directory;
	char	   *file;
	int64		bytes;
	char	   *sha256;
	char	   *hop;
	char	   *targets;		/* text[] literal of the target sites behind hop */
	char	   *conninfo;
	Throttle	throttle;
	int			fd;				/* the package file while it is sent, or -1 */
	int			base_version;	/* file is a delta from this version; 0: full */
	int			build_base;		/* this site's build is itself a delta from it */
	bool		full_required;	/* a site behind the hop asked for the full file */
	char	   *manifest;		/* of this version, if known */
	char	   *run;			/* run_job_details() for a run-command job */
	char	   *stream_id;		/* the build's stream ID (a full file of a local build) */
	bool		streaming;		/* the build is still being written: size and hash unknown */
	int64		sent;			/* bytes the site took in this attempt (all streams) */
	int64		sent_at_claim;	/* of which before this claim (a stream stepped out of) */
	/* the link's throughput, measured: bytes taken and time on the wire */
	int64		link_bytes;
	int64		link_us;		/* chunks sent and answered, not throttling pauses */
	bool		in_helper;		/* run by a send helper, not the Sender (sender_fanout.c) */
} Transfer;

/*
 * The states of a transfer, in the order a plain transfer goes through
 * them; sender_transfer.c has one function per state, answering the next.
 */
typedef enum TransferState
{
	TRANSFER_CONNECTING,		/* open the link to the hop */
	TRANSFER_FOLLOWING_BUILD,	/* a stream was given up: what is the build now? */
	TRANSFER_CHECKING_SITE,		/* can the site read this site's package files? */
	TRANSFER_SENDING_SMALL,		/* a small file: begin, its chunk and end at once */
	TRANSFER_BEGINNING,			/* receive_begin: the offset the site has */
	TRANSFER_OPENING,			/* open the file and enter pipeline mode */
	TRANSFER_SENDING_CHUNKS,	/* keep chunks in flight */
	TRANSFER_ACKNOWLEDGING,		/* the site's answer to the oldest chunk */
	TRANSFER_WAITING_FOR_BUILD, /* streaming, and less than a chunk to send */
	TRANSFER_TOTALLING,			/* the stream is finished: receive_total */
	TRANSFER_LEAVING_PIPELINE,	/* every byte acknowledged */
	TRANSFER_ENDING,			/* receive_end: the site takes package and job */
	/* final states */
	TRANSFER_DONE,
	TRANSFER_FAILED,			/* *err says why */
	TRANSFER_UNREACHABLE,		/* no link to the hop at all (*err): no
								 * transfer to it can do better now */
	TRANSFER_PAUSED,			/* the rate limit of this hour is 0 % (*err) */
	TRANSFER_YIELDED			/* stepped out of a stream: other work waits */
} TransferState;

extern TransferState sender_run_transfer(Transfer *t, char **err);
extern char *sender_result_value(int col);

#endif							/* SMSDIST_SENDER_TRANSFER_H */
