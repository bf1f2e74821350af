"""A bare HTTP PUT sink (``python -m benchmarks.sink PORT_FILE``): the client's ceiling, no emulator.

It reads the headers, answers ``100 Continue`` when asked, receives ``Content-Length`` bytes into
one reused buffer and answers ``200`` — no parsing of the body, no storage, one thread per
connection. An upload to it measures what the client (and the loopback) can do; the same upload
to the emulator, what the emulator lets it do.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

BUFFER = 1024 * 1024


def serve(conn: socket.socket) -> None:
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
        if headers.get(b"expect", b"").lower() == b"100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        left = int(headers.get(b"content-length", b"0")) - len(body)
        buffer = bytearray(BUFFER)
        while left > 0:
            n = conn.recv_into(buffer, min(left, BUFFER))
            if not n:
                return
            left -= n
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def main(port_file: Path) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port_file.write_text(str(server.getsockname()[1]))
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
