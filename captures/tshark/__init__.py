"""tshark and dumpcap: the only place that starts them or imports pyshark.

* ``args``: every tshark/dumpcap command line; ``process``: the child processes and byte-moving threads;
* ``parser``: ``-T fields`` text -> PacketBatch; ``source``: the PacketSource (replay, chunks, live rotation);
* ``chunking`` / ``rotation``: a file / dumpcap's stream cut into per-tshark pieces; ``preflight``: checks
  before anything starts; ``dissect``: one frame's full tree (pyshark) for the detail view; ``malloc``.
"""
