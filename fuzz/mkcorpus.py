#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Write the seed corpora of the fuzzers: fuzz/corpus/<fuzzer>/<seed>.

Each seed is a meaningful input in the harness's format (see the comment
at the top of fuzz/fuzz_<name>.c).  Re-run after changing a format;
the files are small and kept in the repository.

    fuzz/mkcorpus.py [DIR]      (default: fuzz/corpus next to this file)
"""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(fuzzer, name, data):
    d = os.path.join(out, fuzzer)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- fuzz_http: 8 control bytes, then the stream --------------------------
# [0] line 8+4b [1] header bytes 16+8b [2] fields 1+b%32 [3] body 16*b
# [4] sink 8*b [5..6] split seed [7] bit 0 default limits
DEF = bytes([0, 0, 0, 0, 64, 0, 7, 1])            # default limits, sink 512
SMALL = bytes([16, 24, 5, 8, 4, 1, 2, 0])          # line 72, hdr 208, 6 fields,
                                                   # body 128, sink 32
http = {
    "get": DEF + b"GET /demo HTTP/1.1\r\nHost: a\r\n\r\n",
    "get_query": DEF + b"GET /demo/x?a=1&b=2 HTTP/1.1\r\nHost: h\r\n"
                       b"Accept: */*\r\nX-Request-Id: r1\r\n\r\n",
    "post_cl": DEF + b"POST /upper HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 5\r\n\r\nhello",
    "chunked": DEF + b"POST /upper HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    "pipelined": DEF + b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                       b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                       b"GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                       b"GET /after-close HTTP/1.1\r\nHost: h\r\n\r\n",
    "http10": DEF + b"\r\n\r\nGET /x HTTP/1.0\r\n\r\n",
    "expect": DEF + b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 2\r\n\r\nok",
    "xspry": DEF + b"POST /c HTTP/1.1\r\nHost: h\r\nx-spry-status: 201\r\n"
                   b"X-Spry-Content-Type: a/b\r\nContent-Length: 1\r\n\r\nz",
    "small_limits": SMALL + b"POST /upper/rest HTTP/1.1\nHost: h\nA: 1\nB: 2\n"
                            b"Transfer-Encoding: chunked\n\n"
                            b"10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
    "bad_te": DEF + b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "bad_version": DEF + b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "obs_fold": DEF + b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n",
    "connect": DEF + b"CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n",
}
for k, v in http.items():
    put("fuzz_http", k, v)

# --- fuzz_apply: chain files ------------------------------------------------
put("fuzz_apply", "full", b"""chains:
  - name: demo
    user: root
    hops: [upper, reverse]
    functions: [helper]
    calls: [{from: upper, to: helper}]
    buffers: 1024
    buffer-size: 4096
    max-inflight: 256
    deadline-ms: 5000
    idempotent: [upper]
""")
put("fuzz_apply", "two", b"""chains:
- name: a
  hops: [x]
- name: b
  user: 0
  hops:
    - y
    - z
  idempotent: [z]
""")
put("fuzz_apply", "empty", b"chains:\n")
put("fuzz_apply", "flow", b'{chains: [{name: "q", hops: [f1, f2, f3], buffers: 8}]}\n')
put("fuzz_apply", "alias", b"chains:\n  - &c {name: a, hops: [x]}\n  - *c\n")
put("fuzz_apply", "invoke", b"""chains:
  - name: demo
    user: nobody
    hops: [upper]
    invoke:
      users: [root, 1000, nobody]
      groups: [daemon, 4242]
    http: false
  - name: open
    hops: [x]
    invoke: {groups: []}
    http: true
""")
put("fuzz_apply", "invoke-bad", b"""chains:
  - name: demo
    hops: [upper]
    invoke: {users: [1, 1], groups: [no-such-group], other: 1}
    http: off
""")

# --- fuzz_desc: struct spry_desc (64 bytes) + steering bytes ---------------
# version hop status flags | chain fn | req_id | off | len cap | key |
# origin inst ret_fn ret_inst | meta_len gen | t_start
DESC = struct.Struct("<BBBBHHQQIIQHHHHIIQ")
assert DESC.size == 64


def desc(off=0, length=0, cap=0, meta=0, flags=0, status=0, chain=7, fn=3,
         gen=1, version=1, key=0):
    return DESC.pack(version, 0, status, flags, chain, fn, 0x1234, off,
                     length, cap, key, 0, 0, 0, 0, meta, gen, 0)


# steering [64]: 1 rebase off, 2 cap from buffer, 4 gen, 8 runnable, 16 a mail,
# 32 its answer
put("fuzz_desc", "run_reg", desc(0, 100, 0, 16) + bytes([1 | 2 | 4, 0]))
put("fuzz_desc", "run_large", desc(0, 1000, 0, 24) + bytes([1 | 2, 9]))
put("fuzz_desc", "off_in_buf", desc(64, 10, 128, 0) + bytes([1, 3]))
put("fuzz_desc", "past_end", desc(0xffff, 1, 300) + bytes([1 | 8, 7]))
put("fuzz_desc", "call", desc(0, 1, 0, flags=1, fn=3) + bytes([1 | 2, 2]))
put("fuzz_desc", "call_other", desc(0, 1, 0, flags=1, fn=4) + bytes([1 | 2, 2]))
put("fuzz_desc", "reply", desc(0, 1, 0, flags=2) + bytes([1 | 2 | 4, 5]))
put("fuzz_desc", "error_status", desc(0, 1, 0, status=3) + bytes([1, 1]))
put("fuzz_desc", "raw_offsets", desc(0x1000, 8, 256, 0))
# mails (hop: the mailbox is byte 1): taken, a bad mailbox, an answer
put("fuzz_desc", "mail", desc(0, 10, 0, 0, flags=0x80) + bytes([1 | 2 | 16, 4]))
put("fuzz_desc", "mail_box16", desc(0, 10, 0, 0, flags=0x80)[:1] + b"\x10" +
    desc(0, 10, 0, 0, flags=0x80)[2:] + bytes([1 | 2 | 16, 4]))
put("fuzz_desc", "mail_answer", desc(0, 0, 0, flags=0x82) + bytes([16 | 32, 0]))
put("fuzz_desc", "overflow", desc(0xffffffffffffffc0, 0xffffffff, 0xffffffff,
                                  0xffffffff, key=0xffffffffffffffff))


# --- fuzz_dgram: UDP payloads -------------------------------------------------
def dgram(chain, payload, req_id=b"\x01\x02\x03\x04\x05\x06\x07\x08",
          magic=0x53505251, version=1, flags=0, status=0, pad=b"\0\0\0",
          length=None):
    if length is None:
        length = len(payload)
    return struct.pack("!IBBH", magic, version, flags, chain) + req_id + \
        bytes([status]) + pad + struct.pack("!I", length) + payload


put("fuzz_dgram", "valid", dgram(1, b"hello"))
put("fuzz_dgram", "empty_payload", dgram(255, b""))
put("fuzz_dgram", "long", dgram(42, bytes(range(256)) * 4))
put("fuzz_dgram", "bad_len", dgram(3, b"abc", length=4))
put("fuzz_dgram", "response", dgram(3, b"abc", flags=1))
put("fuzz_dgram", "chain0", dgram(0, b"x"))
put("fuzz_dgram", "short", dgram(1, b"")[:23])


# --- fuzz_ctl: [0] recv size/4, [1] fds, then the datagram --------------------
def ctl(typ, body, status=0, magic=0x53505259, version=1, length=None):
    if length is None:
        length = len(body)
    return struct.pack("<IHHIi", magic, typ, version, length, status) + body


put("fuzz_ctl", "hello", bytes([16, 0]) + ctl(1, b""))
put("fuzz_ctl", "register_fd", bytes([32, 1]) + ctl(3, b"demo".ljust(32, b"\0") +
                                                   b"upper".ljust(32, b"\0") + bytes(8)))
put("fuzz_ctl", "reg_ack_fd", bytes([64, 1]) + ctl(4, struct.pack("<HHHHQ", 1, 2, 0, 0, 1 << 20) +
                                                  struct.pack("<HH", 2, 0) + b"upper".ljust(32, b"\0")))
put("fuzz_ctl", "invoke", bytes([255, 0]) + ctl(5, b"demo".ljust(32, b"\0") +
                                               struct.pack("<QII", 0, 0, 3) + b"abc"))
put("fuzz_ctl", "truncated", bytes([1, 2]) + ctl(6, bytes(24) + b"payload"))
put("fuzz_ctl", "bad_len", bytes([16, 0]) + ctl(2, bytes(8), length=9))


# --- fuzz_parse: [0..7] max (LE), [8] min = max >> ([8] % 65), the string ----
def parse(text, maximum=0xffffffffffffffff, shift=64):
    return struct.pack("<QB", maximum, shift) + text


put("fuzz_parse", "num", parse(b"18446744073709551615"))
put("fuzz_parse", "num_range", parse(b"300", 65535, 8))
put("fuzz_parse", "over", parse(b"18446744073709551616"))
put("fuzz_parse", "secs", parse(b"0.000000001"))
put("fuzz_parse", "v4", parse(b"127.0.0.1:8080"))
put("fuzz_parse", "v6", parse(b"[2001:db8::1]:65535"))
put("fuzz_parse", "port0", parse(b"[::ffff:1.2.3.4]:0"))


# --- fuzz_swap: [0] mode (bit 0 build through the API, bit 1 fix the
# checksums), then keys and damage (off:u32, xor:u8) or a raw swap file ---
def damage(*pairs):
    return b"".join(struct.pack("<IB", off, x) for off, x in pairs)


put("fuzz_swap", "build", bytes([1, 5, 1, 2, 3, 40, 255]))
put("fuzz_swap", "build_many", bytes([1, 23]) + bytes(range(7, 30)))
put("fuzz_swap", "build_empty", bytes([1, 0]))
put("fuzz_swap", "damage_hdr", bytes([1, 3, 9, 9, 9]) + damage((8, 1), (100, 0x80)))
put("fuzz_swap", "damage_data_fixed", bytes([3, 4, 50, 60, 70, 80]) +
    damage((8192 + 9000, 0x11), (8192 + 4096 + 64, 0xff), (8192 + 40000, 1)))
put("fuzz_swap", "damage_index_fixed", bytes([3, 6, 1, 1, 1, 1, 1, 1]) +
    damage((8192 + 8192 + 8, 0x40), (8192 + 8192 + 64, 0x01)))
put("fuzz_swap", "damage_store_hdr_fixed", bytes([3, 2, 10, 10]) +
    damage((8192 + 72, 0xff), (8192 + 1300, 0x20)))
put("fuzz_swap", "raw_magic", bytes([0]) + struct.pack("<QII", 0x5041575359525053, 1, 4096))
put("fuzz_swap", "raw_fixed", bytes([2]) + struct.pack("<QII", 0x5041575359525053, 1, 4096) +
    bytes(4096))


# --- fuzz_proc_table: the table file, then after a NUL its journal ---------
TABLE = (b'{"app": "a1", "boot": "90649f17-620f-4797-8a23-55201efa2199", "next-id": 12,'
         b' "processes": [{"id": 1, "state": "allocated", "pid": 870, "swap": false,'
         b' "activations": 1, "swaps": 0}, {"id": 2, "state": "swapped", "pid": 0,'
         b' "swap": false, "activations": 3, "swaps": 2}]}\n')
JOURNAL = (b'{"set": {"id": 4, "state": "allocated", "pid": 0}, "next-id": 12}\n'
           b'{"del": 2, "next-id": 12}\n'
           b'{"set": {"id": 1, "state": "allocated", "pid": 901, "swap": true}, "next-id": 13}\n')
put("fuzz_proc_table", "table", TABLE)
put("fuzz_proc_table", "table_journal", TABLE + b"\0" + JOURNAL)
put("fuzz_proc_table", "journal_torn", TABLE + b"\0" + JOURNAL + b'{"del": 4, "ne')
put("fuzz_proc_table", "journal_alone", b'{"app": "a1", "processes": []}\0' + JOURNAL)
put("fuzz_proc_table", "dup", b'{"app": "a1", "processes": [{"id": 3, "state": "allocated"},'
    b' {"id": 3, "state": "swapped"}]}')
put("fuzz_proc_table", "other_app", b'{"app": "a2", "processes": []}')


# --- fuzz_proc_ctl: a PROC body (struct spry_ctl_proc, 48 bytes) -------------
# what `spry process` and libspry's spry_send_all() send, and refused ones
def proc(app, pid, op, flags=0):
    return struct.pack("<32sQII", app, pid, op, flags)


put("fuzz_proc_ctl", "create", proc(b"counter", 7, 1))
put("fuzz_proc_ctl", "create_pick", proc(b"counter", 0, 1))
put("fuzz_proc_ctl", "del", proc(b"cart", 42, 2))
put("fuzz_proc_ctl", "show_all", proc(b"a1", 0, 3))
put("fuzz_proc_ctl", "show_active", proc(b"m1", 0, 3, 1))     # send to all
put("fuzz_proc_ctl", "swap", proc(b"kmeans", (1 << 63) - 1, 4))
put("fuzz_proc_ctl", "wake", proc(b"docbuild", 1, 5))
put("fuzz_proc_ctl", "name_31", proc(b"A-Z_a.z-01234567890123456789012", 3, 3))
put("fuzz_proc_ctl", "junk_after_nul", proc(b"m1\0junk", 1, 3))
put("fuzz_proc_ctl", "id_2_63", proc(b"a1", 1 << 63, 3))
put("fuzz_proc_ctl", "flag_on_swap", proc(b"m1", 1, 4, 1))
put("fuzz_proc_ctl", "short", proc(b"a1", 1, 3)[:40])


# --- fuzz_tmpl_proc: a template's FORK body for a cloud process
# (struct spry_tmpl_proc, 56 bytes, then the state path, the swap
# directory and the functions, each NUL-terminated) --------------------------
def tproc(app, pid, size, path, swap, fns, pad=0, lens=None):
    p = path + b"\0"
    s = swap + b"\0" if swap else b""
    f = fns + b"\0"
    pl, sl, fl = lens or (len(p), len(s), len(f))
    return struct.pack("<QQHHHH32s", pid, size, pl, sl, fl, pad, app) + p + s + f


put("fuzz_tmpl_proc", "counter", tproc(b"counter", 7, 64 << 20,
                                       b"/var/lib/spry/procs/counter/7",
                                       b"/var/lib/spry/swap", b"whoami,incr,echo"))
put("fuzz_tmpl_proc", "no_swap", tproc(b"a2", 1, 262144, b"/s/a2/1", b"", b"whoami"))
put("fuzz_tmpl_proc", "open_only", tproc(b"kmeans", (1 << 63) - 1, 0, b"/s/kmeans/9",
                                         b"/sw", b"init,step,result"))
put("fuzz_tmpl_proc", "fns_32", tproc(b"m", 3, 0, b"/p", b"",
                                      b",".join(b"f%d" % i for i in range(32))))
put("fuzz_tmpl_proc", "fns_33", tproc(b"m", 3, 0, b"/p", b"",
                                      b",".join(b"f%d" % i for i in range(33))))
put("fuzz_tmpl_proc", "empty_fn", tproc(b"m", 3, 0, b"/p", b"", b"a,,b"))
put("fuzz_tmpl_proc", "relative", tproc(b"m", 3, 0, b"p/1", b"", b"a"))
put("fuzz_tmpl_proc", "id_0", tproc(b"m", 0, 0, b"/p", b"", b"a"))
put("fuzz_tmpl_proc", "size_small", tproc(b"m", 1, 4096, b"/p", b"", b"a"))
put("fuzz_tmpl_proc", "pad", tproc(b"m", 1, 0, b"/p", b"", b"a", pad=1))
put("fuzz_tmpl_proc", "junk_after_nul", tproc(b"m\0x", 1, 0, b"/p", b"", b"a"))
put("fuzz_tmpl_proc", "nul_inside", tproc(b"m", 1, 0, b"/p\0q", b"", b"a"))
put("fuzz_tmpl_proc", "lens_off", tproc(b"m", 1, 0, b"/p", b"", b"a", lens=(3, 0, 3)))
put("fuzz_tmpl_proc", "short", tproc(b"m", 1, 0, b"/p", b"", b"a")[:50])
# encode's input: id, size (bit 7 of byte 15: a size the rules accept), app\npath\nswap\nfns
put("fuzz_tmpl_proc", "encode", struct.pack("<QQ", 5, 1 << 63) + b"a1\n/s/a1/5\n/sw\nx,y")


# --- fuzz_app_route: [0] bit 0 a Spry-Process header, the app's functions
# (comma-separated) '\n', the header's value '\n', the path after /APP ---
def route(path, hdr=None, fns=b"whoami,incr,echo"):
    return bytes([1 if hdr is not None else 0]) + fns + b"\n" + (hdr or b"") + b"\n" + path


put("fuzz_app_route", "id_fn", route(b"/7/incr"))
put("fuzz_app_route", "fn_header", route(b"/incr", b"7"))
put("fuzz_app_route", "fn_rest", route(b"/echo/a/b/c"))
put("fuzz_app_route", "no_id", route(b"/whoami"))
put("fuzz_app_route", "both_same", route(b"/42/get", b"42", b"add,get,empty"))
put("fuzz_app_route", "both_differ", route(b"/42/get", b"43", b"add,get,empty"))
put("fuzz_app_route", "id_max", route(b"/9223372036854775807/incr/"))
put("fuzz_app_route", "id_2_63", route(b"/9223372036854775808/incr"))
put("fuzz_app_route", "id_0", route(b"/0/whoami"))
put("fuzz_app_route", "empty_seg", route(b"//whoami"))
put("fuzz_app_route", "id_only", route(b"/11"))
put("fuzz_app_route", "digit_fn", route(b"/3d/x", None, b"3d,2fa"))
put("fuzz_app_route", "id_digit_fn", route(b"/5/2fa", b"5", b"3d,2fa"))
put("fuzz_app_route", "bad_header", route(b"/incr", b" 7"))
put("fuzz_app_route", "kmeans", route(b"/3/step", None, b"load,step,show"))


# "swap-file": true, false, absent (an older table: unknown), not a boolean
SWAPFILE = (b'{"app": "a1", "next-id": 3, "processes": [{"id": 1, "state": "swapped",'
            b' "swap-file": true, "swaps": 1}, {"id": 2, "state": "allocated",'
            b' "swap-file": false}, {"id": 3, "state": "swapped"}]}\n')
put("fuzz_proc_table", "swap_file", SWAPFILE + b"\0" +
    b'{"set": {"id": 3, "state": "allocated", "pid": 77, "swap-file": true}, "next-id": 3}\n'
    b'{"set": {"id": 2, "state": "swapped", "swap-file": false}, "next-id": 3}\n')
put("fuzz_proc_table", "swap_file_bad", b'{"app": "a1", "processes": [{"id": 1,'
    b' "state": "swapped", "swap-file": 1}]}')
