/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU answers no option and runs no option state: a monitor or a
 * serial line only has to keep the negotiation out of its input.  A
 * break (IAC BREAK) is an event a monitor ignores, so it is dropped
 * like the rest.
 */
#include "config.h"

#include <unistd.h>

#include "monitor/telnet.h"

#define IAC 0xff
#define IAC_BREAK 0xf3

size_t telnet_filter(TelnetState *state, char *buf, size_t len)
{
    size_t out = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = buf[i];

        switch (*state) {
        case TELNET_DATA:
            if (c == IAC) {
                *state = TELNET_IAC;
            } else {
                buf[out++] = c;
            }
            break;
        case TELNET_IAC:
            if (c == IAC) {
                buf[out++] = c;
                *state = TELNET_DATA;
            } else {
                /* any command but BREAK takes an option byte, even NOP */
                *state = c == IAC_BREAK ? TELNET_DATA : TELNET_OPTION;
            }
            break;
        case TELNET_OPTION:
            *state = TELNET_DATA;
            break;
        }
    }
    return out;
}

void telnet_send_offer(int fd)
{
    if (write(fd, TELNET_OFFER, TELNET_OFFER_LEN) < 0) {
        return;     /* the peer is gone: its read says so */
    }
}
