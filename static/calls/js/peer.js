// One RTCPeerConnection with W3C "perfect negotiation": the same code runs on both sides and
// only `polite` differs (the server makes the callee polite). Trickle ICE: every candidate is
// sent as soon as it is found. No DOM here; main.js passes callbacks.

const ICE_DISCONNECTED_RESTART_MS = 3_000;
// Gather candidates as soon as the connection exists (while the call rings), not at the first
// setLocalDescription: the callee's answer then goes out with candidates ready (~100+ ms saved).
const ICE_CANDIDATE_POOL_SIZE = 1;

export class Peer {
  /**
   * sendSignal({description} | {candidate}) hands a frame body to signalling.
   * waitForRemoteOffer: the callee does not offer on its own before it has applied the caller's
   * first offer (its tracks are attached to the transceivers that offer creates), so no needless
   * callee offer races the caller's.
   */
  constructor({ polite, iceServers, iceTransportPolicy, sendSignal, waitForRemoteOffer = false,
                onTrack, onConnectionState }) {
    this.polite = polite;
    this.sendSignal = sendSignal;
    this.onTrack = onTrack;
    this.onConnectionState = onConnectionState;
    this.pc = new RTCPeerConnection({
      iceServers: iceServers || [],
      iceTransportPolicy: iceTransportPolicy || "all",
      bundlePolicy: "max-bundle",
      iceCandidatePoolSize: ICE_CANDIDATE_POOL_SIZE,
    });
    this.remoteStream = new MediaStream();
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.negotiating = !waitForRemoteOffer;
    this.pendingStream = null;
    this.earlyCandidates = [];
    this.chain = Promise.resolve();
    this.closed = false;
    this.disconnectTimer = null;
    this._wire();
  }

  _wire() {
    const pc = this.pc;
    pc.onnegotiationneeded = async () => {
      if (!this.negotiating || this.closed) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.sendSignal({ description: pc.localDescription.toJSON() });
      } catch (error) {
        console.error("peer: could not make an offer", error);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (this.closed) return;
      this.sendSignal({ candidate: candidate ? candidate.toJSON() : null });
    };
    pc.ontrack = ({ track }) => {
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      track.addEventListener("ended", () => this.remoteStream.removeTrack(track));
      this.onTrack(this.remoteStream, track);
    };
    pc.onconnectionstatechange = () => this._connectionChanged();
    pc.oniceconnectionstatechange = () => this._iceChanged();
  }

  /** Send these tracks. The callee keeps them until the first offer has made its transceivers. */
  attach(stream) {
    if (this.closed) return;
    if (!this.negotiating && !this.pc.remoteDescription) {
      this.pendingStream = stream;
      return;
    }
    for (const track of stream.getTracks()) this.pc.addTrack(track, stream);
  }

  /** Ask to receive a kind we do not send (e.g. no camera here, but the peer has one). */
  receive(kind) {
    const has = this.pc.getTransceivers().some((t) => t.receiver.track && t.receiver.track.kind === kind);
    if (!has) this.pc.addTransceiver(kind, { direction: "recvonly" });
  }

  /** Start sending a new track of this kind: reuse the transceiver when there is one. */
  async sendTrack(track, stream) {
    const transceiver = this.pc.getTransceivers().find(
      (t) => !t.stopped && t.receiver.track && t.receiver.track.kind === track.kind && !t.sender.track
    );
    if (transceiver) {
      await transceiver.sender.replaceTrack(track);
      transceiver.sender.setStreams(stream);
      if (transceiver.direction === "recvonly") transceiver.direction = "sendrecv";
      else if (transceiver.direction === "inactive") transceiver.direction = "sendonly";
    } else {
      this.pc.addTrack(track, stream);
    }
  }

  /** Stop sending a kind without renegotiating (the camera light goes off). */
  async unsendTrack(track) {
    const sender = this.pc.getSenders().find((s) => s.track === track);
    if (sender) await sender.replaceTrack(null);
  }

  /** Signals are applied strictly in the order they arrived. */
  handleSignal(frame) {
    // A failure here is a negotiation bug, not noise: console.error, which the e2e tests
    // treat as a failed test.
    this.chain = this.chain.then(() => this._apply(frame)).catch((error) => {
      console.error("peer: signal not applied", error);
    });
    return this.chain;
  }

  async _apply({ description, candidate }) {
    if (this.closed) return;
    const pc = this.pc;
    if (description) {
      const offerCollision = description.type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      if (description.type === "answer" && pc.signalingState === "stable") {
        // A second answer to an offer we sent again after a signalling reconnect: the first
        // one already completed the exchange.
        console.warn("peer: ignoring an answer that came with no offer outstanding");
        return;
      }
      await pc.setRemoteDescription(description);
      if (description.type === "offer") {
        if (this.pendingStream) {
          const stream = this.pendingStream;
          this.pendingStream = null;
          for (const track of stream.getTracks()) pc.addTrack(track, stream);
        }
        await pc.setLocalDescription();
        this.sendSignal({ description: pc.localDescription.toJSON() });
        this.negotiating = true;
      }
      const early = this.earlyCandidates;
      this.earlyCandidates = [];
      for (const c of early) await this._addCandidate(c);
    } else if (candidate !== undefined) {
      if (!pc.remoteDescription) {
        this.earlyCandidates.push(candidate);
        return;
      }
      await this._addCandidate(candidate);
    }
  }

  async _addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate === null ? undefined : candidate);
    } catch (error) {
      if (!this.ignoreOffer) throw error;
    }
  }

  /** New ICE credentials and candidates (network changed, path failed). */
  restartIce() {
    if (this.closed) return;
    this.negotiating = true;
    this.pc.restartIce();
  }

  setIceServers(iceServers, iceTransportPolicy) {
    if (this.closed) return;
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers, iceTransportPolicy: iceTransportPolicy || "all" });
    } catch (error) {
      console.warn("peer: could not update ICE servers", error);
    }
  }

  _connectionChanged() {
    if (this.closed) return;
    this.onConnectionState(this.pc.connectionState);
  }

  _iceChanged() {
    if (this.closed) return;
    const state = this.pc.iceConnectionState;
    clearTimeout(this.disconnectTimer);
    if (state === "failed") {
      this.restartIce();
    } else if (state === "disconnected" && !this.polite) {
      // Often it comes back by itself within a second or two; if not, look for a new path.
      this.disconnectTimer = setTimeout(() => {
        if (!this.closed && ["disconnected", "failed"].includes(this.pc.iceConnectionState)) this.restartIce();
      }, ICE_DISCONNECTED_RESTART_MS);
    }
    if (["disconnected", "failed"].includes(state)) this.onConnectionState("disconnected");
  }

  /** A summary of the connection for the operators (protocol `stats`); elapsedS: time since answer. */
  async summary(elapsedS) {
    if (this.closed) return null;
    return summarize(await this.pc.getStats(), elapsedS);
  }

  /** The candidate type of the selected pair ("host", "srflx", "prflx", "relay" or "unknown"). */
  async path() {
    if (this.closed) return "unknown";
    return selectedPath(await this.pc.getStats()).path;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.disconnectTimer);
    const pc = this.pc;
    pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = null;
    pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
    for (const track of this.remoteStream.getTracks()) this.remoteStream.removeTrack(track);
    pc.close();
  }
}

function selectedPath(report) {
  let pair = null;
  report.forEach((stat) => {
    if (stat.type === "transport" && stat.selectedCandidatePairId) pair = report.get(stat.selectedCandidatePairId);
  });
  if (!pair) {
    report.forEach((stat) => {
      if (!pair && stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") pair = stat;
    });
  }
  if (!pair) return { path: "unknown", pair: null };
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  const types = [local && local.candidateType, remote && remote.candidateType];
  // The least direct end decides: relay beats srflx/prflx beats host.
  const path = ["relay", "prflx", "srflx", "host"].find((t) => types.includes(t)) || "unknown";
  return { path, pair };
}

function summarize(report, elapsedS) {
  const { path, pair } = selectedPath(report);
  let received = 0;
  let lost = 0;
  let bytes = 0;
  report.forEach((stat) => {
    if (stat.type !== "inbound-rtp") return;
    received += stat.packetsReceived || 0;
    lost += Math.max(0, stat.packetsLost || 0);
    bytes += stat.bytesReceived || 0;
  });
  const summary = { path };
  if (pair && typeof pair.currentRoundTripTime === "number") {
    summary.rtt_ms = Math.min(60_000, Math.round(pair.currentRoundTripTime * 10_000) / 10);
  }
  if (received + lost > 0) summary.packet_loss = Math.round((lost / (received + lost)) * 10_000) / 10_000;
  if (elapsedS > 0) summary.bitrate_kbps = Math.round((bytes * 8) / elapsedS / 100) / 10;
  return summary;
}
