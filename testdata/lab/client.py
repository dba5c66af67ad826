#!/usr/bin/env python3
"""Scripted SMTP clients for endings no real client produces on purpose.

Each mode speaks real SMTP to the lab's Postfix and ends the session in one
particular way. Every wait is bounded; the script never loops forever.
usage: client.py MODE SERVER [--port 25] [--pause SECONDS]
"""
import argparse, socket, ssl, struct, sys, time

def recv_reply(s, timeout=15.0):
    """Read one complete (possibly multi-line) SMTP reply."""
    s.settimeout(timeout)
    buf = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            return buf.decode("latin-1")
        buf += chunk
        lines = buf.split(b"\r\n")
        for l in lines[:-1]:
            if len(l) >= 4 and l[3:4] == b" " or len(l) == 3:
                return buf.decode("latin-1")
    return buf.decode("latin-1")

def cmd(s, line, expect=None):
    s.sendall(line.encode() + b"\r\n")
    r = recv_reply(s)
    if expect and not r.startswith(expect):
        print(f"unexpected reply to {line!r}: {r!r}", file=sys.stderr)
    return r

def connect(server, port):
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect((server, port))
    recv_reply(s)  # greeting
    return s

def envelope(s, ehlo=True):
    cmd(s, "EHLO client.lab.example" if ehlo else "HELO client.lab.example", "250")
    cmd(s, "MAIL FROM:<alice@client.lab.example>", "250")
    cmd(s, "RCPT TO:<bob@example.org>", "250")

def linger_rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

BODY = b"From: alice@client.lab.example\r\nTo: bob@example.org\r\nSubject: lab\r\n\r\n" + b"line of body text\r\n" * 20

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("server")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--pause", type=float, default=8.0)
    a = ap.parse_args()
    s = connect(a.server, a.port)
    m = a.mode
    if m == "fin-data":            # FIN in the middle of DATA, no QUIT
        envelope(s)
        cmd(s, "DATA", "354")
        s.sendall(BODY[:80])
        time.sleep(0.2)
        s.shutdown(socket.SHUT_WR)
        recv_reply(s, 5)
        s.close()
    elif m == "rst-data":          # SO_LINGER 0 close in the middle of DATA
        envelope(s)
        cmd(s, "DATA", "354")
        s.sendall(BODY[:80])
        time.sleep(0.2)
        linger_rst(s)
    elif m == "rst-rcpt":
        envelope(s)
        time.sleep(0.2)
        linger_rst(s)
    elif m == "sleep-data":        # killed by the lab while in DATA
        envelope(s)
        cmd(s, "DATA", "354")
        s.sendall(BODY[:80])
        print("in-data", flush=True)
        time.sleep(60)
    elif m == "idle-greeting":     # the server times out after its greeting
        recv_reply(s, a.pause + 10)
        s.close()
    elif m == "idle-rcpt":
        envelope(s)
        recv_reply(s, a.pause + 10)
        s.close()
    elif m == "idle-data":
        envelope(s)
        cmd(s, "DATA", "354")
        s.sendall(BODY[:80])
        recv_reply(s, a.pause + 10)
        s.close()
    elif m == "idle-resume":       # idle longer than the firewall's timer, then talk
        cmd(s, "EHLO client.lab.example", "250")
        time.sleep(a.pause)
        try:
            s.sendall(b"MAIL FROM:<alice@client.lab.example>\r\n")
            r = recv_reply(s, 12)
            print("after resume:", repr(r), file=sys.stderr)
        except OSError as e:
            print("after resume:", e, file=sys.stderr)
        s.close()
    elif m in ("bdat", "bdat-block"):  # CHUNKING; bdat-block carries the firewall's trigger
        cmd(s, "EHLO client.lab.example", "250")
        cmd(s, "MAIL FROM:<alice@client.lab.example>", "250")
        cmd(s, "RCPT TO:<bob@example.org>", "250")
        body = BODY + (b"X-Lab: LAB-BLOCK\r\n" if m == "bdat-block" else b"")
        half = len(body) // 2
        try:
            s.sendall(b"BDAT %d\r\n" % half + body[:half])
            recv_reply(s)
            s.sendall(b"BDAT %d LAST\r\n" % (len(body) - half) + body[half:])
            recv_reply(s)
            cmd(s, "QUIT", "221")
        except OSError as e:
            print("bdat:", e, file=sys.stderr)
        s.close()
    elif m == "quit-no-wait":      # QUIT and close without reading the 221
        envelope(s)
        cmd(s, "DATA", "354")
        s.sendall(BODY + b".\r\n")
        recv_reply(s)
        # QUIT and FIN in one segment (corked), so no 221 can come first
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        s.sendall(b"QUIT\r\n")
        s.shutdown(socket.SHUT_WR)
        s.close()
    elif m == "starttls-rst":      # STARTTLS, a TLS session, then an abortive close
        cmd(s, "EHLO client.lab.example", "250")
        cmd(s, "STARTTLS", "220")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        t = ctx.wrap_socket(s, server_hostname="mx.lab.example")
        t.sendall(b"EHLO client.lab.example\r\n")
        t.recv(4096)
        t.sendall(b"MAIL FROM:<alice@client.lab.example>\r\n")
        t.recv(4096)
        time.sleep(0.2)
        raw = t.unwrap() if False else t
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
    elif m == "trigger":           # sends the injector's trigger in the body
        envelope(s)
        cmd(s, "DATA", "354")
        try:
            s.sendall(BODY[:60] + b"X-Lab: LAB-INJECT\r\n")
            recv_reply(s, 6)
        except OSError as e:
            print("trigger:", e, file=sys.stderr)
        s.close()
    else:
        print("unknown mode", m, file=sys.stderr)
        sys.exit(2)

if __name__ == "__main__":
    main()
