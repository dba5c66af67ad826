#!/usr/bin/env python3
"""On-path RST injector for the lab's firewall namespace.

Watches the firewall's client-side interface with a packet socket for a TCP
segment from the client carrying a marker, then sends one RST to each end,
each spoofed in the other end's name with exact sequence numbers, without the
ACK bit, from this host (so with this host's own TTL). Exits after one
injection or after --timeout seconds.
"""
import argparse, socket, struct, time

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def rst(src, dst, sport, dport, seq, ipid):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x04, 0, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ipid, 0, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("--marker", default="LAB-INJECT")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
    sniff.bind((a.iface, 0))
    sniff.settimeout(1)
    out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    deadline = time.time() + a.timeout
    marker = a.marker.encode()
    while time.time() < deadline:
        try:
            frame = sniff.recv(65535)
        except socket.timeout:
            continue
        ip = frame[14:]
        if len(ip) < 40 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:tot]
        doff = (tcp[12] >> 4) * 4
        payload = tcp[doff:]
        if marker not in payload:
            continue
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        # The firewall drops the trigger, so the server expects exactly its seq.
        out.sendto(rst(src, dst, sport, dport, seq, 0), (dst, 0))   # to the server in the client's name
        out.sendto(rst(dst, src, dport, sport, ack, 0), (src, 0))   # to the client in the server's name
        print(f"injected RSTs for {src}:{sport} <-> {dst}:{dport}")
        return
    print("no trigger seen")

if __name__ == "__main__":
    main()
