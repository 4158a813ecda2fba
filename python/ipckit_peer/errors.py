"""Exceptions raised (or reported) by :mod:`ipckit_peer`."""


class PeerError(Exception):
    """Base class of every exception this package raises."""


class PeerClosed(PeerError):
    """The peer was closed (before or while the call waited)."""


class RequestError(PeerError):
    """A :meth:`Peer.request` failed. ``method`` and ``request_id`` name the call."""

    def __init__(self, text, method, request_id):
        PeerError.__init__(self, text)
        self.method = method
        self.request_id = request_id


class RemoteError(RequestError):
    """The other side answered with an error response.

    ``remote_message`` is the error text exactly as the other side sent it.
    """

    def __init__(self, method, request_id, remote_message):
        RequestError.__init__(
            self,
            "request %r (id %s) failed on the other side: %s" % (method, request_id, remote_message),
            method,
            request_id,
        )
        self.remote_message = remote_message


class RequestTimeout(RequestError, TimeoutError):
    """No response arrived within ``timeout`` seconds (the other side was told to cancel)."""

    def __init__(self, method, request_id, timeout):
        RequestError.__init__(
            self,
            "request %r (id %s) got no response within %g s" % (method, request_id, timeout),
            method,
            request_id,
        )
        self.timeout = timeout

    def __str__(self):
        # OSError's __str__ would format errno/strerror; keep the plain text.
        return str(self.args[0]) if self.args else ""


class InboxProblem(PeerError):
    """A non-fatal problem with the inbox (reported through ``on_error``, never raised).

    ``path`` is the inbox file; ``message`` is the offending message when one is to blame.
    """

    def __init__(self, text, path, message=None):
        PeerError.__init__(self, text)
        self.path = path
        self.message = message


class WatchProblem(PeerError):
    """The inbox watcher cannot be used, was lost, or missed changes (a network share): the peer
    polls from then on (reported through ``on_error``, once per cause, never raised). ``code`` is
    the Node side's name for it."""

    code = "EWATCH"
