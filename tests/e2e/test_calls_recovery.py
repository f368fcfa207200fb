"""A call outlives its signalling socket (dropped, or the whole server restarted) and ICE restarts."""

import pytest

from calls.models import Call
from tests.e2e.calling import connect_call, wait_media_flowing, wait_state, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

UFRAGS_JS = """() => {
  const pc = window.peerline.pc();
  const ufrag = (d) => d && (d.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1];
  return [ufrag(pc.localDescription), ufrag(pc.remoteDescription)];
}"""


def remember_socket(page) -> None:
    page.evaluate("() => { window.__oldSocket = window.peerline.socket(); }")


def wait_new_socket_open(page) -> None:
    page.wait_for_function(
        "() => window.peerline.socket() !== window.__oldSocket && window.peerline.socket().readyState === 1"
        " && document.body.dataset.wsState === 'open'",
        polling=50,
    )


def restart_ice_and_wait(restarting, other) -> None:
    """Force an ICE restart from `restarting`; new credentials reach both sides; media flows on."""
    before = restarting.evaluate(UFRAGS_JS)
    restarting.evaluate("() => window.peerline.restartIce()")
    restarting.wait_for_function(
        f"([old]) => {{ const now = ({UFRAGS_JS})(); return now[0] !== old[0] && now[1] !== old[1]; }}",
        arg=[before], polling=50,
    )
    for page in (restarting, other):
        page.wait_for_function("() => window.peerline.pc().connectionState === 'connected'", polling=50)
        wait_media_flowing(page)


def test_call_survives_dropped_sockets_and_ice_restarts(alice_and_bob):
    """Each side loses its socket mid-call: frames keep decoding, the page reconnects and resumes
    the call, and an ICE restart from either side (through the new sockets) brings media back."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob()
    connect_call(a, b, "bob")
    wait_media_flowing(a)
    wait_media_flowing(b)

    for dropped, other in ((a, b), (b, a)):
        remember_socket(dropped)
        dropped.evaluate("() => window.peerline.dropSocket()")
        wait_media_flowing(other)
        wait_new_socket_open(dropped)
        wait_media_flowing(dropped)
        assert dropped.get_attribute("body", "data-call-state") == "active"
        restart_ice_and_wait(dropped, other)  # alice is impolite, bob polite: both may restart

    a.click("[data-testid=hangup]")
    wait_state(b, "ended")
    call = Call.objects.get()
    assert (call.status, call.end_reason) == ("completed", "hangup")
    assert a_watch.errors == [] and b_watch.errors == []


def test_call_survives_a_server_restart(alice_and_bob):
    """daphne restarts mid-call: media never stops, both pages reconnect and resume the call."""
    server, alice, bob, a, a_watch, b, b_watch = alice_and_bob(PEERLINE_DISCONNECT_GRACE_S="15")
    connect_call(a, b, "bob")
    wait_media_flowing(a)

    for page in (a, b):
        remember_socket(page)
    server.stop()
    a.wait_for_selector("body[data-ws-state=closed]", state="attached")
    wait_media_flowing(a)  # peer to peer: no server needed for media
    server.start()
    for page in (a, b):
        wait_new_socket_open(page)
        assert page.get_attribute("body", "data-call-state") == "active"
    wait_until(lambda: Call.objects.filter(caller_detached_at__isnull=True, callee_detached_at__isnull=True,
                                           status="active").exists(), what="both sides resumed")
    restart_ice_and_wait(a, b)

    b.click("[data-testid=hangup]")
    wait_state(a, "ended")
    call = Call.objects.get()
    assert (call.status, call.end_reason) == ("completed", "hangup")
    errors = [e for e in a_watch.errors + b_watch.errors if "WebSocket" not in e]
    assert errors == []  # the browser itself logs the refused reconnect attempts while it is down


def test_a_call_whose_media_never_comes_back_ends_with_a_message(alice_and_bob):
    """Bob's browser stops answering on the media path (its peer connection is gone) while both
    sockets stay up: Alice tries to restore the media, then ends the call instead of showing
    "reconnecting" forever."""
    server, alice, bob, a, a_watch, b, _ = alice_and_bob(PEERLINE_MEDIA_LOST_S="3")
    connect_call(a, b, "bob")
    wait_media_flowing(a)

    b.evaluate("() => window.peerline.pc().close()")
    wait_state(a, "reconnecting")
    wait_state(a, "ended", timeout_ms=45_000)
    assert "could not be restored" in a.text_content("[data-testid=call-message]")
    wait_state(b, "ended")
    wait_until(lambda: Call.objects.filter(status="completed", end_reason="hangup").exists(), what="call row closed")
    assert [e for e in a_watch.errors if "ICE" not in e] == []
