"""Name the rank that was lost when a multi-process job fails in a collective.

When a process (or a whole machine) of a job dies, the others learn it from the communication
backend as a bare connection error ("Connection reset by peer [10.0.0.2]:3733"), which says
neither which rank is gone nor whether it is the cause. At start every rank opens a small TCP
listener and the addresses are exchanged once; when training fails, each surviving rank
probes the others: a refused connection means that process has ended, a timeout that its
machine is unreachable. The error then names those ranks, ahead of the original error.
"""

import os
import socket
import threading
from typing import List, Optional, Tuple
from urllib.parse import urlparse

from ..utils import comm

__all__ = ["LostRanksError", "RankWatch", "rendezvous_host"]

PROBE_TIMEOUT = 2.0  # seconds a live machine takes at most to answer a TCP connect


class LostRanksError(RuntimeError):
    """A multi-process job failed because other ranks stopped answering."""


class RankWatch:
    """This rank's listener and every rank's address (see the module docstring). Created
    collectively (every rank must construct it, after the process group exists)."""

    def __init__(self, reach_host: str):
        self._server = socket.create_server((_address_towards(reach_host), 0))
        self._server.settimeout(None)
        host, port = self._server.getsockname()[:2]
        threading.Thread(target=self._accept, name="usvid-rank-watch", daemon=True).start()
        self.addresses: List[Tuple[str, int]] = comm.all_gather((host, port))

    def _accept(self) -> None:
        """Answer probes (the kernel completes the handshake; taking the connection keeps the
        backlog from filling, which would make later probes time out)."""
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            connection.close()

    def lost_ranks(self) -> List[int]:
        """The other ranks whose process no longer accepts a connection."""
        me = comm.get_rank()
        return [rank for rank, address in enumerate(self.addresses) if rank != me and not _answers(address)]

    def close(self) -> None:
        self._server.close()

    def explain(self, error: BaseException) -> Optional[LostRanksError]:
        """A LostRanksError naming the lost ranks if ``error`` came with lost ranks, else None."""
        lost = self.lost_ranks()
        if not lost:
            return None
        where = ", ".join(f"rank {rank} ({self.addresses[rank][0]})" for rank in lost)
        return LostRanksError(
            f"Rank {comm.get_rank()} stopped: lost {where}, whose process ended or whose machine became "
            f"unreachable (see its own log for why). The error seen here: {type(error).__name__}: {error}"
        )


def _address_towards(host: str) -> str:
    """The local address other machines reach this one by: the one that routes to ``host``
    (the rendezvous address every rank already reaches)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((socket.gethostbyname(host), 9))  # UDP: no packet is sent
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


def _answers(address: Tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def rendezvous_host(dist_url: Optional[str]) -> str:
    """The host of a tcp:// init URL, or MASTER_ADDR (torchrun), or this machine."""
    if dist_url and dist_url.startswith("tcp://"):
        return urlparse(dist_url).hostname or "127.0.0.1"
    return os.environ.get("MASTER_ADDR", "127.0.0.1")
