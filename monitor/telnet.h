/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The telnet side of a telnet=on socket, as much of it as QEMU 7.2 has:
 * a fixed offer on connecting and a filter that drops IAC commands from
 * what the peer types.
 */
#ifndef MONITOR_TELNET_H
#define MONITOR_TELNET_H

#include <stddef.h>

/* IAC WILL ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC WILL BINARY, IAC DO BINARY */
#define TELNET_OFFER "\xff\xfb\x01\xff\xfb\x03\xff\xfb\x00\xff\xfd\x00"
#define TELNET_OFFER_LEN (sizeof(TELNET_OFFER) - 1)

/*
 * Send the offer on a fresh connection @fd, for users without an output
 * queue (a socket's buffer takes twelve bytes whole); a failure shows
 * as the hangup the next read sees.
 */
void telnet_send_offer(int fd);

/* Where the filter is between reads: a command may span them. */
typedef enum TelnetState {
    TELNET_DATA,        /* plain bytes */
    TELNET_IAC,         /* after IAC: the command byte comes next */
    TELNET_OPTION,      /* after IAC and a command: its option byte */
} TelnetState;

/*
 * Drop the telnet commands from @len bytes of input, in place, and
 * return how many bytes are left.  IAC IAC is one 0xff byte; IAC BREAK
 * is two bytes; every other command is three (IAC, command, option),
 * whatever the command, as QEMU counts them.
 */
size_t telnet_filter(TelnetState *state, char *buf, size_t len);

#endif /* MONITOR_TELNET_H */
