#!/usr/bin/env python3
"""Derive an ESA-style text mail_logs file from Postfix's log.

The lab's server is Postfix; support cases come with Cisco ESA mail_logs.
This maps Postfix's per-connection story onto the ESA line types catalogued in
shared/esa/FORMAT.md (New SMTP ICID, Start MID, From, RID To, Message-ID,
ready, Message aborted ... Receiving aborted [by sender], Message finished,
ICID lost, ICID close), in appliance-local time with no zone, one-second
resolution, as real ones. Where the ESA's own wording for an event is not
public (its idle timeout), the choice is marked below.

usage: postfix2esa.py MAILLOG --year 2026 --offset 3600 --iface 198.51.100.25 [--header]
"""
import argparse, datetime, re, sys

LINE = re.compile(r"^(?P<mon>\w{3}) +(?P<day>\d+) (?P<time>\d\d:\d\d:\d\d) \S+ postfix/(?P<prog>[\w/-]+)\[(?P<pid>\d+)\]: (?P<msg>.*)$")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("maillog")
    ap.add_argument("--year", type=int, required=True)
    ap.add_argument("--offset", type=int, default=0, help="appliance local time minus UTC, seconds")
    ap.add_argument("--iface", default="198.51.100.25")
    ap.add_argument("--iface6", default="2001:db8:2::25")
    ap.add_argument("--header", action="store_true", help="write the Time offset header")
    ap.add_argument("--icid-base", type=int, default=3100)
    ap.add_argument("--mid-base", type=int, default=1400)
    a = ap.parse_args()

    out = []
    def emit(ts, text):
        local = ts + datetime.timedelta(seconds=a.offset)
        out.append(local.strftime("%a %b ") + f"{local.day:2d}" + local.strftime(" %H:%M:%S %Y") + " Info: " + text)

    icid_of_pid, mids_of_icid, mid_of_qid = {}, {}, {}
    ready, rids, sender, pend = set(), {}, {}, {}
    next_icid, next_mid = a.icid_base, a.mid_base
    first = True
    lines = [LINE.match(l.rstrip("\n")) for l in open(a.maillog, encoding="utf-8", errors="replace")]
    lines = [m for m in lines if m]
    # qmgr logs the size only after the session; take it from there.
    size = {}
    # The ESA writes "MID n Message-ID" before "MID n ready" (FORMAT.md 4.6 and
    # the lifecycle table in 8; shared/esa/samples 01 and 03), while Postfix's
    # cleanup may log message-id= after smtpd's END-OF-MESSAGE: take it from
    # there too and write it just before the ready line.
    msgid = {}
    for m in lines:
        c = re.match(r"([0-9A-F]+): from=<[^>]*>, size=(\d+),", m["msg"])
        if c:
            size[c.group(1)] = c.group(2)
        c = re.match(r"([0-9A-F]+): message-id=(.*)$", m["msg"])
        if c and m["prog"] == "cleanup":
            msgid.setdefault(c.group(1), c.group(2))
    for m in lines:
        ts = datetime.datetime.strptime(f"{a.year} {m['mon']} {m['day']} {m['time']}", "%Y %b %d %H:%M:%S")
        if first:
            first = False
            emit(ts, "Begin Logfile")
            emit(ts, "Version: 15.0.0-104 SN: 420D4FEA709365BFB3E3-LAB000000001")
            if a.header:
                emit(ts, f"Time offset from UTC: {a.offset} seconds")
        prog, pid, msg = m["prog"], m["pid"], m["msg"]
        if prog == "smtpd" and pid in pend:
            pts, pmid, picid, prcpt = pend.pop(pid)
            if not re.search(r": reject: RCPT from .*to=<%s>" % re.escape(prcpt), msg):
                emit(pts, f"MID {pmid} ICID {picid} RID {rids[pmid]} To: <{prcpt}>")
                rids[pmid] += 1
        if prog == "smtpd":
            c = re.match(r"connect from (\S+)\[([^\]]+)\](?::\d+)?$", msg)
            if c:
                icid = next_icid; next_icid += 1
                icid_of_pid[pid] = icid
                mids_of_icid[icid] = []
                ip = c.group(2)
                iface = a.iface6 if ":" in ip else a.iface
                emit(ts, f"New SMTP ICID {icid} interface Data 1 ({iface}) address {ip} reverse dns host unknown verified no")
                emit(ts, f"ICID {icid} ACCEPT SG UNKNOWNLIST match ALL SBRS not enabled")
                continue
            icid = icid_of_pid.get(pid)
            if icid is None:
                continue
            t = re.match(r"Anonymous TLS connection established from \S+: (\S+) with cipher (\S+)", msg)
            if t:
                emit(ts, f"ICID {icid} TLS success protocol {t.group(1)} cipher {t.group(2)}")
                continue
            f = re.match(r"NOQUEUE: info: MAIL from .*?; from=<([^>]*)>", msg)
            if f:
                sender[pid] = f.group(1)
                continue
            q = re.match(r"([0-9A-F]+): client=", msg)
            if q:
                mid = next_mid; next_mid += 1
                mid_of_qid[q.group(1)] = mid
                mids_of_icid[icid].append(mid)
                rids[mid] = 0
                emit(ts, f"Start MID {mid} ICID {icid}")
                if pid in sender:
                    emit(ts, f"MID {mid} ICID {icid} From: <{sender.pop(pid)}>")
                continue
            e = re.match(r"([0-9A-F]+): info: END-OF-MESSAGE from .*?; from=<([^>]*)>", msg)
            if e and e.group(1) in mid_of_qid:
                mid = mid_of_qid[e.group(1)]
                ready.add(mid)
                if e.group(1) in msgid:
                    emit(ts, f"MID {mid} Message-ID '{msgid.pop(e.group(1))}'")
                emit(ts, f"MID {mid} ready {size.get(e.group(1), 0)} bytes from <{e.group(2)}>")
                continue
            z = re.match(r"warning: ([0-9A-F]+): queue file size limit exceeded", msg)
            if z and z.group(1) in mid_of_qid:
                mid = mid_of_qid[z.group(1)]
                emit(ts, f"ICID {icid} Receiving Failed: Message size exceeds limit")
                emit(ts, f"Message finished MID {mid} aborted")
                ready.add(mid)
                continue
            i = re.match(r"([0-9A-F]+): info: (MAIL|RCPT) from .*?; from=<([^>]*)>(?: to=<([^>]*)>)?", msg)
            if i and i.group(1) in mid_of_qid:
                mid = mid_of_qid[i.group(1)]
                if i.group(2) == "MAIL":
                    emit(ts, f"MID {mid} ICID {icid} From: <{i.group(3)}>")
                else:
                    pend[pid] = (ts, mid, icid, i.group(4))
                continue
            r = re.match(r"([0-9A-F]+): reject: RCPT from .*?; from=<[^>]*> to=<([^>]*)>", msg)
            if r and r.group(1) in mid_of_qid:
                emit(ts, f"MID {mid_of_qid[r.group(1)]} ICID {icid} To: <{r.group(2)}> Rejected by Receiving Control")
                continue
            open_mids = [x for x in mids_of_icid[icid] if x not in ready]
            if msg.startswith("lost connection after ") or msg.startswith("timeout after "):
                # A timeout is the ESA's own idle timer: TN 118295 says it shows
                # as "Receiving aborted"; whether "lost" precedes it is not
                # public, so it is written as for a lost connection.
                emit(ts, f"ICID {icid} lost")
                for mid in open_mids:
                    emit(ts, f"Message aborted MID {mid} Receiving aborted")
                    emit(ts, f"Message finished MID {mid} aborted")
                    ready.add(mid)
                continue
            d = re.match(r"disconnect from .*", msg)
            if d:
                if " quit=" in msg:
                    for mid in open_mids:
                        emit(ts, f"Message aborted MID {mid} Receiving aborted by sender")
                        emit(ts, f"Message finished MID {mid} aborted")
                        ready.add(mid)
                emit(ts, f"ICID {icid} close")
                del icid_of_pid[pid]
                continue
        elif prog == "cleanup":
            c = re.match(r"([0-9A-F]+): message-id=(.*)$", msg)
            if c and c.group(1) in mid_of_qid and c.group(1) in msgid:
                # a message that never reached END-OF-MESSAGE (refused, aborted)
                emit(ts, f"MID {mid_of_qid[c.group(1)]} Message-ID '{msgid.pop(c.group(1))}'")
        elif prog == "qmgr":
            c = re.match(r"([0-9A-F]+): removed$", msg)
            if c and c.group(1) in mid_of_qid:
                emit(ts, f"Message finished MID {mid_of_qid[c.group(1)]} done")
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))

if __name__ == "__main__":
    main()
