"""The signalling socket at /ws/signal/.

Thin on purpose: it authenticates, decodes frames with calls.protocol, asks calls.services to
change calls, and forwards the events that services push. The rules live in those modules.
The one thing it keeps itself is the hot path: relaying `signal` frames to the peer connection
it learnt from `accepted`, without touching the database per ICE candidate.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from calls import events, ice, janitor, presence, protocol, selectors, services
from calls.models import Call
from calls.protocol import ClientMessage, ProtocolError
from calls.ratelimit import SlidingWindow, TokenBucket

logger = logging.getLogger(__name__)

# Signals for a peer whose socket is away for a moment (or for the callee while the phone rings)
# are held, not dropped. Bounded, and well under the channel layers' capacity (100 by default),
# because they are handed over in one burst. A call's set-up is one offer and a few candidates.
HELD_SIGNALS_MAX = 50
# Close code when the server cannot set a connection up (Redis or the database away).
CLOSE_SERVER_ERROR = 1011
# Error frames a connection may earn in a burst before it is closed with 4429.
ERROR_REFILL_PER_S = 1.0


@dataclass
class ActiveCall:
    call_id: uuid.UUID
    peer_channel: str
    polite: bool
    held: deque = field(default_factory=deque)


def hold(queue: deque, event_type: str, frame: dict) -> None:
    """Keep a signal for later; refuse it (never drop an older one: that is the offer) when full."""
    if len(queue) >= HELD_SIGNALS_MAX:
        raise ProtocolError(protocol.RATE_LIMITED, "Too many signals are waiting for the other side of the call.")
    queue.append((event_type, frame))


class SignalConsumer(AsyncJsonWebsocketConsumer):
    user = None

    # --- connection lifecycle ------------------------------------------------------------------

    async def connect(self):
        """Accept only logged-in users; join their groups, mark them online, send `hello`."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.cfg = settings.PEERLINE
        self.rate = TokenBucket(burst=self.cfg["RATE_BURST"], per_s=self.cfg["RATE_PER_S"])
        self.invites = SlidingWindow(limit=self.cfg["INVITES_PER_WINDOW"], window_s=self.cfg["INVITE_WINDOW_S"])
        self.errors = TokenBucket(burst=self.cfg["ERRORS_BEFORE_CLOSE"], per_s=ERROR_REFILL_PER_S)
        self.active: ActiveCall | None = None
        self.outgoing: dict[uuid.UUID, bool] = {}  # call_id -> `ringing` already sent
        self.ringing: set[uuid.UUID] = set()
        # The caller's signals made while the callee's phone rings: held here and handed to the
        # answering tab the moment it accepts (never before), so the offer does not wait for a
        # round trip through the caller's browser after `accepted`.
        self.pre_answer: dict[uuid.UUID, deque] = {}
        self.closing = False
        await self.accept()
        try:
            await self._join()
        except Exception:
            # Redis or the database is away. Close rather than linger half set up; disconnect
            # then undoes whatever part of _join happened.
            logger.exception("%s: could not set up the connection (%s)", user, self.channel_name)
            self.closing = True
            await self.close(code=CLOSE_SERVER_ERROR)

    async def _join(self) -> None:
        user = self.user
        await self.channel_layer.group_add(events.user_group(user.pk), self.channel_name)
        await self.channel_layer.group_add(events.PRESENCE_GROUP, self.channel_name)
        came_online = await sync_to_async(presence.get_presence().connect)(user_id=user.pk, channel=self.channel_name)
        # Only now does this process's heartbeat keep the connection alive in presence.
        janitor.register(self.channel_name, user.pk)
        hello = await self._hello()
        await self.send_json(hello)
        if came_online:
            await janitor.announce([user.pk], "online")
        logger.info("%s connected (%s)", user, self.channel_name)

    async def disconnect(self, code):
        """Leave groups and presence; a call in progress waits DISCONNECT_GRACE_S for a resume.

        Each step is tried on its own: one that fails (Redis away) must not keep the others from
        running, and presence's TTL catches what is left."""
        if self.user is None:
            return
        janitor.unregister(self.channel_name)
        steps = [
            lambda: self.channel_layer.group_discard(events.user_group(self.user.pk), self.channel_name),
            lambda: self.channel_layer.group_discard(events.PRESENCE_GROUP, self.channel_name),
            *[
                (lambda call_id=call_id: self._detach(call_id))
                for call_id in [*self.outgoing, *([self.active.call_id] if self.active else [])]
            ],
            self._leave_presence,
        ]
        for step in steps:
            try:
                await step()
            except Exception:
                logger.exception("%s: a disconnect step failed (%s)", self.user, self.channel_name)
        logger.info("%s disconnected (%s, code %s)", self.user, self.channel_name, code)

    async def _leave_presence(self) -> None:
        went_offline = await sync_to_async(presence.get_presence().disconnect)(
            user_id=self.user.pk, channel=self.channel_name
        )
        if went_offline:
            await janitor.announce([self.user.pk], "offline")

    async def dispatch(self, message):
        """Channel-layer events land here too. One whose handling fails (a full channel, Redis
        away for a moment) is logged and the connection lives on: Channels would otherwise end
        the consumer without running disconnect, leaving a ghost online and a call attached."""
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            if str(message.get("type", "")).startswith("websocket."):
                raise
            logger.exception("%s: failed to handle %s (%s)", self.user, message.get("type"), self.channel_name)

    async def _detach(self, call_id: uuid.UUID) -> None:
        detached = await database_sync_to_async(services.call_detach)(
            user=self.user, call_id=call_id, channel=self.channel_name
        )
        if detached:
            grace = self.cfg["DISCONNECT_GRACE_S"]
            janitor.schedule(
                grace + 0.05,
                lambda: database_sync_to_async(services.call_end_if_detached)(call_id=call_id, grace_s=grace),
                what=f"grace {call_id}",
            )

    @database_sync_to_async
    def _hello_data(self):
        backend = presence.get_presence()
        online_ids = backend.online_user_ids() - {self.user.pk}
        users = selectors.users_by_ids(online_ids)
        statuses = backend.statuses([self.user.pk, *[u.pk for u in users]])
        live = selectors.call_get_live(user=self.user)
        return users, statuses, live

    async def _hello(self) -> dict:
        users, statuses, live = await self._hello_data()
        hello = {
            "type": "hello",
            "user": protocol.user_payload(self.user, status=statuses.get(self.user.pk, presence.AVAILABLE)),
            "online": [protocol.user_payload(u, status=statuses.get(u.pk, presence.AVAILABLE)) for u in users],
            "ice_servers": ice.ice_servers_for(user_id=self.user.pk, config=self.cfg),
            "ice_refresh_s": ice.ice_refresh_after_s(self.cfg),
            # "relay" for people who chose to hide their address (needs TURN configured).
            "ice_transport_policy": "relay" if self.user.relay_only else "all",
            "limits": {"max_message_bytes": self.cfg["MAX_MESSAGE_BYTES"], "media_lost_s": self.cfg["MEDIA_LOST_S"]},
        }
        if live is not None:
            hello["call"] = self._call_summary(live)
            if live.status == Call.Status.RINGING and live.callee_id == self.user.pk:
                self.ringing.add(live.call_id)  # a tab that opens while the phone rings rings too
        return hello

    def _call_summary(self, call: Call) -> dict:
        """`elsewhere`: another of this user's connections holds the call (a second tab opened
        during a call must not take it for an orphan of its own and hang it up)."""
        other = call.other_party(self.user)
        role = "caller" if call.caller_id == self.user.pk else "callee"
        ringing_here = call.status == Call.Status.RINGING and role == "callee"
        holder = call.caller_channel if role == "caller" else call.callee_channel
        return {
            "call_id": str(call.call_id),
            "state": call.status,
            "role": role,
            "peer": protocol.user_payload(other, status=presence.BUSY if call.status == Call.Status.ACTIVE else presence.AVAILABLE),
            "media": call.media_list,
            "elsewhere": not ringing_here and bool(holder) and holder != self.channel_name,
        }

    # --- frames from the browser -----------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        """Every frame is answered or acted on; nothing a client sends escapes as an exception."""
        if self.user is None or self.closing:
            return
        try:
            if not self.rate.allow():
                raise ProtocolError(protocol.RATE_LIMITED, "Too many messages; slow down.")
            message = protocol.parse_client_message(text_data, max_bytes=self.cfg["MAX_MESSAGE_BYTES"])
            await getattr(self, f"on_{message.type}")(message)
        except ProtocolError as error:
            await self._send_error(error)
        except Exception:
            logger.exception("%s: failed to handle a frame", self.user)
            await self._send_error(ProtocolError(protocol.SERVER_ERROR, "The server could not handle that message."))

    async def _send_error(self, error: ProtocolError) -> None:
        await self.send_json(error.as_frame())
        if not self.errors.allow():
            logger.warning("%s: too many bad messages, closing", self.user)
            self.closing = True
            await self.close(code=protocol.CLOSE_TOO_MANY_ERRORS)

    async def on_ping(self, message: ClientMessage):
        await self.send_json({"type": "pong"})

    async def on_ice_servers(self, message: ClientMessage):
        """Fresh TURN credentials for a long-open tab or a long call."""
        await self.send_json({
            "type": "ice_servers",
            "ice_servers": ice.ice_servers_for(user_id=self.user.pk, config=self.cfg),
            "ice_refresh_s": ice.ice_refresh_after_s(self.cfg),
        })

    async def on_invite(self, message: ClientMessage):
        if not self.invites.allow():
            raise ProtocolError(protocol.RATE_LIMITED, "Too many calls started; wait a few seconds.")
        backend = presence.get_presence()
        call = await database_sync_to_async(services.call_invite)(
            caller=self.user,
            call_id=message.call_id,
            callee_username=message.to,
            media=message.media,
            caller_channel=self.channel_name,
            is_online=lambda user_id: backend.is_online(user_id),
        )
        if call.status == Call.Status.RINGING:
            self.outgoing[call.call_id] = False
            timeout = self.cfg["RING_TIMEOUT_S"]
            janitor.schedule(
                timeout + 0.05,
                lambda: database_sync_to_async(services.call_expire_ringing)(
                    call_id=call.call_id, ring_timeout_s=timeout
                ),
                what=f"ring timeout {call.call_id}",
            )

    async def on_accept(self, message: ClientMessage):
        await database_sync_to_async(services.call_accept)(
            user=self.user, call_id=message.call_id, channel=self.channel_name
        )

    async def on_decline(self, message: ClientMessage):
        await database_sync_to_async(services.call_decline)(user=self.user, call_id=message.call_id)

    async def on_hangup(self, message: ClientMessage):
        await database_sync_to_async(services.call_hangup)(user=self.user, call_id=message.call_id)

    async def on_resume(self, message: ClientMessage):
        """A reconnected tab takes its call back; media never stopped, only signalling moved."""
        call, peer_channel = await database_sync_to_async(services.call_resume)(
            user=self.user, call_id=message.call_id, channel=self.channel_name
        )
        polite = call.callee_id == self.user.pk
        if call.status == Call.Status.ACTIVE:
            self.active = ActiveCall(call.call_id, peer_channel, polite)
        elif polite:
            self.ringing.add(call.call_id)
        else:
            self.outgoing[call.call_id] = True
        await self.send_json({"type": "resumed", "polite": polite, **self._call_summary(call)})

    async def on_signal(self, message: ClientMessage):
        frame = {"type": "signal", "call_id": str(message.call_id), **message.payload, "from": self.user.username}
        await self._relay(message.call_id, "calls.signal", frame)

    async def on_media_state(self, message: ClientMessage):
        frame = {"type": "media_state", "call_id": str(message.call_id), **message.payload, "from": self.user.username}
        await self._relay(message.call_id, "calls.media_state", frame)

    async def on_stats(self, message: ClientMessage):
        await database_sync_to_async(services.call_record_report)(
            user=self.user, call_id=message.call_id, summary=message.payload
        )

    async def _relay(self, call_id: uuid.UUID, event_type: str, frame: dict) -> None:
        active = self.active
        if active is None or active.call_id != call_id:
            if event_type == "calls.signal" and call_id in self.outgoing:
                hold(self.pre_answer.setdefault(call_id, deque()), event_type, frame)
                return
            raise await self._why_not_in_call(call_id)
        if active.peer_channel:
            await events.send_to_channel(active.peer_channel, event_type, call_id=str(call_id), frame=frame)
        else:
            hold(active.held, event_type, frame)

    @database_sync_to_async
    def _why_not_in_call(self, call_id: uuid.UUID) -> ProtocolError:
        call = selectors.call_get(call_id=call_id)
        if call is None:
            return ProtocolError(protocol.UNKNOWN_CALL, "There is no such call.")
        if self.user.pk not in (call.caller_id, call.callee_id):
            return ProtocolError(protocol.NOT_ALLOWED, "You are not part of this call.")
        if call.status == Call.Status.RINGING:
            return ProtocolError(protocol.BAD_STATE, "The call has not been answered yet.")
        if not call.is_live:
            return ProtocolError(protocol.BAD_STATE, "The call has ended.")
        return ProtocolError(protocol.NOT_ALLOWED, "Another of your connections is in this call.")

    # --- events from the channel layer (built by the server only) -----------------------------

    async def calls_invite(self, event):
        """Ring this tab, and let the caller know that something rings."""
        call_id = uuid.UUID(event["call_id"])
        self.ringing.add(call_id)
        await self.send_json({"type": "invite", "call_id": event["call_id"], "from": event["from"], "media": event["media"]})
        await events.send_to_channel(event["caller_channel"], "calls.ringing", call_id=event["call_id"])

    async def calls_ringing(self, event):
        call_id = uuid.UUID(event["call_id"])
        if self.outgoing.get(call_id) is False:
            self.outgoing[call_id] = True
            await self.send_json({"type": "ringing", "call_id": event["call_id"]})

    async def calls_accepted(self, event):
        call_id = uuid.UUID(event["call_id"])
        self.outgoing.pop(call_id, None)
        self.ringing.discard(call_id)
        self.active = ActiveCall(call_id, event["peer_channel"], event["polite"])
        await self.send_json({
            "type": "accepted", "call_id": event["call_id"], "polite": event["polite"],
            "peer": event["peer"], "media": event["media"],
        })
        for event_type, frame in self.pre_answer.pop(call_id, ()):
            await events.send_to_channel(self.active.peer_channel, event_type, call_id=event["call_id"], frame=frame)

    async def calls_answered_elsewhere(self, event):
        call_id = uuid.UUID(event["call_id"])
        if event["except_channel"] == self.channel_name or call_id not in self.ringing:
            return
        self.ringing.discard(call_id)
        await self.send_json({"type": "ended", "call_id": event["call_id"], "reason": "answered_elsewhere"})

    async def calls_ended(self, event):
        call_id = uuid.UUID(event["call_id"])
        known = call_id in self.ringing or call_id in self.outgoing or (self.active and self.active.call_id == call_id)
        self.ringing.discard(call_id)
        self.outgoing.pop(call_id, None)
        self.pre_answer.pop(call_id, None)
        if self.active and self.active.call_id == call_id:
            self.active = None
        if known or event.get("direct", True):
            await self.send_json({"type": "ended", "call_id": event["call_id"], "reason": event["reason"]})

    async def calls_signal(self, event):
        if self.active and str(self.active.call_id) == event["call_id"]:
            await self.send_json(event["frame"])

    calls_media_state = calls_signal

    async def calls_taken_over(self, event):
        """Another connection of this user resumed the call: this one is out of it for good."""
        call_id = uuid.UUID(event["call_id"])
        was_in = (self.active and self.active.call_id == call_id) or call_id in self.outgoing
        if self.active and self.active.call_id == call_id:
            self.active = None
        self.outgoing.pop(call_id, None)
        self.pre_answer.pop(call_id, None)
        if was_in:
            await self.send_json({"type": "ended", "call_id": event["call_id"], "reason": "answered_elsewhere"})

    async def calls_peer_moved(self, event):
        """The peer's socket went away (channel "") or came back on a new channel."""
        active = self.active
        if not active or str(active.call_id) != event["call_id"]:
            return
        active.peer_channel = event["peer_channel"]
        while active.peer_channel and active.held:
            event_type, frame = active.held.popleft()
            await events.send_to_channel(active.peer_channel, event_type, call_id=event["call_id"], frame=frame)

    async def presence_update(self, event):
        if event["user"]["username"] != self.user.username:
            await self.send_json({"type": "presence", "user": event["user"], "event": event["event"]})
        elif event["event"] in (presence.BUSY, presence.AVAILABLE):
            # My own tabs learn that I am in a call (or free again), wherever the call is.
            await self.send_json({"type": "status", "status": event["event"]})

    async def session_revoked(self, event):
        """An operator revoked a login session of this user: its sockets go with it."""
        revoked = event.get("session_keys")
        session = self.scope.get("session")
        if revoked is not None and (session is None or session.session_key not in revoked):
            return  # another of the user's sessions was revoked, not the one this socket uses
        self.closing = True
        await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
