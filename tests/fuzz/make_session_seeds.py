#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes the hand-made seeds of tests/fuzz/session_corpus/ (the input layout is described in
# session_core_fuzz.cc). Run from the repository root: python3 tests/fuzz/make_session_seeds.py
import os

OUT = os.path.join(os.path.dirname(__file__), "session_corpus")

# names: 0 alice 1 bob 2 carol 3 dave 4 eve 5 agent1 6 agent2 7 "bad name"
ALICE, BOB, CAROL, DAVE, EVE, AGENT1, AGENT2, BAD = range(8)


def config(max_clients=7, payload=0, session_timeout=5, ping=0, max_buffered=4, user_bytes=100,
           total_bytes=60, max_users=5, presence=1, register_timeout=0, max_unreg=0, per_ip=0,
           reg_rate=0, reg_burst=0, rate=0, bytes_rate=0, bad=0):
    return bytes([max_clients, payload, session_timeout, ping, max_buffered, user_bytes,
                  total_bytes, max_users, presence | (register_timeout << 1), max_unreg, per_ip,
                  reg_rate, reg_burst, rate, bytes_rate, bad])


def connect(slot, source=0):
    return bytes([0, slot | (source << 3)])


def frame(slot, kind, body, seq=1, ack=True, mutate=0, mutate_at=None):
    out = bytes([2, slot, kind, seq & 0xFF, seq >> 8, 1 if ack else 0]) + body + bytes([mutate])
    if mutate & 7 == 7:
        out += bytes([mutate_at or 0])
    return out


def register(slot, name, agent=False, session_sel=0, last_id_sel=0, extra=b"", **kw):
    body = bytes([name | (0x80 if agent else 0), session_sel]) + extra + bytes([last_id_sel])
    return frame(slot, 0, body, **kw)


def message(slot, to=None, text_sel=1, **kw):
    sel = 1 if to is None else (to << 2)  # sel % 3 == 0 picks a name
    if to is not None and sel % 3 != 0:
        sel = to << 2
        while sel % 3 != 0 or (sel >> 2) % 8 != to:
            sel += 32
    return frame(slot, 2, bytes([sel, text_sel]), **kw)


def agent_command(slot, text_sel=1, **kw):
    return frame(slot, 4, bytes([1, text_sel]) + bytes(8), **kw)


def image(slot, text_sel=2, **kw):
    return frame(slot, 5, bytes([1, text_sel]), **kw)


def ping(slot):
    return frame(slot, 6, bytes(7) + b"\x2a", ack=False)


def pong(slot):
    return frame(slot, 7, b"\x01", ack=False)


def list_users(slot):
    return frame(slot, 8, b"\x01", ack=False)


def logout(slot):
    return frame(slot, 9, b"", ack=False)


def health_check(slot):
    return frame(slot, 10, b"", ack=False)


def raw(slot, type_byte, payload):
    return frame(slot, 11, bytes([len(payload), type_byte]) + payload, ack=False)


def disconnect(slot, mask=0xFF):
    return bytes([6, slot, mask])


def advance(step):  # 0,1,50,100,1000,5000,40000,200000 ms, then tick()
    return bytes([7, step])


def reconfigure(cfg):
    return bytes([9]) + cfg


def shutdown():
    return bytes([10, 8, 5, 0])


def header_error(slot):
    return bytes([10, 1, slot, 3, 0, 2])


def health(slot):
    return bytes([11, slot])


def two_users():
    return (connect(0) + connect(1) + register(0, ALICE) + register(1, BOB) + advance(3))


SEEDS = {
    "register_and_chat": config() + two_users() + message(0) + message(1, to=ALICE)
    + message(0, to=BOB, text_sel=3) + list_users(0) + health_check(1) + logout(0),
    "offline_buffer_and_replay": config() + two_users() + disconnect(1, 0) + advance(3)
    + message(0, to=BOB) + message(0, to=BOB) + message(0) + connect(1)
    + register(1, BOB, session_sel=2, last_id_sel=0) + advance(3),
    "buffer_overflow": config(max_buffered=2, user_bytes=30) + two_users() + disconnect(1, 0)
    + b"".join(message(0, to=BOB, text_sel=3) for _ in range(6)) + connect(1)
    + register(1, BOB, session_sel=2) + advance(3),
    "unwritten_on_disconnect": config() + two_users()
    + b"".join(message(0, to=BOB, text_sel=2) for _ in range(4)) + disconnect(1, 3)
    + connect(1) + register(1, BOB, session_sel=2, last_id_sel=1, extra=b"") + advance(3),
    "takeover": config() + two_users() + message(0, to=BOB) + connect(2)
    + register(2, BOB, session_sel=2, last_id_sel=2) + disconnect(1, 0x41) + message(0)
    + advance(3),
    "session_expiry": config(session_timeout=2) + two_users() + disconnect(1, 0)
    + message(0, to=BOB) + advance(4) + advance(4) + connect(1)
    + register(1, BOB, session_sel=2) + register(1, BOB),
    "heartbeat": config(ping=3) + two_users() + advance(4) + pong(0) + advance(4) + advance(4)
    + ping(1) + advance(5),
    "agents": config() + connect(0) + connect(1) + connect(2) + register(0, ALICE)
    + register(1, AGENT1, agent=True) + register(2, AGENT2, agent=True) + agent_command(0)
    + agent_command(1, text_sel=2) + image(2),
    "limits_and_rates": config(max_clients=2, max_unreg=1, per_ip=1, reg_rate=1, reg_burst=1,
                               rate=0x09, bytes_rate=1, bad=2)
    + connect(0, 1) + connect(1, 1) + connect(2, 2) + register(0, ALICE) + register(0, ALICE)
    + raw(0, 0x7F, b"zz") + message(0) + message(0) + advance(4) + message(0),
    "max_users": config(max_users=1) + b"".join(
        connect(i) + register(i, i) + disconnect(i, 0) for i in range(6))
    + connect(6) + register(6, EVE) + list_users(6),
    "reconfigure_shrink": config() + two_users() + disconnect(1, 0)
    + b"".join(message(0, to=BOB, text_sel=2) for _ in range(4))
    + reconfigure(config(max_buffered=1, user_bytes=10, total_bytes=3)) + connect(1)
    + register(1, BOB, session_sel=2),
    "bad_frames": config(bad=3) + connect(0) + message(0) + raw(0, 0x02, b"\x00")
    + register(0, BAD) + register(0, ALICE, mutate=0x0F, mutate_at=2) + raw(0, 0x15, b"")
    + health(0),
    "register_timeout_and_header_error": config(register_timeout=1) + connect(0) + connect(1)
    + header_error(1) + advance(3) + advance(3) + health(0),
    "shutdown": config() + two_users() + message(0) + shutdown() + disconnect(0, 0x7F)
    + disconnect(1, 0xFF),
    "small_payload_limit": config(payload=1) + two_users() + message(0, text_sel=6)
    + message(1, text_sel=2),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
