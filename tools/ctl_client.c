/*
 * ctl_client.c -- status and unbind: talking to a running daemon.
 * (Filled in together with the daemon's control channel.)
 */
#include <stdio.h>

#include "daxfsctl.h"

int cmd_status(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "daxfsctl status: not available in this build\n");
	return 1;
}

int cmd_unbind(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "daxfsctl unbind: not available in this build\n");
	return 1;
}
