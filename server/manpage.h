/* SPDX-License-Identifier: MIT */
/* The prose of txstats-server(1); options.c writes the page around it from its option table. */
#ifndef TXSTATS_MANPAGE_H
#define TXSTATS_MANPAGE_H

extern const char srv_man_description[]; /* .SH DESCRIPTION */
extern const char srv_man_trailer[];     /* SIGNALS, EXIT STATUS, FILES, SEE ALSO */

#endif
