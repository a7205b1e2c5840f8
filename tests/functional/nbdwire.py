# SPDX-License-Identifier: GPL-2.0-or-later
"""A small NBD client speaking the wire protocol by hand (doc/proto.md),
for tests that need what real clients never send: pipelined requests
read back out of order, garbage, requests past the end, or a client
that stays connected while the server is told to remove its export."""

import socket
import struct

INIT_MAGIC = 0x4e42444d41474943
OPTS_MAGIC = 0x49484156454f5054
REP_MAGIC = 0x0003e889045565a9
REQUEST_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCTURED_MAGIC = 0x668e33ef

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST = 1, 2, 3
OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY = 6, 7, 8
OPT_LIST_META, OPT_SET_META = 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 4, 5, 6, 7
FLAG_FUA, FLAG_NO_HOLE, FLAG_DF, FLAG_REQ_ONE = 1, 2, 4, 8
REPLY_OFFSET_DATA, REPLY_OFFSET_HOLE, REPLY_BLOCK_STATUS = 1, 2, 5
REPLY_ERROR = 0x8001


class NbdClient:
    """One connection: the greeting read, the options sent one by one."""

    def __init__(self, path=None, port=None, timeout=30):
        if path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port),
                                                 timeout=timeout)
        magic, opts, self.hflags = struct.unpack(">QQH", self.recv(18))
        assert (magic, opts) == (INIT_MAGIC, OPTS_MAGIC), (magic, opts)
        self.sock.sendall(struct.pack(">I", 3))    # fixed newstyle, no zeroes
        self.structured = False
        self.size = self.tflags = None

    def close(self):
        self.sock.close()

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            d = self.sock.recv(n - len(buf))
            if not d:
                raise EOFError("server closed after %d of %d bytes"
                               % (len(buf), n))
            buf += d
        return buf

    def option(self, opt, data=b""):
        self.sock.sendall(struct.pack(">QII", OPTS_MAGIC, opt, len(data))
                          + data)

    def opt_reply(self):
        """(option, reply type, data) of one option reply."""
        magic, opt, rtype, n = struct.unpack(">QIII", self.recv(20))
        assert magic == REP_MAGIC, hex(magic)
        return opt, rtype, self.recv(n)

    def replies(self):
        """Every reply to the option last sent, up to the final one."""
        out = []
        while True:
            r = self.opt_reply()
            out.append(r)
            if r[1] != REP_INFO and r[1] != REP_SERVER \
                    and r[1] != REP_META:
                return out

    def structured_reply(self):
        self.option(OPT_STRUCTURED_REPLY)
        (r,) = self.replies()
        assert r[1] == REP_ACK, r
        self.structured = True

    def meta(self, opt, name, queries):
        data = struct.pack(">I", len(name)) + name.encode() \
            + struct.pack(">I", len(queries))
        for q in queries:
            data += struct.pack(">I", len(q)) + q.encode()
        self.option(opt, data)
        return self.replies()

    def go(self, name, opt=OPT_GO):
        self.option(opt, struct.pack(">I", len(name)) + name.encode()
                    + struct.pack(">H", 0))
        reps = self.replies()
        for _, rtype, data in reps:
            if rtype == REP_INFO and struct.unpack(">H", data[:2])[0] == 0:
                self.size, self.tflags = struct.unpack(">QH", data[2:])
        return reps

    def request(self, cmd, offset, length, handle, flags=0, data=b""):
        self.sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd,
                                      handle, offset, length) + data)

    def reply(self, read_len=0):
        """One reply: ("simple", handle, error, data) or ("chunk",
        handle, error or 0, (flags, type, payload))."""
        magic = struct.unpack(">I", self.recv(4))[0]
        if magic == SIMPLE_MAGIC:
            err, handle = struct.unpack(">IQ", self.recv(12))
            return ("simple", handle, err,
                    self.recv(read_len) if not err and read_len else b"")
        assert magic == STRUCTURED_MAGIC, hex(magic)
        flags, rtype, handle, n = struct.unpack(">HHQI", self.recv(16))
        payload = self.recv(n)
        err = struct.unpack(">I", payload[:4])[0] if rtype & 0x8000 else 0
        return ("chunk", handle, err, (flags, rtype, payload))

    def read_all(self, handle):
        """The chunks of one structured reply, up to the DONE flag,
        as bytes (holes as zeroes) relative to the first offset."""
        chunks = []
        while True:
            kind, h, err, (flags, rtype, payload) = self.reply()
            assert h == handle and not err, (h, handle, err, payload)
            chunks.append((rtype, payload))
            if flags & 1:
                return chunks
