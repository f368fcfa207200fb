from calls.protocol import ProtocolError


class CallError(ProtocolError):
    """A request that is well formed but not allowed now (unknown call, wrong state, not yours).

    Raised by services; the consumer answers it as an error frame with the same code.
    """
