/* SPDX-License-Identifier: MIT */
/*
 * Freed heap memory back to the system every few seconds (glibc's malloc_trim): the window's
 * memory follows its traffic, so a burst leaves free pages inside the heap that glibc would keep
 * resident; trimming keeps RSS on what the window holds.
 */
#ifndef SRV_TRIM_H
#define SRV_TRIM_H

/* Start the trimming thread: 0, or -1 (none: memory is still correct, only RSS may stay high). */
int srv_trim_start(void);
/* Stop it (no-op when it did not start). */
void srv_trim_stop(void);

#endif
