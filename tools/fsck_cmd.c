/*
 * fsck_cmd.c -- daxfsctl fsck (placeholder until fsck.c lands).
 */
#include <stdio.h>

#include "daxfsctl.h"

int cmd_fsck(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "daxfsctl fsck: not available in this build\n");
	return 8;
}
