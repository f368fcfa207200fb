"""How calls are shown to people (history page) and operators (admin): plain text, no HTML."""

from __future__ import annotations

from calls.models import Call

PATH_LABELS = {
    "host": "direct (local network)",
    "srflx": "direct (through NAT)",
    "prflx": "direct (peer reflexive)",
    "relay": "relayed (TURN)",
    "unknown": "unknown",
}


def format_duration(seconds: float | None) -> str:
    """1:05 for a minute and five seconds, 1:02:03 past an hour; "" for no duration."""
    if seconds is None:
        return ""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_report(report: dict | None) -> str:
    """One line from a browser's connection summary (see protocol.STATS_FIELDS)."""
    if not report:
        return "no report"
    parts = [PATH_LABELS.get(report.get("path", ""), report.get("path") or "path unknown")]
    if report.get("rtt_ms") is not None:
        parts.append(f"round trip {report['rtt_ms']:.0f} ms")
    if report.get("packet_loss") is not None:
        parts.append(f"packet loss {report['packet_loss'] * 100:.1f}%")
    if report.get("bitrate_kbps") is not None:
        parts.append(f"{report['bitrate_kbps']:.0f} kbit/s")
    return ", ".join(parts)


def ice_paths(call: Call) -> str:
    """The ICE path each side reported, caller first: "relay / srflx"; "" without reports."""
    sides = [(r or {}).get("path", "") for r in (call.caller_report, call.callee_report)]
    if not any(sides):
        return ""
    return " / ".join(side or "?" for side in sides)


def callback_media(call: Call) -> str:
    """Call back the way the call was made: with video if it had video."""
    return "video" if "video" in call.media_list else "audio"
